"""``inpaint-kit detect``: single image and trees, masks that ``infer`` pairs and reads, resume by recorded
settings, ``--shard``, and one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaint_kit.cli import main
from inpaint_kit.images import read_metadata
from inpaint_kit.pairing import pair

N = 4


def scratched(h, w, seed):
    """A smooth picture with a bright 1-px scratch and a dark speck."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = 110 + 40 * np.sin(x / 11.0)[..., None] + rng.normal(0, 3, (h, w, 3))
    img[h // 2, 4 : w - 4] = 245
    img[8:11, 8:11] = 20
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture()
def tree(tmp_path):
    imgs = tmp_path / "imgs"
    (imgs / "sub").mkdir(parents=True)
    for k in range(N):
        folder = imgs / "sub" if k % 2 else imgs
        Image.fromarray(scratched(48 + 4 * k, 64, k)).save(folder / f"p{k}.png")
    return imgs


def detect(*argv) -> int:
    return main(["detect", "--no_progress", *map(str, argv)])


def test_detect_then_infer_pairs_every_image(tree, tmp_path, tiny_model_dir, capsys):
    masks = tmp_path / "masks"
    assert detect("--model", "classical", "--batch_imgs_dir", tree, "--output_dir", masks, "--preview", tmp_path / "pv") == 0
    written = sorted(p.relative_to(masks) for p in masks.rglob("*_mask.png"))
    assert written == sorted([Path("p0_mask.png"), Path("p2_mask.png"), Path("sub/p1_mask.png"), Path("sub/p3_mask.png")])
    assert sorted(p.name for p in (tmp_path / "pv").rglob("*.png")) == [f"p{k}_preview.png" for k in range(N)]
    found = pair(tree, masks)
    assert len(found.pairs) == N and not found.unpaired_images and not found.unpaired_masks
    # the masks mark the scratch in infer's default convention (black = repair)
    grey = np.asarray(Image.open(masks / "p0_mask.png"))
    assert grey.dtype == np.uint8 and (grey[24, 10:54] == 0).mean() > 0.9 and (grey == 255).mean() > 0.8
    capsys.readouterr()
    out = tmp_path / "restored"
    assert main(["infer", "--model", str(tiny_model_dir), "--batch_imgs_dir", str(tree), "--batch_masks_dir",
                 str(masks), "--output_dir", str(out), "--size", "64", "--steps", "1", "--rows", "1", "--seed", "1",
                 "--device", "cpu", "--no_progress"]) == 0
    assert "4 written" in capsys.readouterr().err
    assert len(list(out.rglob("*_collage.png"))) == N


def test_resume_compares_recorded_settings(tree, tmp_path, capsys):
    masks = tmp_path / "m"
    base = ["--model", "classical", "--batch_imgs_dir", tree, "--output_dir", masks]
    assert detect(*base, "--save_prob") == 0
    meta = read_metadata(masks / "p0_mask.png")
    assert meta["request"]["model"] == "classical" and meta["detector"] == "classical"
    prob = np.asarray(Image.open(masks / "p0_prob.png"))
    assert prob.dtype == np.uint16
    capsys.readouterr()
    assert detect(*base, "--save_prob") == 0
    assert "0 written, 4 skipped" in capsys.readouterr().err
    (masks / "sub" / "p1_prob.png").unlink()  # a missing side file: that item is redone
    assert detect(*base, "--save_prob") == 0
    assert "1 written, 3 skipped" in capsys.readouterr().err
    # another setting: never taken as done, never overwritten silently
    assert detect(*base, "--save_prob", "--threshold", "0.3") == 1
    assert "4 differ" in capsys.readouterr().err
    assert detect(*base, "--save_prob", "--threshold", "0.3", "--overwrite") == 0
    assert read_metadata(masks / "p0_mask.png")["request"]["threshold"] == 0.3
    lines = (masks / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == N and all(json.loads(x)["status"] == "ok" for x in lines)


def test_a_changed_detector_folder_is_another_model_on_resume(tree, tmp_path, capsys):
    """Same weights, another threshold in config.json (as a new version of the builtin brings): the masks
    made before are not taken as done."""
    from inpaint_kit.detect.network import build, save_detector

    folder = save_detector(tmp_path / "det", build("tiny", seed=0))
    masks = tmp_path / "m"
    base = ["--model", folder, "--batch_imgs_dir", tree, "--output_dir", masks, "--device", "cpu"]
    assert detect(*base) == 0
    sha = read_metadata(masks / "p0_mask.png")["request"]["model_sha256"]
    capsys.readouterr()
    assert detect(*base) == 0
    assert "0 written, 4 skipped" in capsys.readouterr().err
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "threshold": 0.7}))
    assert detect(*base) == 1
    assert "4 differ" in capsys.readouterr().err
    assert detect(*base, "--overwrite") == 0
    meta = read_metadata(masks / "p0_mask.png")
    assert meta["detector_threshold"] == 0.7 and meta["request"]["model_sha256"] != sha


