"""LoRA and partial fine-tunes at inference (``--lora``, ``--lora_scale``): find the weights file, check it
fits the loaded UNet before anything is loaded into it, and apply it.

Two formats, both written by ``train-lora`` (:mod:`inpaint_kit.train`, which takes the names and the
shape rules from here):

* ``lora_unet.safetensors`` (or diffusers' ``pytorch_lora_weights.safetensors``): the diffusers LoRA format,
  loaded as the adapter ``inpaint_kit`` weighted by the scale;
* ``unet_partial_tuned.safetensors``: a plain state dict of tuned UNet weights, blended over the base
  weights as ``lerp(base, tuned, scale)``.

Nothing here imports torch at module level.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import InpaintKitError
from .base import one_line

log = logging.getLogger("inpaint_kit")

LORA_NAMES = ("lora_unet.safetensors", "pytorch_lora_weights.safetensors")  # diffusers LoRA format
PARTIAL_NAME = "unet_partial_tuned.safetensors"  # plain UNet state dict (inpaint_kit.train.adapters.save_partial)
PARTIAL_FORMAT = "inpaint-kit-unet-partial"  # the partial file's safetensors metadata "inpaint_kit"
ADAPTER = "inpaint_kit"
UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")  # attention projections of every transformer block


def target_layers(model, targets=UNET_TARGETS) -> dict:
    """Linear layers of ``model`` (a torch module) whose qualified name ends with one of ``targets``, by name."""
    import torch

    found = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and any(name == t or name.endswith("." + t) for t in targets):
            found[name] = module
    return found


def check_fits(unet, weights_path: str | Path) -> None:
    """Raise a one-line :class:`InpaintKitError` if a ``lora_unet.safetensors`` or
    ``unet_partial_tuned.safetensors`` does not fit ``unet`` (missing layers or different shapes), before
    any weight is loaded. Text-encoder keys of a LoRA file are not checked here."""
    from safetensors import safe_open

    path = Path(weights_path)
    try:
        with safe_open(str(path), framework="pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise InpaintKitError(f"{path}: not a readable safetensors file ({e}); re-export the weights")
    base = {k: tuple(v.shape) for k, v in unet.state_dict().items()}
    layers = target_layers(unet)
    for key, shape in shapes.items():
        if key.startswith("text_encoder."):
            continue
        if ".lora_A." in key or ".lora_B." in key or ".lora.down." in key or ".lora.up." in key:
            name = key.removeprefix("unet.").split(".lora")[0]
            layer = layers.get(name)
            if layer is None:
                raise InpaintKitError(f"{path}: LoRA layer {name} does not exist in this model; "
                                      "it was trained for a different base model")
            # lora_A (down): (r, in_features); lora_B (up): (out_features, r)
            expected = layer.in_features if (".lora_A." in key or ".lora.down." in key) else layer.out_features
            got = shape[1] if (".lora_A." in key or ".lora.down." in key) else shape[0]
            if got != expected:
                raise InpaintKitError(f"{path}: LoRA {key} has shape {shape} but the model's layer {name} is "
                                      f"{layer.in_features}->{layer.out_features}; it was trained for a different base model")
        elif key in base:
            if shape != base[key]:
                raise InpaintKitError(f"{path}: {key} has shape {shape} but the model expects {base[key]}; "
                                      "it was trained for a different base model")
        elif not key.endswith(".alpha"):
            raise InpaintKitError(f"{path}: weight {key} does not exist in this model; "
                                  "it was trained for a different base model")


def resolve_lora(lora: str) -> tuple[str, Path]:
    """(kind, file) for ``--lora``: kind 'lora' (diffusers LoRA) or 'partial' (plain UNet state dict).

    A folder must hold ``lora_unet.safetensors`` (or diffusers' ``pytorch_lora_weights.safetensors``) or
    ``unet_partial_tuned.safetensors``; a file is classified by its keys (LoRA keys contain ``lora``)."""
    path = Path(lora).expanduser()
    if path.is_dir():
        for name in (*LORA_NAMES, PARTIAL_NAME):
            if (path / name).is_file():
                return ("partial" if name == PARTIAL_NAME else "lora"), path / name
        raise InpaintKitError(f"{path} holds no {', '.join((*LORA_NAMES, PARTIAL_NAME))}; pass the training output folder or one of these files")
    if not path.is_file():
        raise InpaintKitError(f"{path}: no such LoRA file or folder")
    if path.suffix.lower() != ".safetensors":
        raise InpaintKitError(f"{path}: LoRA / fine-tune weights must be a .safetensors file")
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            keys, meta = list(f.keys()), f.metadata() or {}
    except Exception as e:
        raise InpaintKitError(f"{path}: not a readable safetensors file ({one_line(e)})") from e
    if meta.get("inpaint_kit") == PARTIAL_FORMAT or not any("lora" in k for k in keys):
        return "partial", path
    return "lora", path


def apply_partial(unet, path: Path, scale: float) -> int:
    """Load a partial fine-tune over ``unet``: each weight becomes ``lerp(base, tuned, scale)`` (scale 0
    is the base exactly, 1 the tuned weights exactly). Every key must exist in the UNet with the same
    shape, else a one-line error naming the file. Returns the number of tensors changed."""
    import torch
    from safetensors.torch import load_file

    tuned = load_file(str(path))
    base = unet.state_dict()
    for key, value in tuned.items():
        if key not in base:
            raise InpaintKitError(f"{path}: weight {key} does not exist in this model's UNet; it was trained for a different base model")
        if tuple(value.shape) != tuple(base[key].shape):
            raise InpaintKitError(f"{path}: {key} has shape {tuple(value.shape)} but the model's UNet expects "
                                  f"{tuple(base[key].shape)}; it was trained for a different base model")
    with torch.no_grad():
        for key, value in tuned.items():
            target = base[key]  # state_dict tensors share storage with the parameters
            mixed = torch.lerp(target.float(), value.to(target.device).float(), float(scale))
            target.copy_(mixed.to(target.dtype))
    return len(tuned)


def apply_lora(pipe, path: Path, scale: float) -> None:
    """Load a diffusers-format LoRA into ``pipe`` as adapter ``inpaint_kit`` weighted by ``scale``."""
    if has_checkable_keys(path):
        check_fits(pipe.unet, path)  # the shape rules of the trainer that wrote the file, in one line
    try:
        pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=ADAPTER)
    except Exception as e:  # shape mismatches surface as RuntimeError/ValueError with long texts
        raise InpaintKitError(f"{path}: LoRA does not fit this model ({one_line(e)})") from e
    if ADAPTER not in pipe.get_list_adapters().get("unet", []):
        raise InpaintKitError(f"{path}: no LoRA weight matches a layer of this model's UNet; it was trained for a different base model")
    pipe.set_adapters([ADAPTER], adapter_weights=[float(scale)])


def apply(pipe, lora: tuple[str, Path], scale: float) -> None:
    """Apply ``lora`` (a :func:`resolve_lora` result) to ``pipe`` at ``scale``."""
    kind, path = lora
    if kind == "partial":
        n = apply_partial(pipe.unet, path, scale)
        log.info("loaded %d fine-tuned UNet tensors from %s (scale %s)", n, path, scale)
    else:
        apply_lora(pipe, path, scale)


def has_checkable_keys(path: Path) -> bool:
    """True for the key styles :func:`check_fits` understands (peft ``lora_A/B`` and diffusers ``lora.down/up``);
    other styles (e.g. kohya's ``lora_unet_*``) are left to diffusers' own converters."""
    from safetensors import safe_open

    markers = (".lora_A.", ".lora_B.", ".lora.down.", ".lora.up.")
    with safe_open(str(path), framework="pt") as f:
        return any(m in k for k in f.keys() for m in markers)
