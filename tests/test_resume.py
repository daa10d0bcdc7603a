"""Resume after a kill at any point leaves every output of every item (issue 13): done means all files
exist and were made with the same settings; the manifest has one line per item; duplicate stems are all
restored; outpaint defaults do not collide."""

import json

import numpy as np
import pytest
from PIL import Image

from inpaint_kit.cli import main
from inpaint_kit.images import load_image, read_metadata

FAST = ["--steps", "2", "--size", "64", "--rows", "2"]


def _photo(path, h=24, w=32, seed=0):
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _mask(path, h=24, w=32):
    m = np.full((h, w), 255, np.uint8)
    m[4:12, 8:20] = 0
    Image.fromarray(m).save(path)
    return path


@pytest.fixture
def tree(tmp_path):
    imgs, masks = tmp_path / "imgs", tmp_path / "masks"
    imgs.mkdir()
    masks.mkdir()
    for i, stem in enumerate(("a", "b")):
        _photo(imgs / f"{stem}.png", seed=i)
        _mask(masks / f"{stem}.png")
    return imgs, masks, tmp_path / "out"


def _args(model, imgs, masks, out, *extra):
    return ["infer", "--model", str(model), "--batch_imgs_dir", str(imgs), "--batch_masks_dir", str(masks),
            "--output_dir", str(out), *FAST, *extra]


def _manifest(out):
    return [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]


def test_missing_rows_are_completed_with_the_recorded_seeds(tree, tiny_model_dir, capsys):
    imgs, masks, out = tree
    args = _args(tiny_model_dir, imgs, masks, out, "--save_rows", "--seed", "0")  # random seeds
    assert main(args) == 0
    seeds = read_metadata(out / "a_collage.png")["seeds"]
    row1 = out / f"a_row1_seed{seeds[1]}.png"
    first = load_image(row1)
    row1.unlink()  # as if killed after the collage of an older version, or a file lost
    capsys.readouterr()
    assert main(args) == 0
    assert "1 written, 1 skipped" in capsys.readouterr().err
    assert np.array_equal(load_image(row1), first)  # same seed, same row
    assert read_metadata(out / "a_collage.png")["seeds"] == seeds
    assert sorted(r["output"] for r in _manifest(out)) == [str(out / "a_collage.png"), str(out / "b_collage.png")]


def test_rows_are_written_before_the_collage(tree, tiny_model_dir):
    """Killed after the rows and before the collage: the item is not done; the re-run writes the collage."""
    imgs, masks, out = tree
    args = _args(tiny_model_dir, imgs, masks, out, "--save_rows", "--seed", "4")
    assert main(args) == 0
    files = [r["files"] for r in _manifest(out) if r["output"].endswith("a_collage.png")][0]
    assert files[-1].endswith("a_collage.png") and len(files) == 3  # rows first, collage last
    (out / "a_collage.png").unlink()
    assert main(args) == 0 and (out / "a_collage.png").is_file()


def test_manifest_has_one_line_per_item(tree, tiny_model_dir):
    imgs, masks, out = tree
    args = _args(tiny_model_dir, imgs, masks, out, "--seed", "4")
    assert main(args) == 0
    lines = (out / "manifest.jsonl").read_text().splitlines()
    (out / "manifest.jsonl").write_text("\n".join(lines + lines[:1]) + '\n{"torn": ')  # a killed, older run
    assert main(args) == 0 and main(args) == 0
    records = _manifest(out)
    assert len(records) == 2 and {r["status"] for r in records} == {"ok"}
    # Killed between the collage and its manifest line: the skipped item gets its line back.
    (out / "manifest.jsonl").write_text(json.dumps(records[0]) + "\n")
    assert main(args) == 0 and len(_manifest(out)) == 2


def test_outputs_made_with_other_settings_are_reported_not_skipped(tree, tiny_model_dir, capsys):
    imgs, masks, out = tree
    assert main(_args(tiny_model_dir, imgs, masks, out, "--seed", "4")) == 0
    before = (out / "a_collage.png").stat().st_mtime_ns
    capsys.readouterr()
    assert main(_args(tiny_model_dir, imgs, masks, out, "--seed", "5")) == 1
    err = capsys.readouterr().err
    assert "0 written, 0 skipped (already done), 0 failed, 2 differ" in err
    assert "a_collage.png: made with other settings (differs: pass --overwrite or another output)" in err
    assert (out / "a_collage.png").stat().st_mtime_ns == before
    assert main(_args(tiny_model_dir, imgs, masks, out, "--seed", "5", "--overwrite")) == 0
    assert read_metadata(out / "a_collage.png")["seeds"] == [5, 6]
    assert read_metadata(out / "a_collage.png")["request"]["seed"] == 5


