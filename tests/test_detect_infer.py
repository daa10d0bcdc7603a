"""Detect, then restore, in one run: ``infer --mask auto`` (single image), ``--batch_masks_dir auto`` (batch)
and ``--detect`` (detected damage added to a mask file): the mask used is written beside the outputs and
recorded; pixels outside it are the input's; the detector is loaded once; detector flags are never ignored."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from inpaint_kit.cli import main
from inpaint_kit.detect.detector import detect_mask, load_detector
from inpaint_kit.images import load_image, read_metadata

from test_detect_cli import N, scratched, tree  # noqa: F401 (the fixture)

TINY = ["--size", "64", "--steps", "1", "--rows", "1", "--seed", "3", "--device", "cpu", "--no_progress"]


def infer(model, *argv) -> int:
    return main(["infer", "--model", str(model), *TINY, *map(str, argv)])


def white(path) -> np.ndarray:
    """A mask written beside the outputs: white = repaired."""
    return np.asarray(Image.open(path).convert("L")) >= 128


def test_mask_auto_writes_and_records_the_detected_mask(tmp_path, tiny_model_dir, capsys):
    src = tmp_path / "scan.png"
    Image.fromarray(scratched(48, 64, 0)).save(src)
    out = tmp_path / "out"
    assert infer(tiny_model_dir, "--image", src, "--mask", "auto", "--detect_model", "classical", "--save_rows",
                 "--output_dir", out) == 0
    image = load_image(src)
    expected = detect_mask(image, load_detector("classical"))
    mask = white(out / "scan_mask.png")
    assert expected[24, 10:54].all() and (mask == expected).all()  # the scratch, and exactly what was detected
    meta = read_metadata(out / "scan_collage.png")
    assert meta["mask"] == "auto" and meta["request"]["detect"] == "auto"
    det = meta["detection"]
    assert det["detector"] == "classical" and det["mode"] == "auto" and det["mask_file"] == "scan_mask.png"
    assert det["pixels_detected"] == int(expected.sum())
    row = np.asarray(Image.open(next(out.glob("scan_row0_seed3.png"))).convert("RGB"))
    assert row.shape == image.shape and (row[~mask] == image[~mask]).all()  # outside the mask: the input's pixels
    assert not (row[mask] == image[mask]).all()
    capsys.readouterr()
    assert infer(tiny_model_dir, "--image", src, "--mask", "auto", "--detect_model", "classical", "--save_rows",
                 "--output_dir", out) == 0
    assert "skipped" in capsys.readouterr().err  # resume: same settings, the mask file is there
    (out / "scan_mask.png").unlink()
    assert infer(tiny_model_dir, "--image", src, "--mask", "auto", "--detect_model", "classical", "--save_rows",
                 "--output_dir", out) == 0
    assert (white(out / "scan_mask.png") == expected).all()  # an item missing its mask is completed


def test_mask_auto_with_the_builtin_detector(tmp_path, tiny_model_dir):
    src = tmp_path / "scan.png"
    Image.fromarray(scratched(64, 96, 1)).save(src)
    out = tmp_path / "out"
    assert infer(tiny_model_dir, "--image", src, "--mask", "auto", "--output_dir", out) == 0
    expected = detect_mask(load_image(src), load_detector("builtin", device="cpu"))
    assert (white(out / "scan_mask.png") == expected).all()
    det = read_metadata(out / "scan_collage.png")["detection"]
    assert det["detector"] == "builtin" and det["detector_threshold"] == load_detector("builtin").threshold


def test_resume_knows_a_changed_detector_folder(tmp_path, tiny_model_dir, capsys):
    """The detector is part of the request by content: the same folder with another threshold in its
    config.json (as a new version of the builtin brings) makes the finished output another request."""
    from inpaint_kit.detect.network import build, save_detector

    folder = save_detector(tmp_path / "det", build("tiny", seed=0))
    src = tmp_path / "scan.png"
    Image.fromarray(scratched(48, 64, 0)).save(src)
    out = tmp_path / "out"
    argv = ["--image", src, "--mask", "auto", "--detect_model", folder, "--output_dir", out]
    assert infer(tiny_model_dir, *argv) == 0
    assert read_metadata(out / "scan_collage.png")["request"]["detect_model_sha256"]
    capsys.readouterr()
    assert infer(tiny_model_dir, *argv) == 0
    assert "skipped" in capsys.readouterr().err
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "threshold": 0.7}))
    assert infer(tiny_model_dir, *argv) != 0
    assert "other settings" in capsys.readouterr().err
    assert infer(tiny_model_dir, *argv, "--overwrite") == 0
    assert read_metadata(out / "scan_collage.png")["detection"]["detector_threshold"] == 0.7


def test_batch_masks_dir_auto_detects_every_image_with_one_detector(tree, tmp_path, tiny_model_dir, capsys,  # noqa: F811
                                                                      monkeypatch):
    import inpaint_kit.detect.detector as detector_module

    loads = []
    real = detector_module.load_detector
    monkeypatch.setattr(detector_module, "load_detector", lambda *a, **k: loads.append(a) or real(*a, **k))
    out = tmp_path / "out"
    assert infer(tiny_model_dir, "--batch_imgs_dir", tree, "--batch_masks_dir", "auto", "--detect_model", "classical",
                 "--output_dir", out) == 0
    assert "4 written" in capsys.readouterr().err and len(loads) == 1
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == N and all(x["status"] == "ok" and x["mask"] == "auto" for x in lines)
    for line in lines:
        collage = out / line["output"].split(str(out) + "/")[1]
        mask_file = collage.with_name(line["detection"]["mask_file"])
        assert str(mask_file) in line["files"]
        expected = detect_mask(load_image(line["image"]), load_detector("classical"))
        assert (white(mask_file) == expected).all()


def test_detect_adds_the_detected_damage_to_a_mask_file(tmp_path, tiny_model_dir):
    src = tmp_path / "scan.png"
    Image.fromarray(scratched(48, 64, 2)).save(src)
    given = np.full((48, 64), 255, np.uint8)
    given[30:40, 40:60] = 0  # black = repair (the default --mask_mode)
    Image.fromarray(given).save(tmp_path / "scan_given.png")
    out = tmp_path / "out"
    assert infer(tiny_model_dir, "--image", src, "--mask", tmp_path / "scan_given.png", "--detect",
                 "--detect_model", "classical", "--output_dir", out) == 0
    found = detect_mask(load_image(src), load_detector("classical"))
    assert found.any() and not found[30:40, 40:60].all()
    used = white(out / "scan_mask.png")
    assert (used == (found | (given == 0))).all()  # the union
    meta = read_metadata(out / "scan_collage.png")
    assert meta["detection"]["mode"] == "union" and meta["mask"].endswith("scan_given.png")


@pytest.mark.parametrize("argv, needle", [
    (["--detect_threshold", "0.5"], "--detect_threshold: detector options apply with --mask auto"),
    (["--mask", "auto", "--detect"], "--detect adds detected damage to mask files"),
    (["--mask", "auto", "--mask_mode", "white"], "--mask_mode white: says how mask files mark the repair"),
    (["--mask", "auto", "--detect_model", "nowhere"], "--detect_model nowhere: no such folder"),
    (["--mask", "auto", "--detect_threshold", "1.5"], "--detect_threshold 1.5: must be between 0 and 1"),
    (["--mask", "auto", "--detect_min_area", "-1"], "--detect_min_area -1: must be >= 0"),
])
def test_detection_flags_are_checked_before_any_model_loads(tmp_path, argv, needle, capsys):
    src = tmp_path / "scan.png"
    Image.fromarray(scratched(48, 64, 0)).save(src)
    mask = [] if "--mask" in argv else ["--mask", src]
    # a model that does not exist: an error about it would mean the detection flags were checked too late
    code = infer(tmp_path / "no_model_here", "--image", src, *mask, *argv, "--output_dir", tmp_path / "o")
    err = capsys.readouterr().err.strip()
    assert code == 2 and needle in err and len(err.splitlines()) == 1, err


def test_the_python_api_takes_mask_auto(tmp_path, tiny_model_dir):
    from inpaint_kit import restore

    src = tmp_path / "scan.png"
    Image.fromarray(scratched(48, 64, 0)).save(src)
    result = restore(str(src), "auto", model=str(tiny_model_dir), size=64, steps=1, rows=1, seed=3, device="cpu",
                     detect_model="classical")
    image = load_image(src)
    expected = detect_mask(image, load_detector("classical"))
    assert (result.job.mask == expected).all() and result.metadata["detection"]["mode"] == "auto"
    row = np.asarray(result.images[0])
    assert (row[~expected] == image[~expected]).all()
    written = result.save(tmp_path / "out", "scan")
    assert tmp_path / "out" / "scan_mask.png" in written and (white(tmp_path / "out" / "scan_mask.png") == expected).all()
