"""Native-resolution inference in overlapping tiles, blended without seams, in bounded memory.

A per-window function ``fn(window uint8 (h, w, 3)) -> float32 (h, w)`` in [0, 1] (the network, or the
classical filter) is run on tiles of ``tile`` px, each seen with ``context`` extra px on every side (cut
off afterwards, so no tile's output comes from its zero-padded border). Neighbouring tiles overlap by at
least ``overlap`` px and are blended with linear ramps that sum to exactly 1 (a partition of unity), so a
seam is a weighted average of two nearly equal predictions, never a step.

Memory: tiles are processed one row of tiles at a time; only that band (``tile x W`` float32) and its
overlap with the next band are held in float, and finished rows go straight into the ``uint16 (H, W)``
result (probability x 65535). A 100-MP scan needs the image (300 MB) + 200 MB for the result + two
bands (tens of MB), never full-resolution float maps.

Pixels outside the image (context at the borders, rounding up to the network's ``multiple``) are mirrored
(``numpy.pad`` "reflect"), so an image processed as one tile and the same image processed whole are the
same computation.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

PROB_SCALE = 65535  # probabilities are stored as uint16 = round(p * PROB_SCALE)


def starts(length: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Start offsets of tiles of up to ``tile`` px covering ``[0, length)``: multiples of ``multiple`` (so
    every tile sees the network's pooling grid where the whole image would), neighbours overlapping by at
    least ``overlap`` px; the last tile is cut at ``length``. One tile when the image fits."""
    if length <= tile:
        return [0]
    step = max(multiple, (tile - overlap) // multiple * multiple)
    return list(range(0, length - tile + step, step))  # the last start is the first >= length - tile


def ramps(offsets: list[int], lengths: list[int]) -> list[np.ndarray]:
    """1-D blending weights of consecutive tiles: 1 inside, linear ramps across each overlap, such that the
    weights of overlapping tiles sum to exactly 1 at every pixel."""
    out = []
    for k, (s, n) in enumerate(zip(offsets, lengths)):
        w = np.ones(n, np.float32)
        if k > 0:
            ov = offsets[k - 1] + lengths[k - 1] - s
            w[:ov] = (np.arange(ov, dtype=np.float32) + 0.5) / ov
        if k < len(offsets) - 1:
            ov = s + n - offsets[k + 1]
            w[n - ov:] = 1 - (np.arange(ov, dtype=np.float32) + 0.5) / ov
        out.append(w)
    return out


def reflect_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Indices mirrored into ``[0, n)`` like ``numpy.pad(mode="reflect")`` (edge pixel not repeated)."""
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    idx = np.abs(idx) % period
    return np.where(idx >= n, period - idx, idx)


def window(image: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """``image[y0:y1, x0:x1]`` where rows/columns outside the image are mirrored (a copy)."""
    h, w = image.shape[:2]
    if y0 >= 0 and x0 >= 0 and y1 <= h and x1 <= w:
        return np.ascontiguousarray(image[y0:y1, x0:x1])
    ys = reflect_index(np.arange(y0, y1), h)
    xs = reflect_index(np.arange(x0, x1), w)
    return np.ascontiguousarray(image[ys][:, xs])


def _padded(n: int, context: int, multiple: int) -> int:
    """Window side for a tile of ``n`` px: ``n + 2 * context`` rounded up to ``multiple``."""
    return -(-(n + 2 * context) // multiple) * multiple


def tiled(image: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], tile: int = 512, overlap: int = 32,
          context: int = 32, multiple: int = 16, progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Run ``fn`` over ``image`` (RGB uint8 ``(H, W, 3)``) tile by tile; returns ``uint16 (H, W)``
    (probability x :data:`PROB_SCALE`). ``progress(n)`` is called after each tile with its count.
    ``context`` is rounded up to a multiple of ``multiple`` (tiles stay on the pooling grid)."""
    if overlap >= tile:
        raise ValueError(f"overlap {overlap} must be smaller than the tile {tile}")
    context = -(-context // multiple) * multiple
    h, w = image.shape[:2]
    out = np.zeros((h, w), np.uint16)
    ys, xs = starts(h, tile, overlap, multiple), starts(w, tile, overlap, multiple)
    hs, ws = [min(tile, h - y) for y in ys], [min(tile, w - x) for x in xs]
    wy, wx = ramps(ys, hs), ramps(xs, ws)
    carry = None  # float32 rows: the part of the previous band that this one overlaps
    for i, (y, th) in enumerate(zip(ys, hs)):
        band = np.zeros((th, w), np.float32)
        if carry is not None:
            band[: carry.shape[0]] += carry
        for j, (x, tw) in enumerate(zip(xs, ws)):
            wh, ww = _padded(th, context, multiple), _padded(tw, context, multiple)
            win = window(image, y - context, y - context + wh, x - context, x - context + ww)
            p = np.asarray(fn(win), np.float32)[context : context + th, context : context + tw]  # (th, tw)
            band[:, x : x + tw] += p * wy[i][:, None] * wx[j][None, :]
            if progress is not None:
                progress(1)
        done = (ys[i + 1] - y) if i + 1 < len(ys) else th  # rows no later band touches
        out[y : y + done] = np.round(np.clip(band[:done], 0, 1) * PROB_SCALE).astype(np.uint16)
        carry = band[done:].copy() if i + 1 < len(ys) else None
    return out


def tile_count(h: int, w: int, tile: int, overlap: int, multiple: int = 1) -> int:
    """How many tiles :func:`tiled` runs for an ``h x w`` image."""
    return len(starts(h, tile, overlap, multiple)) * len(starts(w, tile, overlap, multiple))
