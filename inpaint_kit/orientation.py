"""EXIF/TIFF orientation (tag 274, values 1-8) as numpy views: a file's pixels stay in their stored order
(written back that way, with the same Orientation tag) while the model and the masks work on the
displayed image, as every viewer shows it.
"""

from __future__ import annotations

import numpy as np


def orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """The displayed view (no copy) of stored pixels ``a`` ``(H, W, ...)`` with EXIF ``orientation``
    (as Pillow's ``ImageOps.exif_transpose``)."""
    return {1: lambda: a, 2: lambda: a[:, ::-1], 3: lambda: a[::-1, ::-1], 4: lambda: a[::-1],
            5: lambda: a.swapaxes(0, 1), 6: lambda: a.swapaxes(0, 1)[:, ::-1],
            7: lambda: a[::-1, ::-1].swapaxes(0, 1), 8: lambda: a.swapaxes(0, 1)[::-1]}[orientation]()


def stored_coords(ys: np.ndarray, xs: np.ndarray, orientation: int, stored_hw: tuple[int, int]):
    """Stored ``(ys, xs)`` of displayed pixels ``(ys, xs)``: ``orient(a, o)[ys, xs] == a[stored]``."""
    h, w = stored_hw
    return {1: lambda: (ys, xs), 2: lambda: (ys, w - 1 - xs), 3: lambda: (h - 1 - ys, w - 1 - xs),
            4: lambda: (h - 1 - ys, xs), 5: lambda: (xs, ys), 6: lambda: (h - 1 - xs, ys),
            7: lambda: (h - 1 - xs, w - 1 - ys), 8: lambda: (xs, w - 1 - ys)}[orientation]()


def unorient(a: np.ndarray, orientation: int) -> np.ndarray:
    """The stored view (no copy) of a displayed array: the inverse of :func:`orient`."""
    inverse = {5: 5, 6: 8, 7: 7, 8: 6}.get(orientation, orientation)
    return orient(a, inverse)
