"""The thin filler: the network (starts as the classical fill, any canvas size, saved folders), its trainer
on the shared base (real runs, exact resume), and the shipped weights (package data, beat Navier-Stokes on
held-out photos)."""

import json

import numpy as np
import pytest
import torch

from inpaint_kit.classical import cv2_inpaint
from inpaint_kit.cli import main
from inpaint_kit.errors import InpaintKitError
from inpaint_kit.geometry import split_by_width
from inpaint_kit.thinfill import (ThinFillConfig, build_net, fill_thin, is_thinfill_model, load_thinfill,
                                  refine, save_thinfill)


def photo(h=64, w=96, seed=0):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([70 + 100 * x / w, 60 + 120 * y / h, 150 + 60 * np.sin(x / 9 + y / 13)], -1)
    return np.clip(base + np.random.default_rng(seed).normal(0, 5, (h, w, 3)), 0, 255).astype(np.uint8)


def test_a_new_network_is_the_classical_fill_and_runs_on_any_multiple():
    torch.manual_seed(0)
    net = build_net(ThinFillConfig(channels=(8, 16, 24))).eval()
    assert net.config.multiple == 4
    for h, w in ((32, 48), (64, 20)):
        image, mask = photo(h, w), np.zeros((h, w), bool)
        mask[h // 2, 2:-2] = True
        fill = cv2_inpaint(image, mask, "ns")
        (out,) = refine(net, [fill], [mask])
        assert np.array_equal(out, fill)  # zero-initialised last layer: exactly the classical fill


def test_saved_folder_round_trips_and_bad_folders_are_one_line_errors(tmp_path):
    torch.manual_seed(0)
    net = build_net(ThinFillConfig(channels=(8, 16)))
    torch.nn.init.normal_(net.out.weight, std=0.1)
    folder = save_thinfill(tmp_path / "tf", net)
    assert is_thinfill_model(folder) and not is_thinfill_model(tmp_path)
    back = load_thinfill(folder)
    image, mask = photo(), np.zeros((64, 96), bool)
    mask[30:33, 5:90] = True
    a = fill_thin(image, mask, mask, "net", back)
    with torch.no_grad():
        b = fill_thin(image, mask, mask, "net", net.eval())
    assert np.array_equal(a, b) and np.array_equal(a[~mask], image[~mask]) and not np.array_equal(a, image)
    with pytest.raises(InpaintKitError) as e:
        load_thinfill(tmp_path)
    assert "not a thin-filler model folder" in str(e.value) and "\n" not in str(e.value)


def test_train_thinfill_runs_resumes_exactly_and_writes_a_model_folder(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train-thinfill", "--data", "train_data/imgs", "--output_dir", str(out), "--size", "32", "--batch", "2",
            "--channels", "8,16", "--threads", "1", "--no_progress", "--save_every", "2", "--seed", "3"]
    assert main(base + ["--steps", "4", "--stop_after", "2"]) == 0
    assert main(base + ["--steps", "4", "--resume"]) == 0
    resumed = (out / "model.safetensors").read_bytes()
    straight = tmp_path / "straight"
    assert main([*base[:4], str(straight), *base[5:], "--steps", "4"]) == 0
    assert (straight / "model.safetensors").read_bytes() == resumed  # a resumed run is the uninterrupted one
    record = json.loads((out / "training_config.json").read_text())
    assert record["trainer"] == "train-thinfill" and record["step"] == 4
    net = load_thinfill(out)
    assert net.config.channels == (8, 16) and net.config.extra["training"]["mask_kinds"]
    capsys.readouterr()
    assert main(base + ["--steps", "4", "--resume", "--channels", "8,32"]) == 2
    assert "--channels" in capsys.readouterr().err


def test_bad_train_flags_are_one_line_errors(tmp_path, capsys):
    base = ["train-thinfill", "--data", "train_data/imgs", "--output_dir", str(tmp_path / "x")]
    for flag, value, words in (("--mask_kinds", "thin,blob", "unknown blob"),
                               ("--channels", "8,x", "comma-separated positive integers"),
                               ("--size", "30", "multiple of 4")):
        assert main(base + [flag, value]) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1


def test_training_masks_are_thin_only():
    from inpaint_kit.train.thinfill.data import ThinSampler

    sampler = ThinSampler("train_data/imgs", 64, ("thin", "lama_thin", "cracks"), 7, 0.35, 1.0, 0.5)
    for seed in range(12):
        clean, fill, mask = sampler.sample(np.random.default_rng(seed))
        thin, wide = split_by_width(mask, 7)
        assert mask.any() and not wide.any()
        assert np.array_equal(fill[~mask], clean[~mask])  # the classical fill touches only the mask
