"""The classical baseline: morphological top-hat (bright thin things) + black-hat (dark thin things) on the
luminance, with a robust threshold (median + k x MAD of the response). ``--model classical``.

Anything thinner than the structuring element and brighter or darker than its surroundings responds:
scratches, cracks, dust, hairs, but also grain clumps, text, wires and every fine picture detail, which
is why it is the baseline every report compares against (docs/benchmarks.md, "Damage detection").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassicalSettings:
    """``size``: structuring element side (damage up to about ``size / 2`` px wide responds); ``k``: the
    threshold in robust standard deviations (MAD x 1.4826) above the median response; ``smooth``: Gaussian
    sigma applied first (suppresses grain)."""

    size: int = 9
    k: float = 6.0
    smooth: float = 0.7


def response(image: np.ndarray, settings: ClassicalSettings = ClassicalSettings()) -> np.ndarray:
    """``float32 (H, W)``: max(top-hat, black-hat) of the smoothed luminance (0-255 units)."""
    import cv2

    lum = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)
    if settings.smooth > 0:
        lum = cv2.GaussianBlur(lum, (0, 0), settings.smooth)
    se = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (settings.size, settings.size))
    top = cv2.morphologyEx(lum, cv2.MORPH_TOPHAT, se)
    black = cv2.morphologyEx(lum, cv2.MORPH_BLACKHAT, se)
    return np.maximum(top, black)


def score(image: np.ndarray, settings: ClassicalSettings = ClassicalSettings()) -> np.ndarray:
    """A [0, 1] score ``float32 (H, W)`` whose 0.5 level is the robust threshold: a logistic of
    ``(r - median) / (1.4826 MAD)`` centred on ``settings.k`` (statistics of this window)."""
    r = response(image, settings)
    med = float(np.median(r))
    mad = float(np.median(np.abs(r - med))) * 1.4826 + 1e-3
    z = (r - med) / mad
    return (1.0 / (1.0 + np.exp(-(z - settings.k)))).astype(np.float32)
