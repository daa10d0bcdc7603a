"""Engines fill a working canvas. Two kinds share one interface: a diffusers Stable Diffusion
inpainting pipeline (:mod:`inpaint_kit.engine.sd`) and the from-scratch DDPM (:mod:`inpaint_kit.ddpm`).

An engine is loaded once per run and called once per image with all collage rows batched::

    engine = load_engine("path/or/hub-id", device=None, dtype="auto")
    results = engine.inpaint(image, mask, seeds=[1, 2, 3], sampling=Sampling(steps=30))

``image`` is RGB uint8 ``(h, w, 3)`` at the working size (sides multiples of ``engine.multiple``), or
a list of such images, one per seed (rows that have diverged, as in later outpainting strips);
``mask`` bool ``(h, w)`` with True = repaint; one RGB uint8 ``(h, w, 3)`` comes back per seed. The row
for a seed is the same whether it is rendered alone or with other seeds (the engine owns its noise).
Pasting back outside the mask and resizing to the user's size are not the engine's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from ..errors import InpaintKitError

DEFAULT_MODEL = "stabilityai/stable-diffusion-2-inpainting"
DTYPES = ("auto", "fp32", "fp16", "bf16")


@dataclass(frozen=True)
class Sampling:
    """What to generate: the same for every row of a collage (rows differ only by seed)."""

    prompt: str = ""
    negative_prompt: str = ""
    steps: int = 30
    guidance: float = 5.0


class Engine(Protocol):
    """The interface every engine implements (see module docstring)."""

    multiple: int  # working-canvas sides must be multiples of this

    def describe(self) -> dict:
        """Provenance recorded in every output: model, scheduler, lora, dtype, device, ..."""

    def inpaint(
        self, image, mask: np.ndarray, seeds: Sequence[int], sampling: Sampling, progress: bool = True
    ) -> list[np.ndarray]:
        """Fill ``mask`` in ``image`` (or in each row's own image) once per seed; returns uint8 arrays
        of the input's size."""


def row_images(image, rows: int) -> list[np.ndarray]:
    """The engines' ``image`` argument as a list: ``[image]`` for one image shared by all rows, else
    the given per-row list (checked: one per row, all of one size)."""
    if isinstance(image, np.ndarray):
        return [image]
    images = list(image)
    if len(images) != rows or any(im.shape != images[0].shape for im in images):
        raise ValueError(f"per-row images must be {rows} arrays of one size, got {[im.shape for im in images]}")
    return images


def check_device(device: str | None) -> str:
    """The device to run on: ``None`` -> ``cuda`` if available, else ``cpu``. A malformed name (``gpu0``)
    or a device this machine does not have (``cuda`` without CUDA, ``cuda:3`` with two GPUs) is a one-line
    :class:`InpaintKitError`, raised before any model loads."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise InpaintKitError(f"--device {device!r} is not a device name; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InpaintKitError(f"--device {device}: CUDA is not available here (torch {torch.__version__}); "
                                  "use --device cpu or install a CUDA build of torch")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InpaintKitError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                                  f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
    elif dev.type != "cpu":
        backend = getattr(torch, dev.type, None) if dev.type != "mps" else getattr(torch.backends, "mps", None)
        if backend is None or not getattr(backend, "is_available", lambda: False)():
            raise InpaintKitError(f"--device {device}: no {dev.type} device is available here; use cpu or cuda")
    return device


def resolve_device_dtype(device: str | None, dtype: str):
    """``(device, dtype name, torch dtype)`` for every engine: ``device`` checked by :func:`check_device`;
    ``dtype`` auto -> fp16 on CUDA, fp32 elsewhere. An unknown dtype is a ValueError."""
    import torch

    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    device = check_device(device)
    if dtype == "auto":
        dtype = "fp16" if torch.device(device).type == "cuda" else "fp32"
    return device, dtype, {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]


def is_ddpm_model(model: str) -> bool:
    """True for ``builtin`` or a folder saved by the from-scratch trainer (config.json marks it)."""
    if model == "builtin":
        return True
    cfg = Path(model) / "config.json"
    if not cfg.is_file() or (Path(model) / "model_index.json").exists():
        return False
    import json

    try:
        return json.loads(cfg.read_text()).get("_inpaint_kit") == "ddpm"
    except (OSError, ValueError):
        return False


def load_engine(
    model: str = DEFAULT_MODEL,
    *,
    device: str | None = None,
    dtype: str = "auto",
    scheduler: str = "default",
    lora: str | None = None,
    lora_scale: float = 1.0,
    cache_dir: str | None = None,
    **ddpm_options,
) -> Engine:
    """Load the engine for ``model``: ``builtin`` / a DDPM folder, or an SD inpainting model given as a
    hub id, a local diffusers folder, or a single ``.safetensors``/``.ckpt`` file.

    ``ddpm_options`` (sampler, jump_length, jump_n_sample, mask_soften, save_intermediates, ...) only
    apply to the DDPM engine."""
    if is_ddpm_model(model):
        from ..ddpm.engine import load_ddpm_engine

        return load_ddpm_engine(model, device=device, dtype=dtype, **ddpm_options)
    from .sd import load_sd_engine

    return load_sd_engine(
        model, device=device, dtype=dtype, scheduler=scheduler, lora=lora, lora_scale=lora_scale, cache_dir=cache_dir
    )
