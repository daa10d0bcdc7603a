"""``inpaint-kit defect`` on a tiny random-weight run: MVTec-layout output with matching image/mask pairs,
pixels outside the mask untouched, Low-Fidelity Selection, seeds, resume, bad items, one-line errors."""

import json

import numpy as np
import pytest
from PIL import Image

from inpaint_kit.cli import main
from inpaint_kit.defect import generate
from inpaint_kit.train.defect import data
from inpaint_kit.train.defect.config import DefectTrainConfig
from inpaint_kit.train.defect.trainer import train as train_defect
from inpaint_kit.images import load_image, read_metadata


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir):
    """A dataset fixture and a 1-update train-defect run on it."""
    root = tmp_path_factory.mktemp("gen")
    ds = data.write_fixture(root / "ds", n_defect=2, n_good=2, size=64)
    train_defect(DefectTrainConfig(data=str(ds), object_class="bottle", defect_type="crack", model=str(tiny_model_dir),
                                   output_dir=str(root / "run"), size=64, steps=1, lora_rank=4, progress=False,
                                   attn_res=4))
    return ds, root / "run"


def cli(run, out, *extra):
    ds, lora = run
    return main(["defect", "--lora", str(lora), "--data", str(ds), "--output_dir", str(out), "--steps", "2",
                 "--no_progress", "--device", "cpu", *extra])


def manifest(out):
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_dataset_in_mvtec_layout_with_matching_masks(run, tmp_path):
    ds, _ = run
    out = tmp_path / "out"
    assert cli(run, out, "--num", "3", "--lfs", "2", "--seed", "7") == 0
    images = sorted((out / "bottle" / "test" / "crack").iterdir())
    masks = sorted((out / "bottle" / "ground_truth" / "crack").iterdir())
    assert [p.name for p in images] == ["000.png", "001.png", "002.png"]
    assert [p.name for p in masks] == ["000_mask.png", "001_mask.png", "002_mask.png"]
    goods = data.good_images(ds, "bottle")
    for i, (img, m) in enumerate(zip(images, masks)):
        result, good = load_image(img), load_image(goods[i % 2])  # good images are cycled
        mask = np.asarray(Image.open(m)) >= 128
        assert result.shape == good.shape and mask.shape == good.shape[:2] and mask.any()
        assert np.array_equal(result[~mask], good[~mask])  # outside the mask: bit-exact
        assert not np.array_equal(result[mask], good[mask])
        meta = read_metadata(img)
        assert meta["lfs_metric"] == "dssim" and len(meta["candidate_seeds"]) == 2
        assert meta["chosen"] == int(np.argmax(meta["lfs_distances"]))  # LFS keeps the farthest
        assert meta["seed"] == meta["candidate_seeds"][meta["chosen"]] and meta["prompt"] == "A bottle with sks"
        assert meta["good_image"] == str(goods[i % 2])
    lines = manifest(out)
    assert [rec["status"] for rec in lines] == ["ok"] * 3 and lines[0]["index"] == 0


def test_seeds_reproduce_and_do_not_depend_on_lfs(run, tmp_path):
    assert cli(run, tmp_path / "a", "--num", "1", "--seed", "3") == 0
    assert cli(run, tmp_path / "b", "--num", "1", "--seed", "3", "--lfs", "3") == 0
    a, b = (read_metadata(tmp_path / d / "bottle/test/crack/000.png") for d in "ab")
    assert a["candidate_seeds"] == b["candidate_seeds"][:1]
    assert cli(run, tmp_path / "c", "--num", "1", "--seed", "3") == 0
    same = [load_image(tmp_path / d / "bottle/test/crack/000.png") for d in "ac"]
    assert np.array_equal(*same)
    masks = [np.asarray(Image.open(tmp_path / d / "bottle/ground_truth/crack/000_mask.png")) for d in "ab"]
    assert np.array_equal(*masks)  # the mask depends on (seed, item) only