def test_dtype_is_recorded_and_not_a_reason_to_redo(tree, tmp_path, capsys):
    """bf16 and fp32 compute the same network (like two devices): the mask says which, resume keeps it."""
    from inpaint_kit.detect.network import build, save_detector

    folder = save_detector(tmp_path / "det", build("tiny", seed=0))
    base = ["--model", folder, "--batch_imgs_dir", tree, "--output_dir", tmp_path / "m", "--device", "cpu"]
    assert detect(*base, "--dtype", "fp32") == 0
    assert read_metadata(tmp_path / "m" / "p0_mask.png")["detector_dtype"] == "fp32"
    capsys.readouterr()
    assert detect(*base, "--dtype", "bf16") == 0
    assert "0 written, 4 skipped" in capsys.readouterr().err
    assert detect(*base, "--dtype", "bf16", "--overwrite") == 0
    assert read_metadata(tmp_path / "m" / "p0_mask.png")["detector_dtype"] == "bf16"


def test_shards_add_up_to_the_batch(tree, tmp_path, capsys):
    masks = tmp_path / "m"
    for i in range(2):
        assert detect("--model", "classical", "--batch_imgs_dir", tree, "--output_dir", masks, "--shard", f"{i}/2") == 0
    assert len(list(masks.rglob("*_mask.png"))) == N
    assert len((masks / "manifest.jsonl").read_text().splitlines()) == N
    capsys.readouterr()
    assert detect("--model", "classical", "--batch_imgs_dir", tree, "--output_dir", masks) == 0
    assert "0 written, 4 skipped" in capsys.readouterr().err


def test_a_replaced_image_is_reported_as_changed_not_skipped(tree, tmp_path, capsys):
    """Resume trusts the image's sha256 recorded in the mask, not its name: a re-scan saved over the old
    file is reported (batch: exit 1; single image: a one-line error) until --overwrite redoes it."""
    from inpaint_kit.record import sha256

    masks = tmp_path / "m"
    base = ["--model", "classical", "--batch_imgs_dir", tree, "--output_dir", masks]
    assert detect(*base) == 0
    assert read_metadata(masks / "p0_mask.png")["inputs_sha256"] == {"image": sha256(tree / "p0.png")}
    Image.fromarray(scratched(48, 64, 9)).save(tree / "p0.png")
    capsys.readouterr()
    assert detect(*base) == 1
    err = capsys.readouterr().err
    assert "0 written, 3 skipped (already done), 0 failed, 1 made from changed files" in err
    assert "p0_mask.png: made from another version of its image (changed" in err
    single = ["--model", "classical", "--image", tree / "p0.png", "--output", masks / "p0_mask.png"]
    assert detect(*single) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert detect(*base, "--overwrite") == 0
    assert read_metadata(masks / "p0_mask.png")["inputs_sha256"] == {"image": sha256(tree / "p0.png")}
    assert detect(*single) == 0 and "skipped" in capsys.readouterr().err


