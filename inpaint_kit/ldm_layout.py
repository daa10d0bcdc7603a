"""The original (LDM / AUTOMATIC1111 / ComfyUI) single-file key layout of Stable Diffusion 1.x/2.x
checkpoints, and its correspondence with diffusers' key names.

    UNet           model.diffusion_model.input_blocks.1.0.in_layers.0.weight   <- down_blocks.0.resnets.0.norm1.weight
    VAE            first_stage_model.encoder.down.0.block.0.norm1.weight       <- encoder.down_blocks.0.resnets.0.norm1.weight
                   (mid-block attention as 1x1 convolutions: (C, C, 1, 1) <- (C, C))
    text, SD 1.x   cond_stage_model.transformer.text_model.encoder.layers.0... <- (transformers' CLIPTextModel keys)
    text, SD 2.x   cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight
                   <- text_model.encoder.layers.0.self_attn.{q,k,v}_proj.weight concatenated (OpenCLIP layout)

Reading (original -> diffusers) is diffusers' own code: :func:`unet_keys_from_ldm` runs
``diffusers.loaders.single_file_utils.convert_ldm_unet_checkpoint`` on key *names* (that function only
moves values around), so a checkpoint's UNet can be read one tensor at a time. Writing (diffusers ->
original) is not in the diffusers package; it is ported from diffusers' repository script
``scripts/convert_diffusers_to_original_stable_diffusion.py`` (its ``unet_conversion_map*``,
``vae_conversion_map*`` and ``convert_text_enc_state_dict_v20``), generalised from the script's
hard-coded 4 levels x 2 layers to any ``layers_per_block`` / number of levels (the tiny test models have
2 levels), and checked against diffusers' reader on every write (:func:`check_unet_keys`).
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

from .errors import InpaintKitError

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."  # SD 1.x: transformers' CLIP keys as they are
OPENCLIP_PREFIX = "cond_stage_model.model."  # SD 2.x: OpenCLIP's own names

# (diffusers, original) pairs, from the script's tables
_RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
           ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection"))
_VAE_ATTN = (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out"))
_UNET_FIXED = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
               "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
# OpenCLIP text tower names (the script's ``textenc_conversion_lst``), applied to keys without ``text_model.``
_OPENCLIP = (("encoder.layers.", "transformer.resblocks."), ("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"),
             (".mlp.fc1.", ".mlp.c_fc."), (".mlp.fc2.", ".mlp.c_proj."), (".self_attn.", ".attn."),
             ("final_layer_norm.", "ln_final."), ("embeddings.token_embedding.weight", "token_embedding.weight"),
             ("embeddings.position_embedding.weight", "positional_embedding"))


def _rename(rest: str, pairs) -> str:
    for new, old in pairs:
        if rest == new or rest.startswith(new + "."):
            return old + rest[len(new):]
    return rest


def unet_key(key: str, layers: int, up_has_attn: list[bool]) -> str:
    """diffusers ``UNet2DConditionModel`` key -> original key (without ``model.diffusion_model.``).

    The original UNet numbers its blocks flat: each down level has ``layers`` (resnet[, attention]) blocks
    and one downsampler, each up level ``layers + 1`` blocks, the last one carrying the upsampler."""
    n = layers + 1  # original blocks per level
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
    """diffusers ``AutoencoderKL`` key -> original key (without ``first_stage_model.``); the decoder's
    levels are numbered in reverse in the original."""
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


def unet_keys_from_ldm(ldm_keys: Iterable[str], layers_per_block: int) -> dict[str, str]:
    """diffusers UNet key -> full original key (``model.diffusion_model.*``) for the UNet weights among
    ``ldm_keys``, as diffusers' single-file loader maps them (non-EMA weights). Keys it does not know
    are left out, so a caller comparing key sets sees them missing."""
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    names = {k: k for k in ldm_keys if k.startswith(UNET_PREFIX)}  # the converter moves these strings around
    return convert_ldm_unet_checkpoint(names, {"layers_per_block": int(layers_per_block)})


def unet_keys_to_ldm(keys: Iterable[str], config: Mapping) -> dict[str, str]:
    """diffusers UNet key -> full original key, for a UNet of ``config`` (its ``layers_per_block`` and
    ``up_block_types``). Checked against diffusers' reader (:func:`check_unet_keys`)."""
    up_has_attn = ["CrossAttn" in t for t in config["up_block_types"]]
    try:
        out = {k: UNET_PREFIX + unet_key(k, int(config["layers_per_block"]), up_has_attn) for k in keys}
    except KeyError as e:
        raise InpaintKitError(f"UNet weight {e.args[0]} has no place in the original single-file layout "
                              "(only SD 1.x/2.x UNets can be written as one checkpoint)") from None
    check_unet_keys(out, int(config["layers_per_block"]))
    return out


