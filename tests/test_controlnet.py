"""ControlNet inpainting at inference (``infer --controlnet``) on tiny random models saved with
save_pretrained and loaded with from_pretrained: zero convolutions change nothing, a trained (here: random)
ControlNet changes the fill, rows are reproducible alone or batched, pixels outside the mask are exact,
metadata records the ControlNet, and a ControlNet for another base is a one-line error."""

from __future__ import annotations

import json

import numpy as np
import torch
import pytest

from inpaint_kit.cli import main
from inpaint_kit.engine import Sampling
from inpaint_kit.engine.controlnet import control_image, load_controlnet_engine, write_random_controlnet
from inpaint_kit.errors import InpaintKitError
from inpaint_kit.images import load_image, read_metadata, save_png

SAMPLING = Sampling(steps=2)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A 4-channel SD base (tiny preset), a fresh (zero-conv) ControlNet and a random one for it."""
    from inpaint_kit.presets import write_tiny_model

    root = tmp_path_factory.mktemp("cn")
    base = write_tiny_model(root / "base", "tiny", seed=0, base=True)
    return {"base": base, "zero": write_random_controlnet(root / "zero", base, zero=True),
            "random": write_random_controlnet(root / "random", base, seed=1, zero=False)}


def _canvas(h=64, w=64):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), bool)
    mask[20:44, 16:40] = True
    return image, mask


def test_control_image_is_the_published_convention():
    image, mask = _canvas(16, 16)
    x = control_image(image, mask)
    assert x.shape == (3, 16, 16) and x.dtype == np.float32
    assert (x[:, mask] == -1).all()
    assert np.allclose(x[:, ~mask], image[~mask].T / 255.0)


def test_zero_controlnet_changes_nothing_and_a_trained_one_does(models):
    image, mask = _canvas()
    zero = load_controlnet_engine(str(models["base"]), str(models["zero"]), device="cpu")
    with_net = zero.inpaint(image, mask, [5], SAMPLING, progress=False)[0]
    zero.scale = 0.0  # the base model alone (residuals multiplied by 0)
    alone = zero.inpaint(image, mask, [5], SAMPLING, progress=False)[0]
    assert np.array_equal(with_net, alone)
    rand = load_controlnet_engine(str(models["base"]), str(models["random"]), device="cpu")
    changed = rand.inpaint(image, mask, [5], SAMPLING, progress=False)[0]
    assert np.abs(changed.astype(int) - alone.astype(int)).max() > 0


def test_rows_are_the_same_alone_or_batched(models):
    image, mask = _canvas()
    engine = load_controlnet_engine(str(models["base"]), str(models["random"]), device="cpu")
    both = engine.inpaint(image, mask, [11, 12], SAMPLING, progress=False)
    alone = engine.inpaint(image, mask, [12], SAMPLING, progress=False)[0]
    assert np.abs(both[1].astype(int) - alone.astype(int)).max() <= 1  # float batching noise at most
    assert not np.array_equal(both[0], both[1])


def test_infer_controlnet_writes_an_exact_collage_with_metadata(models, tmp_path):
    image, mask = _canvas(70, 90)  # not multiples of 8: exact size still comes back
    save_png(tmp_path / "a.png", image)
    save_png(tmp_path / "a_mask.png", np.where(mask, 0, 255).astype(np.uint8)[..., None].repeat(3, -1))
    out = tmp_path / "a_collage.png"
    rc = main(["infer", "--model", str(models["base"]), "--controlnet", str(models["random"]), "--control_scale",
               "0.7", "--image", str(tmp_path / "a.png"), "--mask", str(tmp_path / "a_mask.png"), "--size", "64",
               "--steps", "2", "--rows", "2", "--seed", "3", "--output", str(out), "--save_rows", "--device", "cpu",
               "--scheduler", "ddim"])
    assert rc == 0
    meta = read_metadata(out)
    assert meta["controlnet"] == str(models["random"]) and meta["controlnet_scale"] == 0.7
    assert meta["seeds"] == [3, 4] and meta["scheduler_class"] == "DDIMScheduler"
    for i, seed in enumerate((3, 4)):
        row = load_image(tmp_path / f"a_row{i}_seed{seed}.png")
        assert row.shape == image.shape
        assert np.array_equal(row[~mask], image[~mask])


def test_nine_channel_inpainting_model_takes_the_controlnet_too(models, tiny_model_dir):
    """The ControlNet steers a 9-channel inpainting UNet too: a ControlNet with non-zero output convolutions
    changes the fill, and at scale 0 the result is exactly that of a fresh (zero-convolution) ControlNet,
    i.e. of the inpainting model alone. Fails if the engine ignores the ControlNet or its scale."""
    image, mask = _canvas()
    engine = load_controlnet_engine(str(tiny_model_dir), str(models["random"]), device="cpu")
    steered = engine.inpaint(image, mask, [2], SAMPLING, progress=False)[0]
    assert steered.shape == image.shape and engine.describe()["unet_in_channels"] == 9
    engine.scale = 0.0  # residuals multiplied by 0
    off = engine.inpaint(image, mask, [2], SAMPLING, progress=False)[0]
    fresh = load_controlnet_engine(str(tiny_model_dir), str(models["zero"]), device="cpu")
    alone = fresh.inpaint(image, mask, [2], SAMPLING, progress=False)[0]
    assert np.array_equal(off, alone)
    assert np.abs(steered[mask].astype(int) - alone[mask].astype(int)).max() > 0


def test_controlnet_for_another_base_is_one_line(models, tmp_path, capsys):
    from diffusers import ControlNetModel, UNet2DConditionModel

    from inpaint_kit.presets import component_configs

    cfg = component_configs("tiny")["unet"]
    cfg["cross_attention_dim"] = 16
    ControlNetModel.from_unet(UNet2DConditionModel(in_channels=4, out_channels=4, **cfg)).save_pretrained(tmp_path / "other")
    with pytest.raises(InpaintKitError, match="cross_attention_dim is 16 but this --model needs 32"):
        load_controlnet_engine(str(models["base"]), str(tmp_path / "other"), device="cpu")
    with pytest.raises(InpaintKitError, match="not a diffusers ControlNet folder"):
        load_controlnet_engine(str(models["base"]), str(tmp_path), device="cpu")
    capsys.readouterr()
    rc = main(["infer", "--model", "builtin", "--controlnet", str(models["random"]), "--image", "imgs/chelsea.png",
               "--mask", "masks/chelsea.png"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--controlnet" in err[0] and "builtin" in err[0]


def test_controlnet_scale_without_controlnet_is_refused(capsys):
    rc = main(["infer", "--model", "builtin", "--control_scale", "0.5", "--image", "imgs/chelsea.png",
               "--mask", "masks/chelsea.png"])
    assert rc == 2 and "--controlnet_scale applies only with --controlnet" in capsys.readouterr().err


def test_tiny_model_writes_a_base_and_its_controlnet(tmp_path):
    from diffusers import ControlNetModel

    assert main(["tiny-model", "--out", str(tmp_path / "base"), "--base", "--controlnet", str(tmp_path / "cn")]) == 0
    assert json.loads((tmp_path / "base" / "unet" / "config.json").read_text())["in_channels"] == 4
    net = ControlNetModel.from_pretrained(tmp_path / "cn", local_files_only=True)
    assert all(torch.count_nonzero(b.weight) == 0 for b in net.controlnet_down_blocks)  # fresh: zero convs
    assert main(["tiny-model", "--out", str(tmp_path / "b2"), "--controlnet_random"]) == 2


def test_batch_with_crops_and_a_bad_item(models, tmp_path, capsys):
    imgs, masks, out = tmp_path / "imgs", tmp_path / "masks", tmp_path / "out"
    imgs.mkdir()
    masks.mkdir()
    image, _ = _canvas(96, 160)
    mask = np.zeros((96, 160), bool)
    mask[10:20, 120:150] = True  # small damage in a large image: --area crops works in a window around it
    save_png(imgs / "a.png", image)
    save_png(masks / "a.png", np.where(mask, 0, 255).astype(np.uint8)[..., None].repeat(3, -1))
    (imgs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    save_png(masks / "broken.png", np.zeros((8, 8, 3), np.uint8))
    rc = main(["infer", "--model", str(models["base"]), "--controlnet", str(models["random"]), "--batch_imgs_dir",
               str(imgs), "--batch_masks_dir", str(masks), "--output_dir", str(out), "--area", "crops", "--size", "64",
               "--padding", "8", "--steps", "2", "--rows", "2", "--seed", "5", "--save_rows", "--device", "cpu",
               "--thin_width", "0"])  # the 10-px-high damage is the model's, not the thin filler's
    assert rc == 1 and "1 failed" in capsys.readouterr().err
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    ok = [x for x in lines if x["status"] == "ok"][0]
    assert ok["controlnet"] == str(models["random"]) and ok["area_used"] == "crops"
    row = load_image(out / "a_row1_seed6.png")
    assert row.shape == image.shape and np.array_equal(row[~mask], image[~mask])
    assert not np.array_equal(row[mask], image[mask])


def test_outpaint_takes_the_controlnet_too(models, tmp_path):
    """Engine flags come from the registry, so outpaint loads the ControlNet engine as infer does."""
    image, _ = _canvas(48, 64)
    save_png(tmp_path / "a.png", image)
    out = tmp_path / "a_outpaint.png"
    rc = main(["outpaint", "--model", str(models["base"]), "--controlnet", str(models["random"]), "--image",
               str(tmp_path / "a.png"), "--right", "16", "--size", "64", "--steps", "2", "--rows", "1", "--seed", "2",
               "--output", str(out), "--device", "cpu", "--save_rows"])
    assert rc == 0
    meta = read_metadata(out)
    assert meta["engine"] == "controlnet" and meta["controlnet"] == str(models["random"])
    row = load_image(tmp_path / "a_outpaint_row0_seed2.png")
    assert row.shape == (48, 80, 3) and np.array_equal(row[:, :64], image)
