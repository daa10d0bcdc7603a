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
        import logging

        logging.getLogger("inpaint_kit").info("%s: colour is uniform, alpha varies: opaque pixels are the "
                                              "repair region", name)
        return opaque
    return to_repair(grey, mask_mode)


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


# --- Random mask generators -------------------------------------------------------------------
# Used to train the from-scratch DDPM (fresh masks every step), the LoRA fine-tuning, and ``eval``.
# Every generator is a pure function of ``(h, w, rng)``: the same seed gives the same mask.
# Sizes are relative to the canvas, so a mask drawn at 256 px looks like the same mask at 64 px.

MASK_KINDS = (
    "random_rect",        # one axis-aligned rectangle, 10-50 % of each side
    "center",             # the centred half-size square (RePaint / LaMa "center")
    "irregular",          # free-form brush strokes of medium width (DeepFill v2 style)
    "stripes",            # parallel scan lines 1-3 px wide (horizontal or vertical)
    "thin",               # thin meandering strokes: cracks and scratches (LaMa "thin")
    "thick",              # wide strokes covering large areas (LaMa "thick")
    "every_second_line",  # every other row (RePaint "alternating lines")
    "half",               # one half of the canvas: left, right, top or bottom (RePaint "half")
    "expand",             # everything except a centred half-size window (RePaint "expand")
)


def _strokes(h: int, w: int, rng: np.random.Generator, n: tuple[int, int], width: tuple[float, float],
             vertices: tuple[int, int], length: tuple[float, float]) -> np.ndarray:
    """Random polyline brush strokes. ``width`` and ``length`` are fractions of the canvas's short side."""
    import cv2

    side = min(h, w)
    canvas = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(n[0], n[1] + 1))):
        x, y = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        thickness = max(1, int(round(rng.uniform(*width) * side)))
        angle = float(rng.uniform(0, 2 * np.pi))
        for _ in range(int(rng.integers(vertices[0], vertices[1] + 1))):
            angle += float(rng.normal(0, 0.6))  # meander, don't zig-zag
            step = float(rng.uniform(*length)) * side
            nx = float(np.clip(x + step * np.cos(angle), 0, w - 1))
            ny = float(np.clip(y + step * np.sin(angle), 0, h - 1))
            cv2.line(canvas, (int(x), int(y)), (int(nx), int(ny)), 1, thickness, lineType=cv2.LINE_8)
            x, y = nx, ny
    return canvas.astype(bool)


def _random_rect(h, w, rng):
    mh, mw = int(rng.uniform(0.1, 0.5) * h) or 1, int(rng.uniform(0.1, 0.5) * w) or 1
    top, left = int(rng.integers(0, h - mh + 1)), int(rng.integers(0, w - mw + 1))
    m = np.zeros((h, w), bool)
    m[top : top + mh, left : left + mw] = True
    return m


def _center(h, w, rng):
    m = np.zeros((h, w), bool)
    m[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
    return m


def _stripes(h, w, rng):
    period = int(rng.integers(6, 17))
    width = int(rng.integers(1, 4))
    offset = int(rng.integers(0, period))
    vertical = bool(rng.integers(0, 2))
    n = w if vertical else h
    on = ((np.arange(n) + offset) % period) < width
    return np.broadcast_to(on[None, :] if vertical else on[:, None], (h, w)).copy()


def _every_second_line(h, w, rng):
    m = np.zeros((h, w), bool)
    m[int(rng.integers(0, 2)) :: 2] = True
    return m


def _half(h, w, rng):
    m = np.zeros((h, w), bool)
    side = int(rng.integers(0, 4))
    if side == 0:
        m[:, : w // 2] = True
    elif side == 1:
        m[:, w // 2 :] = True
    elif side == 2:
        m[: h // 2] = True
    else:
        m[h // 2 :] = True
    return m


def _expand(h, w, rng):
    return ~_center(h, w, rng)


_GENERATORS = {
    "random_rect": _random_rect,
    "center": _center,
    "irregular": lambda h, w, rng: _strokes(h, w, rng, (2, 5), (0.03, 0.08), (3, 8), (0.08, 0.25)),
    "stripes": _stripes,
    "thin": lambda h, w, rng: _strokes(h, w, rng, (2, 6), (0.006, 0.016), (4, 12), (0.05, 0.2)),
    "thick": lambda h, w, rng: _strokes(h, w, rng, (1, 4), (0.08, 0.16), (2, 5), (0.1, 0.3)),
    "every_second_line": _every_second_line,
    "half": _half,
    "expand": _expand,
}


def create_advanced_mask(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Draw a random repair mask of ``kind`` (one of :data:`MASK_KINDS`): bool ``(h, w)``, True = repaint.

    Deterministic for a given ``rng`` state; never empty. Pass ``np.random.default_rng(seed)``."""
    if kind not in _GENERATORS:
        raise ValueError(f"unknown mask kind {kind!r}; choose from {', '.join(MASK_KINDS)}")
    if h < 2 or w < 2:
        raise ValueError(f"mask size must be at least 2x2, got {h}x{w}")
    mask = _GENERATORS[kind](h, w, rng)
    if not mask.any():  # a stroke can in principle vanish on a tiny canvas: keep the promise
        mask[h // 2, w // 2] = True
    return mask