def test_an_input_replaced_under_its_name_is_reported_not_skipped(tree, tiny_model_dir, capsys):
    """Resume compares the inputs' sha256 recorded in the output, not their names: a re-scanned image or a
    repainted mask under the same file name is reported as changed (exit 1) and kept until --overwrite;
    the same bytes with a new modification time are still done."""
    import os

    from inpaint_kit.record import sha256

    imgs, masks, out = tree
    args = _args(tiny_model_dir, imgs, masks, out, "--seed", "4")
    assert main(args) == 0
    recorded = read_metadata(out / "a_collage.png")["inputs_sha256"]
    assert recorded["image"] == sha256(imgs / "a.png") and recorded["mask"] == sha256(masks / "a.png")
    os.utime(imgs / "a.png", ns=(1, 1))  # touched, same bytes: still done
    capsys.readouterr()
    assert main(args) == 0 and "0 written, 2 skipped" in capsys.readouterr().err
    _photo(imgs / "a.png", seed=7)  # re-scanned under the same name
    m = np.array(Image.open(masks / "b.png"))
    m[14:20, 2:6] = 0  # b's mask repainted
    Image.fromarray(m).save(masks / "b.png")
    before = (out / "a_collage.png").read_bytes()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "0 written, 0 skipped (already done), 0 failed, 2 made from changed files" in err
    assert ("a_collage.png: made from another version of its image (changed: sha256 differs; pass --overwrite to "
            "redo it)") in err
    assert "b_collage.png: made from another version of its mask (" in err
    assert (out / "a_collage.png").read_bytes() == before
    assert main([*args, "--overwrite"]) == 0
    assert read_metadata(out / "a_collage.png")["inputs_sha256"]["image"] == sha256(imgs / "a.png")
    assert main(args) == 0  # and done again


def test_single_image_with_a_changed_input_is_a_one_line_error(tmp_path, tiny_model_dir, capsys):
    img, mask, out = _photo(tmp_path / "a.png"), _mask(tmp_path / "m.png"), tmp_path / "a_out.png"
    args = ["infer", "--model", str(tiny_model_dir), "--image", str(img), "--mask", str(mask), "--output", str(out),
            *FAST, "--seed", "4"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 0 and "same settings; skipped" in capsys.readouterr().err
    Image.fromarray(np.full((24, 32), 255, np.uint8)).save(mask)  # another mask under the same name
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "a_out.png exists, made from another version of its mask (" in err


def test_a_model_retrained_into_the_same_folder_is_reported_not_skipped(tree, tiny_model_dir, tmp_path, capsys):
    """The model's weights are hashed with the inputs: the same folder name with new weights is another model."""
    import shutil

    from safetensors.torch import load_file, save_file

    imgs, masks, out = tree
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    args = _args(model, imgs, masks, out, "--seed", "4")
    assert main(args) == 0
    assert set(read_metadata(out / "a_collage.png")["inputs_sha256"]) == {"image", "mask", "model"}
    weights = next((model / "unet").glob("*.safetensors"))
    state = load_file(weights)
    name = sorted(state)[0]
    state[name] = state[name] + 0.01  # "retrained"
    save_file(state, weights)
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "2 made from changed files" in err and "a_collage.png: made from another version of its model (" in err


def test_duplicate_stems_are_both_restored_and_reported(tree, tiny_model_dir, capsys):
    imgs, masks, out = tree
    _photo(imgs / "a.jpg", seed=9)  # a.png and a.jpg share the mask a.png
    assert main(_args(tiny_model_dir, imgs, masks, out, "--seed", "4")) == 0
    err = capsys.readouterr().err
    assert "3 written" in err and "same stem: a.jpg and a.png" in err and "a_jpg_collage.png, a_png_collage.png" in err
    assert read_metadata(out / "a_png_collage.png")["image"].endswith("a.png")
    assert read_metadata(out / "a_jpg_collage.png")["image"].endswith("a.jpg")
    assert not (out / "a_collage.png").exists() and (out / "b_collage.png").exists()
    assert main(_args(tiny_model_dir, imgs, masks, out, "--seed", "4")) == 0
    assert "0 written, 3 skipped" in capsys.readouterr().err


def test_outpaint_defaults_do_not_collide_across_directions(tmp_path, tiny_model_dir, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    img = _photo(tmp_path / "chelsea.png")
    base = ["outpaint", "--model", str(tiny_model_dir), "--image", str(img), *FAST, "--seed", "1"]
    assert main([*base, "--left", "16"]) == 0
    assert main([*base, "--right", "16"]) == 0
    assert main([*base, "--direction", "left,up", "--pixels", "8"]) == 0
    names = sorted(p.name for p in (tmp_path / "outputs").iterdir())
    assert names == ["chelsea_outpaint_left16.png", "chelsea_outpaint_left8_up8.png", "chelsea_outpaint_right16.png"]
    capsys.readouterr()
    assert main([*base, "--left", "16"]) == 0 and "same settings; skipped" in capsys.readouterr().err
    # A batch re-run with another extension is reported, not skipped.
    out = tmp_path / "batch"
    (tmp_path / "in").mkdir()
    _photo(tmp_path / "in" / "x.png")
    batch = ["outpaint", "--model", str(tiny_model_dir), "--batch_imgs_dir", str(tmp_path / "in"),
             "--output_dir", str(out), *FAST, "--seed", "1"]
    assert main([*batch, "--left", "8"]) == 0
    assert main([*batch, "--left", "12"]) == 1 and "differs" in capsys.readouterr().err
