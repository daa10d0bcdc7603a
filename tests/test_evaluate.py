"""Metrics on arrays with known answers, and ``inpaint-kit eval`` end to end on tiny inputs."""

import json

import numpy as np
import pytest
import torch

from inpaint_kit.cli import main
from inpaint_kit.ddpm.unet import PRESETS, InpaintUNet, ModelConfig, save_model
from inpaint_kit.evaluate import (
    EvalConfig,
    cv2_inpaint,
    eval_masks,
    gradient_energy_ratio,
    masked_psnr,
    masked_ssim,
    run_eval,
)
from inpaint_kit.images import save_png


def textured(h=48, w=64, seed=0):
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / 3.0), np.cos(yy / 4.0), np.sin((xx + yy) / 5.0)], -1) * 100 + 128
    noise = np.random.default_rng(seed).normal(0, 10, (h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def test_psnr_ssim_and_gradient_ratio_known_values():
    img = textured()
    mask = np.zeros(img.shape[:2], bool)
    mask[10:30, 20:40] = True
    assert masked_psnr(img, img, mask) == float("inf")
    off = img.copy()
    off[mask] = np.clip(off[mask].astype(int) + 10, 0, 255)  # +10 everywhere (no clipping here)
    assert masked_psnr(img, off, mask) == pytest.approx(10 * np.log10(255**2 / 100), abs=0.05)
    off[~mask] = 0  # pixels outside the mask do not count for PSNR
    assert masked_psnr(img, off, mask) == pytest.approx(10 * np.log10(255**2 / 100), abs=0.05)
    assert masked_ssim(img, img, mask) == pytest.approx(1.0)
    flat = img.copy()
    flat[mask] = img[mask].mean(axis=0).astype(np.uint8)
    assert masked_ssim(img, flat, mask) < 0.5
    assert gradient_energy_ratio(img, img, mask) == pytest.approx(1.0)
    inner = np.zeros_like(mask)
    inner[15:25, 25:35] = True  # away from the hole's edge, a flat fill has no gradient at all
    assert gradient_energy_ratio(img, flat, inner) == pytest.approx(0.0)


def test_classical_fill_changes_only_the_hole():
    img = textured()
    mask = np.zeros(img.shape[:2], bool)
    mask[20:23, :] = True
    for method in ("telea", "ns"):
        out = cv2_inpaint(img, mask, method)
        assert np.array_equal(out[~mask], img[~mask])
        assert masked_psnr(img, out, mask) > 15


def test_masks_depend_only_on_seed_image_and_kind():
    img = textured()
    a = eval_masks(img, 1, ("thin", "center"), 0)
    b = eval_masks(img, 1, ("center", "stripes", "thin"), 0)
    assert np.array_equal(a["thin"], b["thin"]) and np.array_equal(a["center"], b["center"])
    assert not np.array_equal(a["thin"], eval_masks(img, 2, ("thin",), 0)["thin"])
    assert not np.array_equal(a["thin"], eval_masks(img, 1, ("thin",), 1)["thin"])


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("gt")
    for i in range(2):
        save_png(d / f"p{i}.png", textured(40, 56, seed=i))
    return d


def test_eval_cli_prints_every_method_and_kind(photos, tmp_path, capsys):
    torch.manual_seed(0)
    model = save_model(tmp_path / "tiny", InpaintUNet(ModelConfig(resolution=16, **PRESETS["tiny"])))
    out = tmp_path / "scores.json"
    code = main(["eval", "--images", str(photos), "--mask_kinds", "thin,center", "--methods",
                 f"telea,ns,{model}", "--size", "48", "--steps", "2", "--out", str(out)])
    assert code == 0
    table = capsys.readouterr().out
    for kind in ("thin", "center"):
        for method in ("telea", "ns", str(model)):
            assert f"| {kind} | {method} |" in table
    data = json.loads(out.read_text())
    assert len(data["scores"]) == 6 and all(s["images"] == 2 for s in data["scores"])
    # the same command gives the same classical numbers (masks are reproducible)
    again = run_eval(EvalConfig(data=str(photos), mask_kinds=("thin", "center"), methods=("telea",), size=48),
                     progress=False)
    assert again[0].psnr == pytest.approx(data["scores"][0]["psnr"])


def test_eval_bad_inputs(photos, tmp_path, capsys):
    assert main(["eval", "--images", str(photos), "--methods", "magic"]) == 2
    assert "'magic' is not telea, ns, builtin or a model path" in capsys.readouterr().err
    assert main(["eval", "--images", str(photos), "--mask_kinds", "blob", "--methods", "telea"]) == 2
    assert "unknown blob" in capsys.readouterr().err
    (tmp_path / "none").mkdir()
    assert main(["eval", "--images", str(tmp_path / "none"), "--methods", "telea"]) == 2
    assert "no images found" in capsys.readouterr().err


def test_eval_passes_the_ddpm_start_options(photos, tmp_path, capsys):
    torch.manual_seed(0)
    model = save_model(tmp_path / "tiny", InpaintUNet(ModelConfig(resolution=16, **PRESETS["tiny"])))
    psnr = {}
    for init in ("noise", "telea"):
        out = tmp_path / f"{init}.json"
        # (thin_width=0: at 48 px the thick strokes are thin enough for the thin filler, and this is about the model)
        assert main(["eval", "--images", str(photos), "--mask_kinds", "thick", "--methods", f"telea,{model}+thin_width=0",
                     "--size", "48", "--steps", "2", "--init", init, "--strength", "0.1", "--out", str(out)]) == 0
        psnr[init] = {s["method"]: s["psnr"] for s in json.loads(out.read_text())["scores"]}
    near = lambda init: abs(psnr[init][f"{model}+thin_width=0"] - psnr[init]["telea"])  # noqa: E731
    assert near("telea") < near("noise")  # a random network started from Telea's fill stays near it
    capsys.readouterr()
    assert main(["eval", "--images", str(photos), "--methods", str(model), "--strength", "1.5"]) == 2
    assert "--strength must be in (0, 1]" in capsys.readouterr().err
