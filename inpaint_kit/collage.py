"""Collages for comparing candidates: one row per seed, original | masked | result."""

from __future__ import annotations

from typing import Sequence

import numpy as np

SPACING_COLOUR = 255  # white gutters between tiles and rows


def masked_preview(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The original with the repair region painted white."""
    out = image.copy()
    out[mask] = 255
    return out


def grid(
    original: np.ndarray,
    mask: np.ndarray,
    results: Sequence[np.ndarray],
    spacing_h: int = 20,
    spacing_v: int = 20,
) -> np.ndarray:
    """Rows x 3 tiles, each exactly the original's size: ``(rows*H + (rows-1)*v, 3*W + 2*h, 3)``."""
    if spacing_h < 0 or spacing_v < 0:
        raise ValueError(f"collage spacing must be >= 0, got h={spacing_h} v={spacing_v}")
    h, w = original.shape[:2]
    rows = len(results)
    out = np.full((rows * h + (rows - 1) * spacing_v, 3 * w + 2 * spacing_h, 3), SPACING_COLOUR, np.uint8)
    for r, result in enumerate(results):
        if result.shape != original.shape:
            raise ValueError(f"row {r} result is {result.shape}, expected {original.shape}")
        top = r * (h + spacing_v)
        for c, tile in enumerate((original, original, result)):
            left = c * (w + spacing_h)
            out[top : top + h, left : left + w] = tile
        out[top : top + h, w + spacing_h : 2 * w + spacing_h][mask] = 255  # the masked preview, painted in place
    return out
