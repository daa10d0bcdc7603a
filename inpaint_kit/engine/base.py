"""The interface every engine implements, and the helpers engines share (no torch at import).

An engine is loaded once per run (:func:`inpaint_kit.engine.load_engine` picks it from the registry,
:mod:`inpaint_kit.engine.registry`). Its one job is :meth:`Engine.fill`: a list of independent
:class:`Canvas` items (image, mask, seed), all of one working size, filled in as few batched model calls
as memory allows; item k's result depends only on item k (its seed owns its noise), never on what else is
in the batch. ``inpaint(image, mask, seeds)`` is the collage shorthand (one canvas per row)::

    engine = load_engine("path/or/hub-id", device=None, dtype="auto")
    results = engine.inpaint(image, mask, seeds=[1, 2, 3], sampling=Sampling(steps=30))
    results = engine.fill([Canvas(a, mask_a, 1), Canvas(b, mask_b, 7)], Sampling(steps=30))

``image`` is RGB uint8 ``(h, w, 3)`` at the working size (sides multiples of ``engine.multiple``);
``mask`` bool ``(h, w)`` with True = repaint; ``fill`` gives back one **float32** ``(h, w, 3)`` in [0, 1]
per item (the model's own precision: never an 8-bit intermediate, so a 16-bit master's fill is quantised
once, to 16 bits, by :mod:`inpaint_kit.fill`). ``inpaint`` is the 8-bit shorthand: the same fills
quantised once (:func:`to_uint8`, the rounding engines have always used). An engine of another package
that still returns ``uint8`` from ``fill`` keeps working: its results are taken exactly as ``v / 255``
(:func:`to_float`), with 8-bit precision.
Where the model works (windows, scales), pasting back outside the mask and resizing to the user's size
are not the engine's job (:mod:`inpaint_kit.geometry`, :mod:`inpaint_kit.inpaint`).
"""

from __future__ import annotations

from dataclasses import dataclass
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
        """Provenance recorded in every output: ``engine`` (its registry name), model, dtype, device and
        whatever else decided the pixels (scheduler, LoRA, sampler, ...)."""

    def fill(self, items: Sequence[Canvas], sampling: Sampling, progress: bool = True) -> list[np.ndarray]:
        """Fill each item's mask (items all of one size); returns one float32 ``(h, w, 3)`` array in [0, 1]
        per item (known pixels as ``v / 255`` of the item's image, or the model's reconstruction of them)."""

    def inpaint(self, image, mask: np.ndarray, seeds: Sequence[int], sampling: Sampling,
                progress: bool = True) -> list[np.ndarray]:
        """:meth:`fill` with one canvas per seed (``image`` shared by all rows, or one per row), as 8-bit
        RGB rows (:func:`to_uint8`): the shorthand for previews, tests and 8-bit scores."""


class RowsMixin:
    """``inpaint`` for engines that implement ``fill``."""

    def inpaint(self, image, mask: np.ndarray, seeds: Sequence[int], sampling: Sampling,
                progress: bool = True) -> list[np.ndarray]:
        """:meth:`Engine.inpaint`: one :class:`Canvas` per seed, all filled by one :meth:`fill` call, each
        result quantised once to ``uint8``."""
        return [to_uint8(r) for r in fill_rows(self, image, mask, seeds, sampling, progress)]


def fill_rows(engine, image, mask: np.ndarray, seeds: Sequence[int], sampling: Sampling,
              progress: bool = True) -> list[np.ndarray]:
    """One float32 fill per seed (:func:`to_float`) of ``image`` (shared by all rows, or one per row): one
    :class:`Canvas` per seed through ``engine.fill``. An object that has only the 8-bit ``inpaint`` (an
    engine written before ``fill``, a test double) is asked through that, its rows converted exactly."""
    if not hasattr(engine, "fill"):
        return [to_float(r) for r in engine.inpaint(image, mask, seeds, sampling, progress)]
    images = row_images(image, len(seeds))
    images = images * len(seeds) if len(images) == 1 else images
    out = engine.fill([Canvas(im, mask, int(s)) for im, s in zip(images, seeds)], sampling, progress)
    return [to_float(r) for r in out]


def to_float(result: np.ndarray) -> np.ndarray:
    """An engine's result as float32 ``(h, w, 3)`` in [0, 1]: floats as they are (clipped), ``uint8`` (an
    engine of another package written before float fills) exactly as ``v / 255``."""
    a = np.asarray(result)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255)
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"an engine returned {a.dtype} pixels; fill must return float32 in [0, 1] (or uint8)")
    return np.clip(a, 0.0, 1.0, dtype=np.float32)


def to_uint8(result: np.ndarray) -> np.ndarray:
    """A fill quantised once to ``uint8``: ``round(v * 255)`` in float32, halves to even (what the engines
    returned before they handed back floats, so 8-bit results are unchanged); ``uint8`` stays as it is."""
    a = np.asarray(result)
    if a.dtype == np.uint8:
        return a
    return np.clip(np.rint(a.astype(np.float32, copy=False) * np.float32(255)), 0, 255).astype(np.uint8)


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


def one_line(e: BaseException) -> str:
    """The first line of an exception's text (at most 300 characters), for one-line errors that wrap a
    library's long message."""
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__
