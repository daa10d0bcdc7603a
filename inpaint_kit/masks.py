"""Repair masks: conventions, reading mask files, resizing and feathering. Random masks are drawn by
the named generators of :mod:`inpaint_kit.maskgen`.

A mask inside the package is a ``bool`` array ``(H, W)`` with **True = repaint**. Mask files follow
``--mask_mode``: ``black`` (black = repaint, the default) or ``white`` (white = repaint); grey levels
binarize at 128 (>= 128 is white). This module is the one place where that conversion happens, and
:func:`read_mask` is the one way a mask file is read (inference, training, DefectFill): alpha-aware, and
resized to the image with :func:`cover_mask` (never nearest neighbour), so no marked pixel is lost.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .images import MAX_PIXELS, load_mask_channels
from .maskgen import MASK_KINDS, create_advanced_mask  # noqa: F401  (re-exported: the generators' old home)

log = logging.getLogger("inpaint_kit")

MASK_MODES = ("black", "white")
THRESHOLD = 128


def to_repair(grey: np.ndarray, mask_mode: str = "black") -> np.ndarray:
    """Binarize a grey uint8 mask ``(H, W)`` into a bool repair mask according to ``mask_mode``."""
    if mask_mode not in MASK_MODES:
        raise ValueError(f"mask_mode must be one of {MASK_MODES}, got {mask_mode!r}")
    white = grey >= THRESHOLD
    return ~white if mask_mode == "black" else white


def from_channels(grey: np.ndarray, alpha: np.ndarray | None, mask_mode: str = "black",
                  name: str = "mask") -> np.ndarray:
    """The repair mask of a mask file read as ``(grey, alpha)`` (:func:`inpaint_kit.images.load_mask_channels`).

    Normally ``grey`` decides (:func:`to_repair`). A mask painted only in the alpha channel (strokes on a
    transparent layer, exported as PNG: the alpha varies and the colour of the opaque pixels is one value;
    transparent pixels may hold any colour) is read from its alpha instead: opaque (alpha >= 128) = repair,
    whatever ``mask_mode`` (the strokes are what was painted); its colour alone would mean "repair
    everything" or "nothing"."""
    opaque = alpha >= THRESHOLD if alpha is not None else None
    if opaque is not None and opaque.any() and not opaque.all() and np.ptp(grey[opaque]) == 0:
        log.info("%s: colour is uniform, alpha varies: opaque pixels are the "
                                              "repair region", name)
        return opaque
    return to_repair(grey, mask_mode)


def read_mask(path: str | Path, mask_mode: str = "black", size: tuple[int, int] | None = None,
              max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a mask file as a bool repair mask ``(H, W)``: binarized by ``mask_mode``, or read from its alpha
    channel when only that is painted (:func:`from_channels`), and, when ``size`` ``(H, W)`` is given and
    differs, resized with :func:`cover_mask` so that no marked pixel is lost. Files over ``max_pixels``
    are refused before decoding (:func:`inpaint_kit.images.load_mask_channels`)."""
    mask = from_channels(*load_mask_channels(path, max_pixels), mask_mode, name=str(path))
    if size is not None and mask.shape != tuple(size):
        log.info("%s: mask %s resized to the image's %s", path, mask.shape[::-1], tuple(size)[::-1])
        mask = cover_mask(mask, size)
    return mask


def cover_mask(mask: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize a bool mask so that a target pixel is True if ANY source pixel under it is (exact: an
    integral image over each target pixel's source footprint). Downscaling never loses a thin crack;
    upscaling gives a superset of nearest neighbour. Use this, never nearest neighbour, on repair masks."""
    h, w = mask.shape
    th, tw = size_hw
    if (th, tw) == (h, w):
        return mask.copy()
    sat = np.zeros((h + 1, w + 1), np.int64)
    sat[1:, 1:] = mask.cumsum(0).cumsum(1)
    # source rows [r0, r1) under target row i: floor(i*h/th) .. ceil((i+1)*h/th), at least one row
    r0 = (np.arange(th) * h) // th
    r1 = np.maximum(-((-(np.arange(1, th + 1)) * h) // th), r0 + 1)
    c0 = (np.arange(tw) * w) // tw
    c1 = np.maximum(-((-(np.arange(1, tw + 1)) * w) // tw), c0 + 1)
    count = sat[r1][:, c1] - sat[r0][:, c1] - sat[r1][:, c0] + sat[r0][:, c0]
    return count > 0


def feather(mask: np.ndarray, radius: int) -> np.ndarray:
    """Blend weights ``(H, W)`` float32 in [0, 1] for pasting a result back: exactly 1 inside the mask,
    falling linearly to 0 over ``radius`` pixels just outside it, exactly 0 beyond.

    The band lies outside the mask so that the whole repair region is still the model's output."""
    alpha = mask.astype(np.float32)
    if radius <= 0 or not mask.any():
        return alpha
    import cv2

    # Distance (in pixels) of each keep-pixel to the nearest repair pixel.
    dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
    band = np.clip(1.0 - dist / float(radius + 1), 0.0, 1.0)
    return np.where(mask, 1.0, band).astype(np.float32)
