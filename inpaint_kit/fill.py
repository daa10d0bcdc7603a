"""A row's fill: the restored values inside the repair region (and its feather band), and how they become
pixels at the source depth.

Engines fill working canvases in the model's space (sRGB RGB) and hand back floats in [0, 1]
(:mod:`inpaint_kit.engine.base`); :class:`Fill` keeps one row's result only where it is used (the repair
pixels), as sRGB float32 (or ``uint8``, converted exactly as ``v / 255``: a plugin engine that returns
8 bits). :meth:`Fill.stored` takes it to the master's colour space (:func:`colour.to_master`), blends the
feather band with the stored values and quantises **once**, to the master's depth; every other stored
value is the master's, untouched. So memory follows the damage, and a 16-bit master gets a 16-bit fill
(not 256 levels scaled up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .colour import quantise, to_master
from .orientation import stored_coords

if TYPE_CHECKING:  # type only (images does not import this module)
    from .images import Master


@dataclass(eq=False)
class Fill:
    """One row's restored values at displayed pixels ``(ys, xs)`` in raster order (the repair mask plus any
    feather band; the index arrays are shared by the rows of a job). ``values`` ``(N, 3)`` sRGB, float in [0, 1] or
    ``uint8``; ``alpha`` ``(N,)`` float blend weights (1 inside the mask, falling over the feather band),
    None = all 1."""

    ys: np.ndarray
    xs: np.ndarray
    values: np.ndarray
    alpha: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ys)

    def on_model(self, image: np.ndarray) -> np.ndarray:
        """The row as the model's space shows it: ``image`` (sRGB RGB uint8, display orientation) with
        the fill pasted, blended over the feather band (a copy)."""
        out = image.copy()
        out[self.ys, self.xs] = _blend(self._float(), self.alpha, image[self.ys, self.xs], 8)
        return out

    def paint_lines(self, image: np.ndarray, out: np.ndarray, r0: int, r1: int) -> None:
        """Write lines ``r0:r1`` of :meth:`on_model`'s row into ``out`` ``(r1 - r0, W, 3)`` (``ys`` are in
        raster order, as ``np.nonzero`` gives them, so a band's pixels are one slice)."""
        out[...] = image[r0:r1]
        a, b = np.searchsorted(self.ys, [r0, r1])
        ys, xs = self.ys[a:b], self.xs[a:b]
        alpha = self.alpha[a:b] if self.alpha is not None else None
        values = self.values[a:b]
        values = values.astype(np.float64) / 255.0 if values.dtype == np.uint8 else values
        out[ys - r0, xs] = _blend(values, alpha, image[ys, xs], 8)

    def stored(self, master: "Master", colour_management: bool = True) -> "StoredFill":
        """The fill as stored values of ``master``: its colour space (profile, grey, CMYK), its depth
        (quantised once), its stored orientation; feather-band pixels blended with the stored values."""
        ys, xs = stored_coords(self.ys, self.xs, master.orientation, master.pixels.shape[:2])
        c = master.colour_channels
        target = to_master(self.values, master, colour_management)
        return StoredFill(ys, xs, _blend(target, self.alpha, master.pixels[ys, xs, :c], master.depth))

    def _float(self) -> np.ndarray:
        return self.values.astype(np.float64) / 255.0 if self.values.dtype == np.uint8 else self.values


def _blend(fill: np.ndarray, alpha: np.ndarray | None, current: np.ndarray, depth: int) -> np.ndarray:
    """``alpha * fill + (1 - alpha) * current`` quantised once to ``depth`` (``fill`` float in [0, 1],
    ``current`` stored values of that depth)."""
    if alpha is None:
        return quantise(fill, depth)
    top = 65535.0 if depth == 16 else 255.0
    a = alpha.astype(np.float64)[:, None]
    return quantise(a * fill + (1.0 - a) * (current.astype(np.float64) / top), depth)


@dataclass(eq=False)
class StoredFill:
    """A fill as a master's stored values: ``values`` ``(N, C)`` (colour channels, the master's dtype) at
    stored pixels ``(ys, xs)``."""

    ys: np.ndarray
    xs: np.ndarray
    values: np.ndarray

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """The restored row: a copy of the master's stored ``pixels`` with the fill in place (alpha kept)."""
        out = pixels.copy()
        out[self.ys, self.xs, :self.values.shape[1]] = self.values
        return out

    def layer(self, hw: tuple[int, int]) -> np.ndarray:
        """The fill layer ``(H, W, C + 1)``: the fill's values with full alpha where it was pasted,
        transparent (all 0) elsewhere; laid over the master it reproduces the row exactly."""
        c = self.values.shape[1]
        out = np.zeros((*hw, c + 1), self.values.dtype)
        out[self.ys, self.xs, :c] = self.values
        out[self.ys, self.xs, c] = np.iinfo(self.values.dtype).max
        return out