def test_single_image_default_output_mask_mode_and_skip(tree, tmp_path, capsys):
    image = tree / "p0.png"
    assert detect("--model", "classical", "--image", image, "--output_dir", tmp_path, "--mask_mode", "white") == 0
    grey = np.asarray(Image.open(tmp_path / "p0_mask.png"))
    assert (grey[24, 10:54] == 255).mean() > 0.9  # white = damage
    capsys.readouterr()
    assert detect("--model", "classical", "--image", image, "--output_dir", tmp_path, "--mask_mode", "white") == 0
    assert "skipped" in capsys.readouterr().err
    assert detect("--model", "classical", "--image", image, "--output_dir", tmp_path) == 2
    assert "made with other settings" in capsys.readouterr().err


def test_min_area_and_dilate_change_the_mask(tree, tmp_path):
    image = tree / "p0.png"
    sizes = {}
    for name, extra in {"plain": [], "min_area": ["--min_area", "12"], "dilate": ["--dilate", "2"]}.items():
        out = tmp_path / f"{name}_mask.png"
        assert detect("--model", "classical", "--image", image, "--output", out, *extra) == 0
        sizes[name] = int((np.asarray(Image.open(out)) == 0).sum())
    assert sizes["min_area"] < sizes["plain"] < sizes["dilate"]


def bad_cases(tree: Path, tmp: Path):
    notimage = tmp / "notimage.png"
    notimage.write_text("hello")
    other = tmp / "other_model"
    other.mkdir()
    (other / "config.json").write_text('{"_inpaint_kit": "ddpm"}')
    afile = tmp / "afile"
    afile.write_text("x")
    img = tree / "p0.png"
    return {
        "no such file": ["--model", "classical", "--image", tmp / "missing.png", "--output", tmp / "o.png"],
        "not a readable image": ["--model", "classical", "--image", notimage, "--output", tmp / "o.png"],
        "no such folder": ["--model", tmp / "nowhere", "--image", img],
        "not a damage detector": ["--model", other, "--image", img],
        "--threshold 1.5": ["--model", "classical", "--threshold", "1.5", "--image", img],
        "classical detector runs on the CPU": ["--model", "classical", "--device", "cuda", "--image", img],
        "--dtype bf16 does not apply to --model classical": ["--model", "classical", "--dtype", "bf16", "--image", img],
        "--shard splits a batch": ["--model", "classical", "--image", img, "--shard", "0/2"],
        "give either --image": ["--model", "classical"],
        "is a file": ["--model", "classical", "--batch_imgs_dir", tree, "--output_dir", afile],
        "inside --batch_imgs_dir": ["--model", "classical", "--batch_imgs_dir", tree, "--output_dir", tree / "masks"],
        "--min_area -1": ["--model", "classical", "--min_area", "-1", "--image", img],
    }


def test_bad_inputs_are_one_line_errors(tree, tmp_path, capsys):
    for needle, argv in bad_cases(tree, tmp_path).items():
        code = detect(*argv)
        err = capsys.readouterr().err.strip()
        assert code == 2, (needle, err)
        assert needle in err and len(err.splitlines()) == 1, (needle, err)


def test_a_bad_file_in_a_batch_is_reported_and_the_rest_done(tree, tmp_path, capsys):
    (tree / "broken.png").write_bytes(b"not a png")
    assert detect("--model", "classical", "--batch_imgs_dir", tree, "--output_dir", tmp_path / "m") == 1
    err = capsys.readouterr().err
    assert "4 written" in err and "1 failed" in err and "broken.png" in err


@pytest.mark.distributed
def test_torchrun_processes_share_a_batch(tree, tmp_path):
    import os
    import subprocess
    import sys

    masks = tmp_path / "m"
    cmd = [str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node=2", "-m", "inpaint_kit",
           "detect", "--model", "classical", "--batch_imgs_dir", str(tree), "--output_dir", str(masks), "--no_progress"]
    run = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stderr.count("4 written") == 1  # one report, from rank 0, for both processes
    lines = [json.loads(x) for x in (masks / "manifest.jsonl").read_text().splitlines()]
    assert sorted(Path(x["output"]).name for x in lines) == [f"p{k}_mask.png" for k in range(N)]
