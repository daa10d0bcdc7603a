"""The original single-file key layout: what we write, diffusers' own single-file reader maps back."""

from __future__ import annotations

import pytest
import torch

from inpaint_kit.errors import InpaintKitError
from inpaint_kit.ldm_layout import OPENCLIP_PREFIX, check_unet_keys, openclip_state_dict, unet_keys_to_ldm
from inpaint_kit.presets import PRESETS, component_configs


@pytest.mark.parametrize("preset", PRESETS)
def test_unet_keys_map_both_ways_through_diffusers_reader(preset):
    """Every UNet key of every preset (tiny: 2 levels; sd15/sd2: the real 4 levels) gets an original key
    that diffusers' convert_ldm_unet_checkpoint reads back as the same diffusers key (weights on the meta
    device: no memory)."""
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        unet = UNet2DConditionModel(in_channels=9, out_channels=4, **component_configs(preset)["unet"])
    keys = list(unet.state_dict())
    mapping = unet_keys_to_ldm(keys, unet.config)  # raises if diffusers' reader disagrees
    assert len(set(mapping.values())) == len(keys)
    assert mapping["down_blocks.0.resnets.0.norm1.weight"] == "model.diffusion_model.input_blocks.1.0.in_layers.0.weight"
    assert mapping["conv_in.weight"] == "model.diffusion_model.input_blocks.0.0.weight"


def test_a_wrong_original_key_is_caught():
    with pytest.raises(InpaintKitError, match="does not fit the original single-file layout"):
        check_unet_keys({"conv_in.weight": "model.diffusion_model.input_blocks.0.1.weight"}, 2)


def test_sd2_text_encoder_round_trips_through_diffusers_openclip_reader():
    """SD 2.x checkpoints keep OpenCLIP's layout (q/k/v in one in_proj): diffusers' reader splits ours back
    into exactly the original weights."""
    from diffusers.loaders.single_file_utils import convert_open_clip_checkpoint
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    text = CLIPTextModel(CLIPTextConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=3, num_attention_heads=4,
                                        vocab_size=300, max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                                        pad_token_id=1))
    ours = {OPENCLIP_PREFIX + k: v for k, v in openclip_state_dict(text.state_dict()).items()}
    assert OPENCLIP_PREFIX + "transformer.resblocks.2.attn.in_proj_weight" in ours
    back = convert_open_clip_checkpoint(text, ours)
    original = {(k if k.startswith("text_model.") else "text_model." + k): v
                for k, v in text.state_dict().items() if not k.endswith("position_ids")}
    assert set(back) == set(original)
    assert all(torch.equal(back[k], original[k]) for k in original)


def test_sd2_style_pipeline_round_trips_through_from_single_file(tmp_path):
    """A pipeline of the SD 2.x kind (cross-attention 1024, linear projections, an OpenCLIP-width text
    encoder; small otherwise) written in the original layout loads back with diffusers' from_single_file
    (text encoder through its OpenCLIP reader) to exactly the same weights."""
    from diffusers import StableDiffusionInpaintPipeline, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel

    from inpaint_kit.ldm_layout import ldm_state_dict
    from inpaint_kit.presets import build_pipeline

    tiny = build_pipeline("tiny", seed=0)
    tok = tiny.tokenizer
    torch.manual_seed(0)
    unet = UNet2DConditionModel(in_channels=9, out_channels=4, block_out_channels=(32, 64), layers_per_block=2,
                                sample_size=8, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=1024,
                                attention_head_dim=(2, 4), use_linear_projection=True)
    text = CLIPTextModel(CLIPTextConfig(hidden_size=1024, intermediate_size=64, num_hidden_layers=2, num_attention_heads=16,
                                        vocab_size=len(tok), max_position_embeddings=77, bos_token_id=tok.bos_token_id,
                                        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, hidden_act="gelu"))
    pipe = StableDiffusionInpaintPipeline(vae=tiny.vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=tiny.scheduler,
                                          safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(tmp_path / "sd2ish")
    state = ldm_state_dict(pipe)
    assert "cond_stage_model.model.transformer.resblocks.1.attn.in_proj_weight" in state
    save_file(state, str(tmp_path / "sd2ish.safetensors"))
    back = StableDiffusionInpaintPipeline.from_single_file(str(tmp_path / "sd2ish.safetensors"), config=str(tmp_path / "sd2ish"),
                                                           local_files_only=True, safety_checker=None,
                                                           requires_safety_checker=False)
    for name in ("unet", "vae", "text_encoder"):
        want, got = getattr(pipe, name).state_dict(), getattr(back, name).state_dict()
        assert set(want) == set(got), name
        assert all(torch.equal(want[k], got[k]) for k in want), name
