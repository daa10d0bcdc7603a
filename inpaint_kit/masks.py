"""Repair masks: conventions, resizing, feathering, and random mask generators.

A mask inside the package is a ``bool`` array ``(H, W)`` with **True = repaint**. Mask files follow
``--mask_mode``: ``black`` (black = repaint, the default) or ``white`` (white = repaint); grey levels
binarize at 128 (>= 128 is white). This module is the one place where that conversion happens.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

MASK_MODES = ("black", "white")
THRESHOLD = 128


def to_repair(grey: np.ndarray, mask_mode: str = "black") -> np.ndarray:
    """Binarize a grey uint8 mask ``(H, W)`` into a bool repair mask according to ``mask_mode``."""
    if mask_mode not in MASK_MODES:
        raise ValueError(f"mask_mode must be one of {MASK_MODES}, got {mask_mode!r}")
    white = grey >= THRESHOLD
    return ~white if mask_mode == "black" else white


def resize_nearest(mask: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize a bool mask to ``(H, W)`` with nearest neighbour (no new grey levels)."""
    h, w = size_hw
    if mask.shape == (h, w):
        return mask
    im = Image.fromarray(mask.astype(np.uint8) * 255, "L").resize((w, h), Image.NEAREST)
    return np.asarray(im) >= THRESHOLD


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
