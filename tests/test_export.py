"""export: a train-lora output fused into its base as one checkpoint (and a diffusers folder), or the LoRA
alone in kohya / diffusers layout, each giving the pixels ``infer --lora`` gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from conftest import one_line_cli

from inpaint_kit.cli import main

REPO = Path(__file__).resolve().parents[1]
SCALE = 0.6
PROMPT = "a red cat"  # a prompt, so that the text encoder's LoRA shows in the pixels


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory):
    """What train-lora writes, with visible weights: a LoRA on the UNet and the text encoder (random up
    weights instead of a training run's near-zero ones), and --train attn partial weights."""
    from inpaint_kit.engine.sd import load_pipeline
    from inpaint_kit.train.adapters import TEXT_TARGETS, add_lora, save_lora, save_partial, target_layers

    root = tmp_path_factory.mktemp("export")
    pipe = load_pipeline(str(tiny_model_dir))
    add_lora(pipe.unet, 4, 8)
    add_lora(pipe.text_encoder, 4, 4, targets=TEXT_TARGETS)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in (pipe.unet, pipe.text_encoder):
            for name, p in module.named_parameters():
                if "lora_B" in name:
                    p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    save_lora(root / "lora", pipe.unet, pipe.text_encoder)
    plain = load_pipeline(str(tiny_model_dir))
    with torch.no_grad():
        for layer in target_layers(plain.unet).values():
            layer.weight.add_(torch.randn(layer.weight.shape, generator=g) * 0.2)
    save_partial(root / "attn" / "unet_partial_tuned.safetensors", plain.unet, str(tiny_model_dir))
    return root


def infer(model, out: Path, *extra) -> np.ndarray:
    from PIL import Image

    code = main(["infer", "--model", str(model), "--image", str(REPO / "imgs" / "coffee.png"), "--mask",
                 str(REPO / "masks" / "coffee.png"), "--steps", "2", "--size", "64", "--rows", "1", "--seed", "5",
                 "--prompt", PROMPT, "--output", str(out / "c.png"), "--overwrite", "--no_progress", "--save_rows", *extra])
    assert code == 0
    return np.asarray(Image.open(next(out.glob("*_row0_*.png")))).astype(int)


@pytest.fixture(scope="module")
def reference(tiny_model_dir, trained, tmp_path_factory):
    """infer's own results: the base alone, with the LoRA at SCALE, with the partial weights at SCALE."""
    out = tmp_path_factory.mktemp("ref")
    return {"base": infer(tiny_model_dir, out / "base"),
            "lora": infer(tiny_model_dir, out / "lora", "--lora", str(trained / "lora"), "--lora_scale", str(SCALE)),
            "attn": infer(tiny_model_dir, out / "attn", "--lora", str(trained / "attn"), "--lora_scale", str(SCALE))}


@pytest.mark.parametrize("kind", ["lora", "attn"])
def test_fused_checkpoint_gives_the_pixels_of_infer_lora(tiny_model_dir, trained, reference, tmp_path, kind):
    from inpaint_kit.images import read_metadata

    fused = tmp_path / "fused.safetensors"
    code = main(["export", "--lora", str(trained / kind), "--model", str(tiny_model_dir), "--single_file", str(fused),
                 "--output_dir", str(tmp_path / "fused"), "--lora_scale", str(SCALE), "--no_progress"])
    assert code == 0
    assert np.abs(reference[kind] - reference["base"]).max() > 10  # the LoRA changes the fill
    from_file = infer(fused, tmp_path / "f")  # its config folder is tmp_path/fused/, beside it
    from_folder = infer(tmp_path / "fused", tmp_path / "d")
    assert np.abs(from_file - reference[kind]).max() <= 2  # fusing only reorders float sums
    assert np.abs(from_folder - reference[kind]).max() <= 2
    recipe = read_metadata(next((tmp_path / "f").glob("*_row0_*.png")))["recipe"]
    assert recipe["method"] == ("fuse_lora" if kind == "lora" else "fuse_partial")
    assert recipe["lora_scale"] == SCALE and len(recipe["models"]["lora"]["sha256"]) == 64


def test_fused_checkpoint_has_the_base_layout_and_no_lora_keys(tiny_model_dir, trained, tmp_path):
    from inpaint_kit.engine.sd import load_pipeline
    from inpaint_kit.ldm_layout import ldm_state_dict

    fused = tmp_path / "fused.safetensors"
    assert main(["export", "--lora", str(trained / "lora"), "--model", str(tiny_model_dir), "--single_file", str(fused),
                 "--dtype", "fp16", "--no_progress"]) == 0
    base = ldm_state_dict(load_pipeline(str(tiny_model_dir)))
    with safe_open(str(fused), framework="pt") as f:
        assert set(f.keys()) == set(base)
        assert f.get_tensor("model.diffusion_model.out.2.weight").dtype == torch.float16
        # the UNet's attention projections changed, its other weights did not
        q = "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight"
        assert not torch.equal(f.get_tensor(q).float(), base[q].half().float())
        conv = "model.diffusion_model.input_blocks.1.0.in_layers.2.weight"
        assert torch.equal(f.get_tensor(conv), base[conv].half())


@pytest.mark.parametrize("fmt", ["kohya", "diffusers"])
def test_adapter_alone_loads_like_infer_lora_with_the_scale_baked_in(tiny_model_dir, trained, reference, tmp_path, fmt):
    out = tmp_path / f"{fmt}.safetensors"
    assert main(["export", "--lora", str(trained / "lora"), "--lora_format", fmt, "--output", str(out),
                 "--lora_scale", str(SCALE), "--no_progress"]) == 0
    got = infer(tiny_model_dir, tmp_path / "o", "--lora", str(out))  # strength 1: the scale is in the file
    assert np.abs(got - reference["lora"]).max() <= 2
    with safe_open(str(out), framework="pt") as f:
        keys = list(f.keys())
        if fmt == "kohya":
            assert all(k.startswith(("lora_unet_", "lora_te_text_model_encoder_layers_")) for k in keys)
            alphas = {(k.split("_")[1], round(f.get_tensor(k).item(), 4)) for k in keys if k.endswith(".alpha")}
            assert alphas == {("unet", round(8 * SCALE, 4)), ("te", round(4 * SCALE, 4))}  # lora_alpha x scale
        else:
            assert any(k.startswith("text_encoder.") for k in keys) and any(k.startswith("unet.") for k in keys)


def test_kohya_export_carries_the_text_encoder_lora(tiny_model_dir, trained, reference, tmp_path):
    """Without its lora_te_ part the kohya file gives other pixels: the text-encoder LoRA is really in it."""
    from safetensors.torch import load_file, save_file

    out = tmp_path / "k.safetensors"
    assert main(["export", "--lora", str(trained / "lora"), "--lora_format", "kohya", "--output", str(out),
                 "--lora_scale", str(SCALE), "--no_progress"]) == 0
    unet_only = {k: v for k, v in load_file(str(out)).items() if k.startswith("lora_unet_")}
    save_file(unet_only, str(tmp_path / "u.safetensors"))
    got = infer(tiny_model_dir, tmp_path / "o", "--lora", str(tmp_path / "u.safetensors"))
    assert np.abs(got - reference["lora"]).max() > 2


def test_export_flag_errors_are_one_line(tiny_model_dir, trained, tmp_path, capsys):
    lora = str(trained / "lora")
    err = one_line_cli(["export", "--lora", lora], capsys)
    assert "nothing to export" in err
    err = one_line_cli(["export", "--lora", lora, "--single_file", str(tmp_path / "x.safetensors")], capsys)
    assert "give it with --model" in err
    err = one_line_cli(["export", "--lora", lora, "--model", str(tiny_model_dir), "--lora_format", "kohya",
                        "--output", str(tmp_path / "k.safetensors")], capsys)
    assert "--model is the base a LoRA is fused into" in err
    err = one_line_cli(["export", "--lora", str(trained / "attn"), "--lora_format", "kohya",
                        "--output", str(tmp_path / "k.safetensors")], capsys)
    assert "not a LoRA" in err and "--single_file" in err
    err = one_line_cli(["export", "--lora", lora, "--lora_format", "kohya"], capsys)
    assert "--lora_format and --output go together" in err
    err = one_line_cli(["export", "--lora", str(tmp_path / "none"), "--lora_format", "kohya",
                        "--output", str(tmp_path / "k.safetensors")], capsys)
    assert "no such LoRA file or folder" in err
    err = one_line_cli(["export", "--lora", lora, "--model", str(tiny_model_dir), "--single_file",
                        str(tmp_path / "x.ckpt")], capsys)
    assert ".safetensors" in err
    assert not list(tmp_path.iterdir())  # nothing written
