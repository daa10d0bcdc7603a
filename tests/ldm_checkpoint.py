"""Write a diffusers SD pipeline as an original-layout (LDM / A1111) single-file checkpoint, for testing
``--model file.safetensors``: the inverse of diffusers' ``convert_ldm_*_checkpoint`` renames for SD1-style
files (UNet under ``model.diffusion_model.``, VAE under ``first_stage_model.`` with 1x1-conv attention,
CLIP under ``cond_stage_model.transformer.``)."""

from __future__ import annotations

import re

_RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
           ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection"))
_VAE_ATTN = (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out"))
_UNET_FIXED = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
               "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}


def _rename(rest: str, pairs) -> str:
    for new, old in pairs:
        if rest == new or rest.startswith(new + "."):
            return old + rest[len(new):]
    return rest


def unet_key(key: str, layers: int, up_has_attn: list[bool]) -> str:
    """diffusers UNet2DConditionModel key -> LDM ``model.diffusion_model.`` key."""
    n = layers + 1  # LDM input blocks per level: `layers` resnets (+attn) and one downsampler
    for new, old in _UNET_FIXED.items():
        if key.startswith(new + "."):
            return old + key[len(new):]
    if m := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        b, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        idx = b * n + j + 1
        return f"input_blocks.{idx}.0.{_rename(rest, _RESNET)}" if kind == "resnets" else f"input_blocks.{idx}.1.{rest}"
    if m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        return f"input_blocks.{(int(m[1]) + 1) * n}.0.op.{m[2]}"
    if m := re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.*)", key):
        kind, j, rest = m[1], int(m[2]), m[3]
        return f"middle_block.{2 * j}.{_rename(rest, _RESNET)}" if kind == "resnets" else f"middle_block.1.{rest}"
    if m := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        b, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        idx = b * n + j
        return f"output_blocks.{idx}.0.{_rename(rest, _RESNET)}" if kind == "resnets" else f"output_blocks.{idx}.1.{rest}"
    if m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
        b = int(m[1])
        return f"output_blocks.{b * n + layers}.{2 if up_has_attn[b] else 1}.conv.{m[2]}"
    raise KeyError(key)


def vae_key(key: str, n_levels: int) -> str:
    """diffusers AutoencoderKL key -> LDM ``first_stage_model.`` key."""
    key = re.sub(r"^(encoder|decoder)\.conv_norm_out\.", r"\1.norm_out.", key)
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        return f"encoder.down.{m[1]}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        return f"encoder.down.{m[1]}.downsample.conv.{m[2]}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        return f"decoder.up.{n_levels - 1 - int(m[1])}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
        return f"decoder.up.{n_levels - 1 - int(m[1])}.upsample.conv.{m[2]}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", key):
        return f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)", key):
        return f"{m[1]}.mid.attn_1.{_rename(m[2], _VAE_ATTN)}"
    return key  # conv_in, conv_out, norm_out, quant_conv, post_quant_conv keep their names


def ldm_state_dict(pipe) -> dict:
    """The whole pipeline's weights (UNet, VAE, text encoder) in the original single-file layout."""
    unet_cfg = pipe.unet.config
    up_has_attn = ["CrossAttn" in t for t in unet_cfg.up_block_types]
    sd = {}
    for k, v in pipe.unet.state_dict().items():
        sd["model.diffusion_model." + unet_key(k, unet_cfg.layers_per_block, up_has_attn)] = v.contiguous()
    n_levels = len(pipe.vae.config.block_out_channels)
    for k, v in pipe.vae.state_dict().items():
        ldm = vae_key(k, n_levels)
        if re.search(r"mid\.attn_1\.(q|k|v|proj_out)\.weight$", ldm):
            v = v[:, :, None, None]  # the original VAE attention uses 1x1 convolutions
        sd["first_stage_model." + ldm] = v.contiguous()
    for k, v in pipe.text_encoder.state_dict().items():
        # transformers >= 5.6 flattened CLIPTextModel (no ``text_model.`` level); the file format keeps it.
        k = k if k.startswith("text_model.") else "text_model." + k
        sd["cond_stage_model.transformer." + k] = v.contiguous()
    return sd
