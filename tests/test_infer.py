"""End-to-end inference on a real tiny random-weight SD-inpainting pipeline loaded from disk
(the same from_pretrained path users hit): sizes, exact pixels, seeds, collages, metadata, errors."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaint_kit.cli import main
from inpaint_kit.images import load_image, read_metadata
from inpaint_kit.inpaint import InferConfig, inpaint_array

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--steps", "2", "--size", "64"]


def _photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], -1)
    return np.clip(base + rng.integers(-20, 20, (h, w, 3)), 0, 255).astype(np.uint8)


def _mask_file(path, h, w, box, repair_colour=0):
    """A mask file with ``box`` (top, left, bottom, right) in the repair colour."""
    m = np.full((h, w), 255 - repair_colour, np.uint8)
    t, l, b, r = box
    m[t:b, l:r] = repair_colour
    Image.fromarray(m, "L").save(path)
    return path


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return InferConfig(model=str(tiny_model_dir)).load_engine()


@pytest.fixture
def pair_files(tmp_path):
    img = tmp_path / "mural.png"
    Image.fromarray(_photo(45, 61)).save(img)
    return img, _mask_file(tmp_path / "mural_mask.png", 45, 61, (10, 20, 30, 40))


def test_single_image_collage_geometry_tiles_and_metadata(tmp_path, pair_files, tiny_model_dir):
    img, mask = pair_files
    out = tmp_path / "out" / "c.png"
    code = main(["infer", "--model", str(tiny_model_dir), "--image", str(img), "--mask", str(mask),
                 "--output", str(out), "--rows", "2", "--seed", "5", "--collage_spacing_h", "3",
                 "--collage_spacing_v", "4", "--save_rows", *FAST])
    assert code == 0
    original = load_image(img)
    repair = np.zeros((45, 61), bool)
    repair[10:30, 20:40] = True
    sheet = load_image(out)
    assert sheet.shape == (2 * 45 + 4, 3 * 61 + 2 * 3, 3)
    for row, seed in enumerate([5, 6]):
        top = row * (45 + 4)
        assert np.array_equal(sheet[top:top + 45, :61], original)
        preview = sheet[top:top + 45, 64:125]
        assert (preview[repair] == 255).all() and np.array_equal(preview[~repair], original[~repair])
        result = sheet[top:top + 45, 128:189]
        assert np.array_equal(result[~repair], original[~repair])  # bit-exact outside the mask
        assert not np.array_equal(result[repair], original[repair])
        row_file = out.parent / f"mural_row{row}_seed{seed}.png"
        assert np.array_equal(load_image(row_file), result)
        assert read_metadata(row_file)["seeds"] == [seed]
    meta = read_metadata(out)
    assert meta["seeds"] == [5, 6] and meta["steps"] == 2 and meta["model"] == str(tiny_model_dir)
    for key in ("prompt", "negative_prompt", "guidance", "scheduler", "size", "mask_mode", "lora", "inpaint_kit_version"):
        assert key in meta


def test_mask_modes_agree_on_inverted_masks(tmp_path, pair_files, tiny_model_dir):
    img, black = pair_files
    white = _mask_file(tmp_path / "white.png", 45, 61, (10, 20, 30, 40), repair_colour=255)
    common = ["infer", "--model", str(tiny_model_dir), "--image", str(img), "--rows", "1", "--seed", "3", *FAST]
    assert main([*common, "--mask", str(black), "--output", str(tmp_path / "b.png")]) == 0
    assert main([*common, "--mask", str(white), "--mask_mode", "white", "--output", str(tmp_path / "w.png")]) == 0
    assert np.array_equal(load_image(tmp_path / "b.png"), load_image(tmp_path / "w.png"))


def test_a_row_is_the_same_alone_or_batched(engine):
    cfg = InferConfig(model="x", steps=2, size=64)
    image = _photo(64, 80, 1)
    mask = np.zeros((64, 80), bool)
    mask[8:40, 16:60] = True
    batched = inpaint_array(engine, cfg, image, mask, [10, 11, 12], progress=False).results
    alone = inpaint_array(engine, cfg, image, mask, [11], progress=False).results[0]
    assert np.abs(batched[1].astype(int) - alone.astype(int)).max() <= 1
    assert not np.array_equal(batched[0], batched[1])  # different seeds differ
    again = inpaint_array(engine, cfg, image, mask, [10], progress=False).results[0]
    assert np.abs(batched[0].astype(int) - again.astype(int)).max() <= 1


def test_all_keep_mask_returns_original_without_model_and_all_repaint_works(engine, caplog):
    cfg = InferConfig(model="x", steps=2, size=64)
    image = _photo(30, 20)
    keep = inpaint_array(engine, cfg, image, np.zeros((30, 20), bool), [1, 2], progress=False)
    assert keep.work_hw is None and all(np.array_equal(r, image) for r in keep.results)
    assert "marks nothing to repair" in caplog.text
    full = inpaint_array(engine, cfg, image, np.ones((30, 20), bool), [1], progress=False)
    assert full.results[0].shape == image.shape and not np.array_equal(full.results[0], image)


def test_mask_of_another_size_is_resized_to_the_image(tmp_path, tiny_model_dir):
    img = tmp_path / "a.png"
    Image.fromarray(_photo(40, 60)).save(img)
    mask = _mask_file(tmp_path / "m.png", 20, 30, (0, 0, 10, 15))  # half size: top-left quarter
    out = tmp_path / "o.png"
    assert main(["infer", "--model", str(tiny_model_dir), "--image", str(img), "--mask", str(mask),
                 "--output", str(out), "--rows", "1", "--seed", "1", "--collage_spacing_h", "0", *FAST]) == 0
    result = load_image(out)[:, 120:]
    original = load_image(img)
    assert np.array_equal(result[20:], original[20:]) and np.array_equal(result[:, 30:], original[:, 30:])
    assert not np.array_equal(result[:20, :30], original[:20, :30])


def test_batch_nested_pairing_resume_manifest_and_bad_items(tmp_path, tiny_model_dir, capsys):
    imgs, masks, out = tmp_path / "imgs", tmp_path / "masks", tmp_path / "out"
    (imgs / "room1").mkdir(parents=True)
    (masks / "room1").mkdir(parents=True)
    Image.fromarray(_photo(32, 48)).save(imgs / "a.png")
    Image.fromarray(_photo(40, 40, 2)).save(imgs / "room1" / "b.JPG", quality=95)
    (imgs / "room1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    Image.fromarray(_photo(16, 16)).save(imgs / "lonely.png")
    _mask_file(masks / "a.png", 32, 48, (4, 4, 20, 20))
    _mask_file(masks / "room1" / "b_mask.png", 40, 40, (10, 10, 30, 30))
    _mask_file(masks / "room1" / "broken.png", 8, 8, (0, 0, 4, 4))
    _mask_file(masks / "orphan.png", 8, 8, (0, 0, 4, 4))
    args = ["infer", "--model", str(tiny_model_dir), "--batch_imgs_dir", str(imgs), "--batch_masks_dir", str(masks),
            "--output_dir", str(out), "--rows", "2", "--seed", "7", *FAST]
    assert main(args) == 1  # one bad item: the run goes on and reports it
    err = capsys.readouterr().err
    assert "2 written, 0 skipped (already done), 1 failed" in err
    assert "broken.png: not a readable image" in err and "lonely.png" in err and "orphan.png" in err
    assert load_image(out / "a_collage.png").shape == (2 * 32 + 20, 3 * 48 + 40, 3)
    assert load_image(out / "room1" / "b_collage.png").shape == (2 * 40 + 20, 3 * 40 + 40, 3)
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(x["status"] for x in lines) == ["failed", "ok", "ok"]
    assert all(x["seeds"] == [7, 8] for x in lines if x["status"] == "ok")
    assert read_metadata(out / "a_collage.png")["seeds"] == [7, 8]

    before = (out / "a_collage.png").stat().st_mtime_ns
    assert main(args) == 1  # resume: done items are skipped, the broken one is retried
    assert "0 written, 2 skipped" in capsys.readouterr().err
    assert (out / "a_collage.png").stat().st_mtime_ns == before
    assert not list(out.rglob(".*.tmp"))


@pytest.mark.parametrize("bad", ["missing.png", "empty.png", "text.png"])
def test_single_bad_input_exits_2_with_one_line(tmp_path, pair_files, tiny_model_dir, capsys, bad):
    _, mask = pair_files
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    code = main(["infer", "--model", str(tiny_model_dir), "--image", str(tmp_path / bad), "--mask", str(mask),
                 "--output", str(tmp_path / "o.png"), *FAST])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and bad in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.png").exists()


def test_bad_arguments_are_one_line_errors(tmp_path, pair_files, capsys):
    img, mask = pair_files
    assert main(["infer", "--image", str(img)]) == 2
    assert "--image and --mask go together" in capsys.readouterr().err
    assert main(["infer", "--image", str(img), "--mask", str(mask), "--rows", "0"]) == 2
    assert "--rows 0" in capsys.readouterr().err


def test_existing_output_is_skipped_only_with_the_same_settings(tmp_path, pair_files, tiny_model_dir, capsys):
    img, mask = pair_files
    out = tmp_path / "o.png"
    out.write_bytes(b"previous")  # not ours: never taken as done, never overwritten silently
    args = ["infer", "--model", str(tiny_model_dir), "--image", str(img), "--mask", str(mask), "--output", str(out),
            "--rows", "1", "--seed", "1", *FAST]
    assert main(args) == 2 and out.read_bytes() == b"previous"
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "differs: pass --overwrite or another output" in err
    assert main([*args, "--overwrite"]) == 0 and load_image(out).shape == (45, 3 * 61 + 40, 3)
    before = out.stat().st_mtime_ns
    assert main(args) == 0 and out.stat().st_mtime_ns == before  # same settings: done
    assert "same settings; skipped" in capsys.readouterr().err
    assert main([*args[:-6], "--seed", "2", *FAST]) == 2 and out.stat().st_mtime_ns == before  # other settings
    assert "differs" in capsys.readouterr().err


@pytest.mark.parametrize("cmd", [[sys.executable, str(ROOT / "scripts" / "infer_inpaint.py"), "--help"],
                                 [sys.executable, "-m", "inpaint_kit", "infer", "--help"]])
def test_help_of_both_entry_points(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for flag in ("--model", "--batch_imgs_dir", "--mask_mode", "--collage_spacing_h", "--lora_scale", "--save_rows"):
        assert flag in out.stdout


def test_threads_flag_sets_torch_threads_and_rejects_zero(tmp_path, pair_files, tiny_model_dir, capsys):
    import torch

    img, mask = pair_files
    before = torch.get_num_threads()
    try:
        assert main(["infer", "--model", str(tiny_model_dir), "--image", str(img), "--mask", str(mask),
                     "--output", str(tmp_path / "o.png"), "--rows", "1", "--threads", "2", *FAST]) == 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert main(["infer", "--image", str(img), "--mask", str(mask), "--threads", "0"]) == 2
    assert capsys.readouterr().err.strip().endswith("--threads must be >= 1 (got 0)")
