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
    results: Sequence,
    spacing_h: int = 20,
    spacing_v: int = 20,
    bgr: bool = False,
) -> np.ndarray:
    """Rows x 3 tiles, each exactly the original's size: ``(rows*H + (rows-1)*v, 3*W + 2*h, 3)``.

    A result is an RGB array, or a function that paints its row into the tile it is given (a large
    scan's row is then never a separate copy). ``bgr``: the sheet is stored in BGR order (for OpenCV's
    streaming PNG writer); tiles are given in RGB either way."""
    if spacing_h < 0 or spacing_v < 0:
        raise ValueError(f"collage spacing must be >= 0, got h={spacing_h} v={spacing_v}")
    h, w = original.shape[:2]
    rows = len(results)
    out = np.full((rows * h + (rows - 1) * spacing_v, 3 * w + 2 * spacing_h, 3), SPACING_COLOUR, np.uint8)
    view = out[..., ::-1] if bgr else out  # tiles are written in RGB order through this view
    for r, result in enumerate(results):
        top = r * (h + spacing_v)
        tiles = [view[top : top + h, c * (w + spacing_h) : c * (w + spacing_h) + w] for c in range(3)]
        tiles[0][...] = original
        tiles[1][...] = original
        tiles[1][mask] = 255  # the masked preview, painted in place
        if callable(result):
            result(tiles[2])
        elif result.shape != original.shape:
            raise ValueError(f"row {r} result is {result.shape}, expected {original.shape}")
        else:
            tiles[2][...] = result
    return out
