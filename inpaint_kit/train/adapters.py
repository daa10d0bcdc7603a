"""What trains and how it is saved (``train-lora``, ``train-defect``): peft LoRA adapters on the UNet
attention projections (default), the projections themselves (``--train attn``, partial UNet), and an
optional text-encoder LoRA.

Two output formats, both read by ``infer --lora`` (:mod:`inpaint_kit.engine.sd`):
* ``lora_unet.safetensors``: the diffusers LoRA format (``unet.`` / ``text_encoder.`` prefixed keys and
  the peft config as metadata), so plain diffusers loads it with
  ``pipe.load_lora_weights(dir, weight_name="lora_unet.safetensors")``;
* ``unet_partial_tuned.safetensors``: a plain state dict of the tuned UNet attention weights with their
  diffusers UNet key names (``down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight``, ...),
  to be loaded over the base UNet with ``unet.load_state_dict(sd, strict=False)``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

from ..errors import InpaintKitError
from ..engine.lora import PARTIAL_FORMAT, UNET_TARGETS, check_fits, target_layers  # noqa: F401 (the reader's rules)
from ..images import atomic_write

TEXT_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")  # CLIP text encoder self-attention


def check_rank(model: torch.nn.Module, rank: int, targets=UNET_TARGETS, what: str = "UNet") -> None:
    """Refuse a LoRA rank larger than the smallest targeted layer (the update could not be low-rank)."""
    layers = target_layers(model, targets)
    if not layers:
        raise InpaintKitError(f"the {what} has no attention layers named {', '.join(targets)}; it cannot take a LoRA")
    name, layer = min(layers.items(), key=lambda kv: min(kv[1].in_features, kv[1].out_features))
    limit = min(layer.in_features, layer.out_features)
    if rank > limit:
        raise InpaintKitError(
            f"--rank {rank} is larger than the {what} layer {name} ({layer.in_features}->{layer.out_features}); "
            f"use --rank {limit} or less"
        )


def add_lora(model: torch.nn.Module, rank: int, alpha: float, targets=UNET_TARGETS) -> None:
    """Freeze ``model`` and attach a trainable peft LoRA (``rank``, ``alpha``) to its ``targets``.

    Works for the diffusers UNet (its ``add_adapter``) and the transformers text encoder (peft's
    ``inject_adapter_in_model``: transformers 5.25's ``add_adapter`` refuses peft < 0.22). Either way the
    adapter is ``default`` and ``model.peft_config`` holds it, as :func:`save_lora` expects."""
    from diffusers import ModelMixin
    from peft import LoraConfig, inject_adapter_in_model

    model.requires_grad_(False)
    config = LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=list(targets))
    if isinstance(model, ModelMixin):
        model.add_adapter(config)
        return
    inject_adapter_in_model(config, model, adapter_name="default")
    if not getattr(model, "peft_config", None):
        model.peft_config = {"default": config}
    model._hf_peft_config_loaded = True  # what transformers' add_adapter marks


def unfreeze_attention(unet: torch.nn.Module) -> None:
    """Freeze the UNet except the attention projection weights and biases (``--train attn``)."""
    unet.requires_grad_(False)
    for layer in target_layers(unet).values():
        layer.requires_grad_(True)


def _lora_layers(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    return convert_state_dict_to_diffusers(get_peft_model_state_dict(model))


def save_lora(out_dir: str | Path, unet: torch.nn.Module, text_encoder: torch.nn.Module | None = None,
              weight_name: str = "lora_unet.safetensors") -> Path:
    """Write the LoRA of ``unet`` (and of ``text_encoder`` if it has one) in the diffusers format, atomically:
    diffusers writes into a temporary folder beside the target, then the file is renamed into place."""
    from diffusers import StableDiffusionInpaintPipeline

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kwargs = {"unet_lora_layers": _lora_layers(unet),
              "unet_lora_adapter_metadata": unet.peft_config["default"].to_dict()}
    if text_encoder is not None and getattr(text_encoder, "peft_config", None):
        kwargs["text_encoder_lora_layers"] = _lora_layers(text_encoder)
        kwargs["text_encoder_lora_adapter_metadata"] = text_encoder.peft_config["default"].to_dict()
    tmp = Path(tempfile.mkdtemp(prefix=".lora.", dir=out_dir))
    try:
        StableDiffusionInpaintPipeline.save_lora_weights(tmp, weight_name=weight_name, **kwargs)
        os.replace(tmp / weight_name, out_dir / weight_name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir / weight_name


def partial_state_dict(unet: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The UNet attention projection weights and biases, keyed as in ``unet.state_dict()``."""
    out = {}
    for name, layer in target_layers(unet).items():
        for pname, p in layer.named_parameters():
            out[f"{name}.{pname}"] = p.detach().to("cpu").contiguous()
    return out


def save_partial(out_path: str | Path, unet: torch.nn.Module, base_model: str = "") -> Path:
    """Write the tuned attention weights of ``unet`` as a plain safetensors state dict, atomically."""
    from safetensors.torch import save_file

    state = partial_state_dict(unet)
    meta = {"format": "pt", "inpaint_kit": PARTIAL_FORMAT, "base_model": str(base_model)}
    return atomic_write(out_path, lambda tmp: save_file(state, str(tmp), metadata=meta))