def test_resume_skips_done_items_and_bad_items_are_reported(run, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli(run, out, "--num", "2", "--seed", "1") == 0
    first = (out / "bottle/test/crack/000.png").stat().st_mtime_ns
    assert cli(run, out, "--num", "3", "--seed", "1") == 0
    assert "1 written, 2 skipped" in capsys.readouterr().err
    assert (out / "bottle/test/crack/000.png").stat().st_mtime_ns == first
    # a broken good image: reported, the others still written, exit code 1
    ds, lora = run
    good = tmp_path / "good"
    good.mkdir()
    for p in data.good_images(ds, "bottle"):
        (good / p.name).write_bytes(p.read_bytes())
    (good / "001.png").write_bytes(b"not a png")
    code = main(["defect", "--lora", str(lora), "--good_dir", str(good), "--output_dir", str(tmp_path / "o2"),
                 "--num", "2", "--steps", "2", "--seed", "1", "--no_progress"])
    assert code == 1
    report = capsys.readouterr().err
    assert "1 written, 0 skipped (already done), 1 failed" in report and "001.png" in report
    assert [r["status"] for r in manifest(tmp_path / "o2")] == ["ok", "failed"]


def test_given_masks_pair_by_stem_with_mask_mode(run, tmp_path):
    ds, lora = run
    masks = tmp_path / "masks"
    masks.mkdir()
    m = np.full((64, 64), 255, np.uint8)
    m[20:30, 20:40] = 0  # black = defect with --mask_mode black
    Image.fromarray(m).save(masks / "000_mask.png")
    out = tmp_path / "out"
    assert main(["defect", "--lora", str(lora), "--data", str(ds), "--masks_dir", str(masks), "--mask_mode", "black",
                 "--output_dir", str(out), "--steps", "2", "--seed", "2", "--no_progress"]) == 0
    written = np.asarray(Image.open(out / "bottle/ground_truth/crack/000_mask.png")) >= 128
    assert np.array_equal(written, m == 0)  # written white = defect, whatever the input convention
    assert not (out / "bottle/test/crack/001.png").exists()  # 001 has no mask


def test_single_image_collage(run, tmp_path):
    ds, lora = run
    good = data.good_images(ds, "bottle")[0]
    mask = tmp_path / "m.png"
    Image.fromarray(np.pad(np.full((16, 16), 255, np.uint8), 24)).save(mask)
    out = tmp_path / "c.png"
    assert main(["defect", "--lora", str(lora), "--image", str(good), "--mask", str(mask), "--rows", "2",
                 "--output", str(out), "--steps", "2", "--seed", "4", "--no_progress"]) == 0
    assert load_image(out).shape == (2 * 64 + 20, 3 * 64 + 40, 3)
    assert (tmp_path / "c_row0.png").is_file() and (tmp_path / "c_row1.png").is_file()


def test_one_line_errors_before_any_model(run, tmp_path, capsys):
    ds, lora = run
    cases = [
        (["--lora", str(tmp_path), "--data", str(ds), "--num", "1"], "no training_config.json"),
        (["--lora", str(lora), "--data", str(ds)], "--num N is needed"),
        (["--lora", str(lora), "--num", "1"], "give --good_dir"),
        (["--lora", str(lora), "--data", str(ds), "--num", "1", "--mask_scale", "0.5", "0.2"], "--mask_scale"),
        (["--lora", str(lora), "--image", "x.png"], "needs both --image and --mask"),
        (["--lora", str(lora), "--image", "x.png", "--mask", "y.png", "--num", "2"], "--num is for dataset mode"),
    ]
    for args, msg in cases:
        assert main(["defect", "--output_dir", str(tmp_path / "o"), *args]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1, err


def test_mask_shapes_lfs_distance_and_selection():
    for shape in generate.MASK_SHAPES:
        a = generate.shape_mask(shape, 64, 96, np.random.default_rng(1), (0.2, 0.3))
        assert a.shape == (64, 96) and a.any() and a.mean() < 0.3
        assert np.array_equal(a, generate.shape_mask(shape, 64, 96, np.random.default_rng(1), (0.2, 0.3)))
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), bool)
    mask[8:24, 8:24] = True
    assert generate.dssim(img, img, mask) == pytest.approx(0.0, abs=1e-9)
    far = img.copy()
    far[mask] = 255 - far[mask]
    near = img.copy()
    near[mask] = np.clip(near[mask].astype(int) + 10, 0, 255)
    outside = img.copy()
    outside[0:4] = 0  # changes outside the mask (beyond the window) hardly count
    d = [generate.dssim(img, x, mask) for x in (near, far, outside)]
    assert d[1] > d[0] > d[2]
    assert generate.select([0.1, 0.4, 0.4, 0.2]) == 1
    assert generate.candidate_seed(1, 2, 0) != generate.candidate_seed(1, 2, 1) != generate.candidate_seed(1, 3, 1)


