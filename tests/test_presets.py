"""Random-weight presets: tokenizer, determinism, architecture sizes, atomic save and offline reload."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from inpaint_kit.errors import InpaintKitError
from inpaint_kit.presets import (
    CLIP_VOCAB_SIZE,
    PRESETS,
    build_pipeline,
    build_tokenizer,
    component_configs,
    write_tiny_model,
)


def test_tokenizer_is_offline_byte_level_and_pads_to_77():
    tok = build_tokenizer()
    ids = tok("The mural, restored!", padding="max_length", max_length=tok.model_max_length).input_ids
    assert tok.model_max_length == 77 and len(ids) == 77
    assert ids[0] == tok.bos_token_id and tok.eos_token_id in ids
    assert tok.decode(ids, skip_special_tokens=True) == "the mural , restored !"
    # Any byte sequence tokenizes without unknown tokens (byte-level vocabulary).
    assert tok.unk_token_id not in tok("Fresko ÄÖÜ 壁画", add_special_tokens=False).input_ids
    # "the" is a merge: one token, not three.
    assert len(tok("the", add_special_tokens=False).input_ids) == 1


def test_same_seed_same_weights_other_seed_other_weights():
    a, b, c = build_pipeline("tiny", seed=3), build_pipeline("tiny", seed=3), build_pipeline("tiny", seed=4)
    wa, wb, wc = (p.unet.conv_in.weight for p in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert a.safety_checker is None and a.unet.config.in_channels == 9 and a.vae_scale_factor == 8


def test_build_pipeline_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_pipeline("tiny")
    assert torch.equal(torch.rand(3), expected)


def test_unknown_preset_lists_choices():
    with pytest.raises(ValueError, match="tiny, small, sd15, sd2"):
        build_pipeline("huge")


@pytest.mark.parametrize("preset,low,high", [("sd2", 865e6, 867e6), ("sd15", 859e6, 861e6)])
def test_real_architectures_have_the_real_unet_size(preset, low, high):
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel

    with init_empty_weights():  # meta tensors: counts parameters without allocating 3.5 GB
        unet = UNet2DConditionModel(in_channels=9, out_channels=4, **component_configs(preset)["unet"])
    assert low < sum(p.numel() for p in unet.parameters()) < high


def test_sd2_preset_matches_sd2_inpainting_config():
    cfg = component_configs("sd2")
    assert cfg["unet"]["attention_head_dim"] == (5, 10, 20, 20)
    assert cfg["unet"]["use_linear_projection"] and cfg["unet"]["cross_attention_dim"] == 1024
    assert cfg["text"]["hidden_size"] == 1024 and cfg["text"]["num_hidden_layers"] == 23
    assert cfg["text"]["vocab_size"] == CLIP_VOCAB_SIZE and set(PRESETS) == {"tiny", "small", "sd15", "sd2"}


def test_write_tiny_model_round_trips_offline(tiny_model_dir):
    from diffusers import PNDMScheduler, StableDiffusionInpaintPipeline

    assert json.loads((tiny_model_dir / "inpaint_kit.json").read_text()) == {
        "preset": "tiny", "seed": 0, "random_weights": True}
    pipe = StableDiffusionInpaintPipeline.from_pretrained(tiny_model_dir, local_files_only=True)
    assert isinstance(pipe.scheduler, PNDMScheduler) and pipe.scheduler.config.prediction_type == "epsilon"
    assert torch.equal(pipe.unet.conv_in.weight, build_pipeline("tiny", 0).unet.conv_in.weight)
    image = np.full((64, 64, 3), 128, np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    out = pipe(prompt="", image=image, mask_image=mask, height=64, width=64, num_inference_steps=2,
               guidance_scale=1.0, output_type="np").images
    assert out.shape == (1, 64, 64, 3) and np.isfinite(out).all()


def test_write_tiny_model_refuses_existing_unless_overwrite(tmp_path):
    out = tmp_path / "m"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(InpaintKitError, match="already exists.*--overwrite"):
        write_tiny_model(out, "tiny", seed=1)
    assert (out / "keep.txt").exists()
    write_tiny_model(out, "tiny", seed=1, overwrite=True)
    assert (out / "model_index.json").exists() and not (out / "keep.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary folders left behind


def test_tiny_model_command_writes_and_refuses_to_clobber(tmp_path, capsys):
    from inpaint_kit.cli import main

    out = tmp_path / "tm"
    assert main(["tiny-model", "--out", str(out), "--seed", "2"]) == 0
    assert json.loads((out / "inpaint_kit.json").read_text())["seed"] == 2
    capsys.readouterr()
    assert main(["tiny-model", "--output_dir", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {out} already exists; pass --overwrite to replace it or choose another --output_dir"]
    assert main(["tiny-model", "--out", str(out), "--overwrite"]) == 0
