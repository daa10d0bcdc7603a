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
    shape = sheet_shape(original.shape[:2], len(results), spacing_h, spacing_v)
    return np.concatenate(list(bands(original, mask, results, spacing_h, spacing_v, band=original.shape[0])))\
        .reshape(*shape, 3)


def sheet_shape(hw: tuple[int, int], rows: int, spacing_h: int = 20, spacing_v: int = 20) -> tuple[int, int]:
    """``(height, width)`` of a collage of ``rows`` rows of images of size ``hw``."""
    if spacing_h < 0 or spacing_v < 0:
        raise ValueError(f"collage spacing must be >= 0, got h={spacing_h} v={spacing_v}")
    h, w = hw
    return rows * h + (rows - 1) * spacing_v, 3 * w + 2 * spacing_h


def bands(original: np.ndarray, mask: np.ndarray, results: Sequence, spacing_h: int = 20, spacing_v: int = 20,
          band: int = 256):
    """The collage of :func:`grid`, top to bottom, in bands of at most ``band`` lines ``(n, 3*W + 2*h, 3)``,
    so that a large scan's collage is written without ever being whole in memory. A result is an RGB
    array, or a function ``paint(out, r0, r1)`` writing its lines ``r0:r1`` into ``out`` (a row kept only
    as its fill, :meth:`inpaint_kit.fill.Fill.paint_lines`)."""
    h, w = original.shape[:2]
    width = sheet_shape((h, w), len(results), spacing_h, spacing_v)[1]
    for r, result in enumerate(results):
        if not callable(result) and result.shape != original.shape:
            raise ValueError(f"row {r} result is {result.shape}, expected {original.shape}")
        if r and spacing_v:
            yield np.full((spacing_v, width, 3), SPACING_COLOUR, np.uint8)
        for r0 in range(0, h, band):
            r1 = min(h, r0 + band)
            out = np.full((r1 - r0, width, 3), SPACING_COLOUR, np.uint8)
            tiles = [out[:, c * (w + spacing_h): c * (w + spacing_h) + w] for c in range(3)]
            tiles[0][...] = original[r0:r1]
            tiles[1][...] = original[r0:r1]
            tiles[1][mask[r0:r1]] = 255  # the masked preview
            if callable(result):
                result(tiles[2], r0, r1)
            else:
                tiles[2][...] = result[r0:r1]
            yield out
