"""``train-detect`` through the real command: a tiny network trained for a few steps beats chance on its
own validation split, saves its threshold and scores, loads as a detector, and resumes exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from inpaint_kit.cli import main


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Four small 'photos' (smooth shapes, gradients and texture) in a folder."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for k in range(4):
        h, w = 96, 112
        y, x = np.mgrid[0:h, 0:w]
        img = 90 + 70 * np.sin(x / (9.0 + k))[..., None] * np.cos(y / 13.0)[..., None] + rng.normal(0, 6, (h, w, 3))
        img += np.array([20, -10, 5]) * k
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / f"photo{k}.png")
    return root


def train(photos, out, *extra):
    return main(["train-detect", "--data", str(photos), "--output_dir", str(out), "--preset", "tiny", "--size", "64",
                 "--batch", "6", "--lr", "1e-2", "--warmup_steps", "0", "--lr_scheduler", "constant",
                 "--val_samples", "12", "--device", "cpu", "--no_progress", "--seed", "3", *map(str, extra)])


def test_a_few_steps_beat_chance_on_the_validation_split(photos, tmp_path):
    from inpaint_kit.detect.damage import DamageSettings
    from inpaint_kit.detect.metrics import Counts, counts
    from inpaint_kit.train.detect.data import Photos, split, validation_set
    from inpaint_kit.train.detect.trainer import VAL_SEED

    out = tmp_path / "run"
    thin = "scratch,dust,hair,crack_dark,crack_bright"  # thin damage: flagging everything scores low
    assert train(photos, out, "--steps", "80", "--save_every", "80", "--max_flagged", "0.5", "--kinds", thin) == 0
    cfg = json.loads((out / "config.json").read_text())
    val = cfg["extra"]["validation"]
    assert val["photos"] == ["photo3.png"] and 0 < cfg["threshold"] < 1
    # chance: flagging every pixel (recall 1) on the very same validation samples
    settings = DamageSettings(kinds=tuple(thin.split(",")), clean_fraction=0.2, scale=(0.5, 2.5))
    damaged, _ = validation_set(Photos(split(str(photos))[1]), 64, settings, 12, VAL_SEED, (0.4, 3.0))
    everything = sum((counts(np.ones_like(s.mask), s.mask, ignore=s.ignore) for s in damaged), Counts())
    assert val["f1"] > everything.f1 + 0.1, (val, everything.f1)
    # the folder is a detector
    from inpaint_kit.detect.detector import load_detector

    det = load_detector(str(out), device="cpu")
    assert det.threshold == cfg["threshold"] and det.probability(damaged[0].image).shape == (64, 64)
    assert cfg["views"] == ["none", "hflip"] and det.views == ("none", "hflip")  # threshold chosen with them


def test_resume_continues_exactly(photos, tmp_path):
    from safetensors.torch import load_file

    a, b = tmp_path / "a", tmp_path / "b"
    assert train(photos, a, "--steps", "6", "--save_every", "3", "--val_samples", "2") == 0
    assert train(photos, b, "--steps", "6", "--save_every", "3", "--val_samples", "2", "--stop_after", "3") == 0
    assert train(photos, b, "--steps", "6", "--save_every", "3", "--val_samples", "2", "--resume") == 0
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert all(np.allclose(wa[k].numpy(), wb[k].numpy(), atol=1e-6) for k in wa)


def test_bad_training_flags_are_one_line_errors(photos, tmp_path, capsys):
    cases = {"--hold_out kind:nothing": ["--hold_out", "kind:nothing"], "--kinds scratch,mud": ["--kinds", "scratch,mud"],
             "--size 60": ["--size", "60"], "not found under": ["--val_images", "nothing.png"],
             "--pairs": ["--pairs", str(tmp_path)]}
    for needle, extra in cases.items():
        code = train(photos, tmp_path / "x", "--steps", "2", *extra)
        err = capsys.readouterr().err.strip()
        assert code == 2 and needle in err and len(err.splitlines()) == 1, (needle, err)


def test_the_wide_preset_trains_six_levels_and_needs_crops_of_its_multiple(photos, tmp_path, capsys):
    from inpaint_kit.detect.detector import load_detector
    from inpaint_kit.detect.network import PRESETS
    from inpaint_kit.train.detect.config import DETECT_PRESETS

    assert DETECT_PRESETS == tuple(PRESETS)  # the CLI's choices (torch-free) are the network's presets
    assert train(photos, tmp_path / "w", "--preset", "wide", "--size", "48", "--steps", "1") == 2
    err = capsys.readouterr().err.strip()
    assert "--size 48: must be a multiple of 32 for --preset wide" in err and len(err.splitlines()) == 1
    assert train(photos, tmp_path / "w", "--preset", "wide", "--steps", "1", "--val_samples", "2") == 0
    det = load_detector(str(tmp_path / "w"), device="cpu")
    assert det.net.config.channels == PRESETS["wide"] and det.multiple == 32
    assert det.probability(np.zeros((40, 50, 3), np.uint8)).shape == (40, 50)
