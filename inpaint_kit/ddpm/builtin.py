"""The shipped model: ``--model builtin`` resolves to package data (no network), and the export that
turns a training run's EMA weights into those files (float16 safetensors + config.json)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import InpaintKitError

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "assets" / "builtin"


def resolve_model(model: str | Path) -> Path:
    """``builtin`` -> the installed package's model folder; anything else is taken as a folder path."""
    if str(model) == "builtin":
        if not (BUILTIN_DIR / "model.safetensors").is_file():
            raise InpaintKitError(f"{BUILTIN_DIR}: builtin model files are missing; reinstall inpaint-kit")
        return BUILTIN_DIR
    return Path(model)


BUILTIN_INFERENCE = {"sampler": "ddpm", "init": "telea", "strength": 0.5}  # measured: docs/benchmarks.md


def export_builtin(run_folder: str | Path, dst: str | Path = BUILTIN_DIR, dtype=torch.float16,
                   inference: dict | None = BUILTIN_INFERENCE) -> Path:
    """Copy a training run's EMA model into ``dst`` as ``dtype`` weights, checking it loads back.
    ``inference`` becomes the model's sampling defaults (``config.json`` ``extra.inference``)."""
    from ..engine.options import model_defaults
    from .unet import load_model, save_model

    net = load_model(run_folder)
    if inference is not None:
        net.config.extra = {**net.config.extra, "inference": dict(inference)}
        model_defaults(net.config, dst)  # refuse bad defaults before writing anything
    save_model(dst, net, dtype=dtype)
    load_model(dst)  # fails loudly now rather than on a user's machine
    return Path(dst)