def test_on_foreground_keeps_generated_masks_on_the_object(run, tmp_path):
    ds, _ = run
    good = data.good_images(ds, "bottle")[0]
    image = load_image(good)
    fg = generate.foreground(image)
    assert 0.2 < fg.mean() < 0.8 and fg[32, 32] and not fg[0, 0]  # the fixture's disc, not the noise around it
    out = tmp_path / "out"
    assert cli(run, out, "--num", "4", "--seed", "2", "--on_foreground", "--mask_scale", "0.3", "0.5") == 0
    for i in range(4):
        mask = np.asarray(Image.open(out / f"bottle/ground_truth/crack/{i:03d}_mask.png")) >= 128
        src = load_image(read_metadata(out / f"bottle/test/crack/{i:03d}.png")["good_image"])
        assert mask.any() and not (mask & ~generate.foreground(src)).any()
    assert main(["defect", "--lora", str(run[1]), "--data", str(ds), "--masks_dir", str(tmp_path), "--on_foreground",
                 "--output_dir", str(tmp_path / "x")]) == 2


def test_resume_reports_items_made_with_other_settings(run, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli(run, out, "--num", "1", "--seed", "1") == 0
    assert cli(run, out, "--num", "1", "--seed", "1", "--steps", "3") == 1  # another setting: never taken as done
    assert "differs: pass --overwrite" in capsys.readouterr().err


def test_resume_reports_items_whose_good_image_was_replaced(run, tmp_path, capsys):
    """An item records the sha256 of its good image and of the weights: a good image replaced under its name is
    reported as changed, not taken as done."""
    ds, lora = run
    good = tmp_path / "good"
    good.mkdir()
    for p in data.good_images(ds, "bottle"):
        (good / p.name).write_bytes(p.read_bytes())
    args = ["defect", "--lora", str(lora), "--good_dir", str(good), "--output_dir", str(tmp_path / "o"), "--num", "2",
            "--steps", "2", "--seed", "1", "--no_progress", "--device", "cpu"]
    assert main(args) == 0
    recorded = read_metadata(tmp_path / "o/bottle/test/crack/000.png")["inputs_sha256"]
    assert {"image", "model", "lora"} <= set(recorded)
    first = sorted(good.iterdir())[0]
    Image.fromarray(255 - load_image(first)).save(first)
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "0 written, 1 skipped (already done), 0 failed, 1 made from changed files" in err
    assert "000.png: made from another version of its image (" in err


def test_area_crops_paints_a_large_image_at_native_resolution_inside_the_mask_only(run, tmp_path):
    """defect paints through infer's job (inpaint_array): --area crops works on an image larger than --size,
    in a window at native resolution around the mask, and changes only pixels inside the mask."""
    ds, lora = run
    rng = np.random.default_rng(3)
    big = rng.integers(0, 256, (150, 200, 3), dtype=np.uint8)  # larger than the run's --size (64)
    Image.fromarray(big).save(tmp_path / "big.png")
    m = np.zeros((150, 200), np.uint8)
    m[60:80, 120:150] = 255  # white = defect
    Image.fromarray(m).save(tmp_path / "big_mask.png")
    mask = m == 255
    out = tmp_path / "c.png"
    assert main(["defect", "--lora", str(lora), "--image", str(tmp_path / "big.png"), "--mask",
                 str(tmp_path / "big_mask.png"), "--rows", "1", "--output", str(out), "--steps", "2", "--seed", "4",
                 "--area", "crops", "--padding", "8", "--no_progress"]) == 0
    row = load_image(tmp_path / "c_row0.png")
    assert row.shape == big.shape
    assert np.array_equal(row[~mask], big[~mask]) and not np.array_equal(row[mask], big[mask])
    meta = read_metadata(tmp_path / "c_row0.png")
    assert meta["area_used"] == "crops"
    (t, l, b, r, wh, ww), = meta["windows"]  # one window around the defect, at native resolution
    assert (b - t, r - l) == (wh, ww) and max(wh, ww) <= 64 and t <= 60 and b >= 80 and l <= 120 and r >= 150
    # the default paints the whole image scaled to --size, as the LoRA learned it
    assert main(["defect", "--lora", str(lora), "--image", str(tmp_path / "big.png"), "--mask",
                 str(tmp_path / "big_mask.png"), "--rows", "1", "--output", str(tmp_path / "f.png"), "--steps", "2",
                 "--seed", "4", "--no_progress"]) == 0
    full = read_metadata(tmp_path / "f_row0.png")
    assert full["area_used"] == "full" and full["windows"] == [[0, 0, 150, 200, 48, 64]]
    assert main(["defect", "--lora", str(lora), "--image", "x.png", "--mask", "y.png", "--padding", "-1"]) == 2


def test_good_images_keep_their_depth_profile_and_format(run, tmp_path, capsys):
    """A 16-bit TIFF with a profile gives 16-bit TIFF rows with that profile (single mode); a 16-bit grey PNG
    gives a 16-bit grey dataset item (the MVTec layout's PNG); the painted defect is quantised once into the
    good image's depth, every other stored value is the good image's."""
    import imagecodecs
    import tifffile

    ds, lora = run
    rng = np.random.default_rng(5)
    good = load_image(data.good_images(ds, "bottle")[0]).astype(np.uint16) * 257 + rng.integers(0, 257, (64, 64, 3))
    good = good.astype(np.uint16)
    wide = imagecodecs.cms_profile("adobergb")
    tifffile.imwrite(tmp_path / "g.tif", good, photometric="rgb", iccprofile=wide, compression="zlib",
                     resolution=(300, 300), resolutionunit="INCH", metadata=None)
    m = np.zeros((64, 64), np.uint8)
    m[20:40, 24:44] = 255
    Image.fromarray(m).save(tmp_path / "m.png")
    mask = m == 255
    assert main(["defect", "--lora", str(lora), "--image", str(tmp_path / "g.tif"), "--mask", str(tmp_path / "m.png"),
                 "--rows", "1", "--output", str(tmp_path / "c.png"), "--steps", "2", "--seed", "4", "--no_progress"]) == 0
    with tifffile.TiffFile(tmp_path / "c_row0.tif") as tf:
        row, icc = tf.pages.first.asarray(), tf.pages.first.tags[34675].value
    assert row.dtype == np.uint16 and icc == wide and np.array_equal(row[~mask], good[~mask])
    assert not np.array_equal(row[mask], good[mask])
    assert read_metadata(tmp_path / "c_row0.tif")["colour_managed"] is True

    goods = tmp_path / "goods"
    goods.mkdir()
    grey = np.ascontiguousarray(good[..., 1])
    (goods / "000.png").write_bytes(imagecodecs.png_encode(grey))
    out = tmp_path / "out"
    assert main(["defect", "--lora", str(lora), "--good_dir", str(goods), "--num", "1", "--output_dir", str(out),
                 "--steps", "2", "--seed", "2", "--no_progress"]) == 0
    item = imagecodecs.png_decode((out / "bottle/test/crack/000.png").read_bytes())
    defect = np.asarray(Image.open(out / "bottle/ground_truth/crack/000_mask.png")) >= 128
    assert item.dtype == np.uint16 and item.shape == (64, 64) and defect.any()
    assert np.array_equal(item[~defect], grey[~defect]) and not np.array_equal(item[defect], grey[defect])
    assert read_metadata(out / "bottle/test/crack/000.png")["input"]["bits"] == 16
    capsys.readouterr()
    for extra, message in ((["--output_format", "tiff"], "the MVTec layout is"), (["--record"], "--record is infer's")):
        assert main(["defect", "--lora", str(lora), "--good_dir", str(goods), "--num", "1", "--output_dir",
                     str(tmp_path / "x"), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
