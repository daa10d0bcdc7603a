"""Engines fill working canvases. Two kinds share one interface: a diffusers Stable Diffusion
inpainting pipeline (:mod:`inpaint_kit.engine.sd`) and the from-scratch DDPM (:mod:`inpaint_kit.engine.ddpm`,
network and math in :mod:`inpaint_kit.ddpm`). Their typed options are in :mod:`.options`.

The engine modules (:mod:`.sd`, :mod:`.ddpm`) import torch; this package and :mod:`.options` do not
(until a function needs it). An engine is loaded once per run. Its one job is :meth:`Engine.fill`: a list of independent
:class:`Canvas` items (image, mask, seed), all of one working size, filled in as few batched model calls
as memory allows; item k's result depends only on item k (its seed owns its noise), never on what else is
in the batch. ``inpaint(image, mask, seeds)`` is the collage shorthand (one canvas per row)::

    engine = load_engine("path/or/hub-id", device=None, dtype="auto")
    results = engine.inpaint(image, mask, seeds=[1, 2, 3], sampling=Sampling(steps=30))
    results = engine.fill([Canvas(a, mask_a, 1), Canvas(b, mask_b, 7)], Sampling(steps=30))

``image`` is RGB uint8 ``(h, w, 3)`` at the working size (sides multiples of ``engine.multiple``);
``mask`` bool ``(h, w)`` with True = repaint; one RGB uint8 ``(h, w, 3)`` comes back per item.
Where the model works (windows, scales), pasting back outside the mask and resizing to the user's size
are not the engine's job (:mod:`inpaint_kit.geometry`, :mod:`inpaint_kit.inpaint`).
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


@dataclass(frozen=True, eq=False)
class Canvas:
    """One independent thing to fill: ``image`` RGB uint8 (h, w, 3), ``mask`` bool (h, w) True = repaint,
    and the ``seed`` that owns all of its noise. Items may share arrays (rows of one image): engines
    encode a shared image/mask pair once."""

    image: np.ndarray
    mask: np.ndarray
    seed: int


class Engine(Protocol):
    """The interface every engine implements (see module docstring)."""

    multiple: int  # working-canvas sides must be multiples of this

    def describe(self) -> dict:
        """Provenance recorded in every output: model, scheduler, lora, dtype, device, ..."""

    def fill(self, items: Sequence[Canvas], sampling: Sampling, progress: bool = True) -> list[np.ndarray]:
        """Fill each item's mask (items all of one size); returns one uint8 array per item."""

    def inpaint(self, image, mask: np.ndarray, seeds: Sequence[int], sampling: Sampling,
                progress: bool = True) -> list[np.ndarray]:
        """:meth:`fill` with one canvas per seed: ``image`` shared by all rows, or one per row."""


class RowsMixin:
    """``inpaint`` for engines that implement ``fill``."""

    def inpaint(self, image, mask: np.ndarray, seeds: Sequence[int], sampling: Sampling,
                progress: bool = True) -> list[np.ndarray]:
        images = row_images(image, len(seeds))
        images = images * len(seeds) if len(images) == 1 else images
        return self.fill([Canvas(im, mask, int(s)) for im, s in zip(images, seeds)], sampling, progress)


def check_items(items: Sequence[Canvas], multiple: int) -> tuple[int, int]:
    """The items' common ``(h, w)``; a ValueError unless there is at least one item, all of one size,
    sides multiples of ``multiple``, each mask of its image's size."""
    if not len(items):
        raise ValueError("fill needs at least one item")
    h, w = items[0].image.shape[:2]
    for it in items:
        if it.image.shape != (h, w, 3) or it.mask.shape != (h, w):
            raise ValueError(f"all items must be RGB images of one size with masks of that size; got image "
                             f"{it.image.shape} and mask {it.mask.shape} beside {(h, w, 3)}")
    if h % multiple or w % multiple:
        raise ValueError(f"working sides must be multiples of {multiple}; got {w}x{h}")
    return h, w


def call_seed(seed: int, call: int) -> int:
    """Seed of model call (or window) ``call`` for the row of ``seed``: the row's own sequence, so a row is
    the same alone or batched. Call 0 uses the row seed itself."""
    if call == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(call)]).generate_state(1)[0]) % (2**31 - 1) + 1


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


def load_engine(model: str = DEFAULT_MODEL, *, device: str | None = None, dtype: str = "auto",
                options: "SDOptions | DDPMOptions | None" = None) -> Engine:
    """Load the engine for ``model``: ``builtin`` / a DDPM folder (:mod:`.ddpm`, with
    :class:`~.options.DDPMOptions`), or an SD inpainting model given as a hub id, a local diffusers
    folder, or a single ``.safetensors``/``.ckpt`` file (:mod:`.sd`, with :class:`~.options.SDOptions`).
    ``options`` of the other engine's type is a one-line :class:`~inpaint_kit.errors.UsageError`."""
    from .options import DDPMOptions, SDOptions

    if str(model) in ("telea", "ns"):  # OpenCV's classical fill (engine/opencv.py)
        from .opencv import load_opencv_engine

        return load_opencv_engine(model, device=device, dtype=dtype, options=options)
    ddpm = is_ddpm_model(model)
    want = DDPMOptions if ddpm else SDOptions
    if options is not None and not isinstance(options, want):
        from ..errors import UsageError

        raise UsageError(f"--model {model} takes {want.__name__}, not {type(options).__name__}")
    if ddpm:
        from .ddpm import load_ddpm_engine

        return load_ddpm_engine(model, device=device, dtype=dtype, options=options)
    if options is not None and options.controlnet:
        from .controlnet import load_controlnet_engine

        return load_controlnet_engine(model, options.controlnet, scale=options.controlnet_scale, device=device,
                                      dtype=dtype, scheduler=options.scheduler, lora=options.lora,
                                      lora_scale=options.lora_scale, cache_dir=options.cache_dir)
    from .sd import load_sd_engine

    return load_sd_engine(model, device=device, dtype=dtype, options=options)