def check_unet_keys(mapping: Mapping[str, str], layers_per_block: int) -> None:
    """The original keys of ``mapping`` (diffusers -> original) must read back, through diffusers' own
    single-file converter, as the same diffusers keys; else a one-line error (the file would not load)."""
    back = unet_keys_from_ldm(mapping.values(), layers_per_block)
    wrong = [k for k, v in mapping.items() if back.get(k) != v]
    if wrong or len(back) != len(mapping):
        raise InpaintKitError(f"this UNet does not fit the original single-file layout (e.g. {(wrong or list(back))[0]}); "
                              "only SD 1.x/2.x-style UNets can be written as one checkpoint")


def _text_model_keys(state: Mapping) -> dict:
    """transformers >= 5.6 flattened ``CLIPTextModel`` (no ``text_model.`` level); the file format keeps it."""
    return {(k if k.startswith("text_model.") else "text_model." + k): v for k, v in state.items()}


def openclip_state_dict(text_state: Mapping) -> dict:
    """An SD 2.x text encoder's weights in OpenCLIP's layout (without ``cond_stage_model.model.``): the
    separate q/k/v projections become one ``in_proj_weight``/``in_proj_bias`` (order q, k, v), as
    ``convert_text_enc_state_dict_v20`` in diffusers' conversion script does. diffusers' reader
    (``convert_open_clip_checkpoint``) splits them back."""
    import torch

    out, qkv = {}, {}
    for key, value in text_state.items():
        key = key.removeprefix("text_model.")
        if key.endswith("position_ids"):
            continue  # a buffer, not a weight
        if m := re.match(r"(.*)\.self_attn\.([qkv])_proj\.(weight|bias)$", key):
            qkv.setdefault((m[1], m[3]), {})[m[2]] = value
            continue
        for new, old in _OPENCLIP:
            key = key.replace(new, old)
        out[key] = value
    for (layer, kind), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise InpaintKitError(f"text encoder layer {layer} lacks one of its q/k/v projections; the model is corrupt")
        for new, old in _OPENCLIP:
            layer = layer.replace(new, old)
        out[f"{layer}.attn.in_proj_{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def ldm_state_dict_from_parts(unet_state: Mapping, unet_config: Mapping, vae, text_encoder) -> dict:
    """A whole pipeline's weights in the original single-file layout: the UNet given as a state dict with
    diffusers keys (``unet_config`` its config), the VAE and text encoder as modules. SD 2.x (cross-attention
    width 1024) gets the OpenCLIP text layout, SD 1.x the CLIP one. Tensors are shared, not copied."""
    sd = {}
    for k, ldm in unet_keys_to_ldm(unet_state.keys(), unet_config).items():
        sd[ldm] = unet_state[k].contiguous()
    n_levels = len(vae.config.block_out_channels)
    for k, v in vae.state_dict().items():
        ldm = vae_key(k, n_levels)
        if re.search(r"mid\.attn_1\.(q|k|v|proj_out)\.weight$", ldm) and v.ndim == 2:
            v = v[:, :, None, None]  # the original VAE attention uses 1x1 convolutions
        sd[VAE_PREFIX + ldm] = v.contiguous()
    text = {k: v for k, v in text_encoder.state_dict().items() if not k.endswith("position_ids")}
    if int(unet_config["cross_attention_dim"]) == 1024:  # SD 2.x: OpenCLIP ViT-H text tower
        for k, v in openclip_state_dict(text).items():
            sd[OPENCLIP_PREFIX + k] = v.contiguous()
    else:
        for k, v in _text_model_keys(text).items():
            sd[CLIP_PREFIX + k] = v.contiguous()
    return sd


def ldm_state_dict(pipe) -> dict:
    """The weights of a diffusers SD pipeline (UNet, VAE, text encoder) in the original single-file layout."""
    return ldm_state_dict_from_parts(pipe.unet.state_dict(), pipe.unet.config, pipe.vae, pipe.text_encoder)
