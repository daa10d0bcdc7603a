"""Benchmark and training masks for damage: LaMa's evaluation protocol and branching cracks.

One block of pure generators ``(h, w, rng) -> bool (h, w)`` (True = repaint), meant to join the named
mask generators of :mod:`inpaint_kit.masks` (``maskgen``) as they are; :data:`GENERATORS` maps their
names. Like every generator there, the same ``rng`` state gives the same mask.

* ``lama_thin`` / ``lama_medium`` / ``lama_thick``: the masks most inpainting papers compare on (LaMa,
  Suvorov et al. 2022, arXiv 2109.07161; generator ``make_random_irregular_mask`` /
  ``make_random_rectangle_mask`` of ``saicinpainting/training/data/masks.py`` with the settings of
  ``configs/data_gen/random_{thin,medium,thick}_{256,512}.yaml``). A mask is free-form strokes, or (with
  weight 0.3 against 1 for strokes: ``MixedMaskGenerator`` picks one generator per mask) 1-5 boxes;
  masks covering more than half the image are drawn again (``max_tamper_area: 0.5``). LaMa draws on
  square 256 or 512 crops; here the settings of the nearer size are scaled by the image's long side.
* ``cracks``: branching thin cracks of an old print (1-3 px at a 256-px long side, scaled with it).
* ``scan_cracks``: cracks of a large scan: 2-4 px wide whatever the image size, long, branching,
  crossing the whole surface (what ``bench/bench_highres.py`` paints, without the blobs).
"""

from __future__ import annotations

import math

import numpy as np

MAX_AREA = 0.5  # LaMa's max_tamper_area

# (kind, base size) -> LaMa's settings: strokes (min_times, max_times), max_width, max_len (max_angle is 4
# everywhere), and the box generator (None, or margin, bbox_min_size, bbox_max_size, (min_times, max_times)).
LAMA = {
    ("thin", 256): ((4, 50), 10, 40, None),
    ("thin", 512): ((4, 70), 20, 100, None),
    ("medium", 256): ((4, 5), 50, 100, (0, 10, 50, (1, 5))),
    ("medium", 512): ((4, 10), 100, 200, (0, 30, 150, (1, 5))),
    ("thick", 256): ((1, 5), 100, 200, (10, 30, 150, (1, 3))),
    ("thick", 512): ((1, 5), 250, 450, (10, 30, 300, (1, 4))),
}
BOX_WEIGHT = 0.3  # box_proba against irregular_proba 1


def _lama_strokes(h, w, rng, times, max_width, max_len, scale, max_angle=4):
    """LaMa's ``make_random_irregular_mask``: strokes of 1-5 straight segments, angles 0.01 + an integer
    number of radians (mirrored on every other stroke), length 10 + U[0, max_len), width 5 + U[0, max_width),
    lengths and widths times ``scale``."""
    import cv2

    mask = np.zeros((h, w), np.uint8)
    for i in range(int(rng.integers(times[0], times[1] + 1))):
        x, y = int(rng.integers(w)), int(rng.integers(h))
        for _ in range(1 + int(rng.integers(5))):
            angle = 0.01 + int(rng.integers(max_angle))
            if i % 2 == 0:
                angle = 2 * math.pi - angle
            length = (10 + int(rng.integers(max_len))) * scale
            width = max(1, round((5 + int(rng.integers(max_width))) * scale))
            nx = int(np.clip(x + length * math.sin(angle), 0, w))
            ny = int(np.clip(y + length * math.cos(angle), 0, h))
            cv2.line(mask, (x, y), (nx, ny), 1, width)
            x, y = nx, ny
    return mask.astype(bool)


def _lama_boxes(h, w, rng, margin, lo, hi, times, scale):
    """LaMa's ``make_random_rectangle_mask``, sizes and margin times ``scale``."""
    margin, lo, hi = round(margin * scale), max(1, round(lo * scale)), round(hi * scale)
    hi = min(hi, h - 2 * margin, w - 2 * margin)
    mask = np.zeros((h, w), bool)
    if hi <= lo:  # an image too small for the box settings: one box of the smallest size that fits
        lo, hi = max(1, min(h, w) // 4), max(2, min(h, w) // 4 + 1)
        margin = 0
    for _ in range(int(rng.integers(times[0], times[1] + 1))):
        bw, bh = int(rng.integers(lo, hi)), int(rng.integers(lo, hi))
        x, y = int(rng.integers(margin, w - margin - bw + 1)), int(rng.integers(margin, h - margin - bh + 1))
        mask[y : y + bh, x : x + bw] = True
    return mask


def lama_mask(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A LaMa protocol mask of ``kind`` (thin, medium, thick) for an ``h`` x ``w`` image."""
    base = 256 if max(h, w) < 384 else 512
    times, max_width, max_len, boxes = LAMA[(kind, base)]
    scale = max(h, w) / base
    best = None
    for _ in range(20):
        if boxes is not None and rng.random() < BOX_WEIGHT / (1 + BOX_WEIGHT):
            m = _lama_boxes(h, w, rng, *boxes, scale)
        else:
            m = _lama_strokes(h, w, rng, times, max_width, max_len, scale)
        if m.any() and m.mean() <= MAX_AREA:
            return m
        best = m if best is None or (m.any() and m.mean() < best.mean()) else best
    return best


def _crack(mask, rng, start, angle, segments, step, width, branch_p, depth=0):
    """One crack: a meandering polyline from ``start`` that may fork (children thinner, shorter)."""
    import cv2

    h, w = mask.shape
    pts = [np.asarray(start, float)]
    for _ in range(segments):
        angle += float(rng.normal(0, 0.45))
        pts.append(pts[-1] + float(rng.uniform(0.5, 1.5)) * step * np.array([math.cos(angle), math.sin(angle)]))
        if depth < 3 and rng.random() < branch_p:
            turn = float(rng.choice([-1, 1]) * rng.uniform(0.4, 1.2))
            _crack(mask, rng, pts[-1], angle + turn, max(2, segments // 2), step, max(1, width - 1), branch_p, depth + 1)
        if not (-w < pts[-1][0] < 2 * w and -h < pts[-1][1] < 2 * h):
            break
    cv2.polylines(mask, [np.round(pts).astype(np.int32)], False, 1, width)


def cracks(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Branching thin cracks: 1-4 cracks of 8-30 segments (2-5 % of the long side each), 1-3 px wide at a
    256-px long side (scaled with it), forking with probability 0.12 per segment."""
    mask = np.zeros((h, w), np.uint8)
    scale = max(h, w) / 256
    for _ in range(int(rng.integers(1, 5))):
        width = max(1, round(int(rng.integers(1, 4)) * scale))
        _crack(mask, rng, (rng.uniform(0, w), rng.uniform(0, h)), float(rng.uniform(0, 2 * math.pi)),
               int(rng.integers(8, 31)), float(rng.uniform(0.02, 0.05)) * max(h, w), width, 0.12)
    return mask.astype(bool)


def scan_cracks(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Cracks of a large scan: 3-8 long branching cracks, 2-4 px wide at any image size (a scan's cracks
    are as thin as the paper's, however many pixels the scanner makes), each crossing much of the image."""
    mask = np.zeros((h, w), np.uint8)
    side = max(h, w)
    for _ in range(int(rng.integers(3, 9))):
        _crack(mask, rng, (rng.uniform(0, w), rng.uniform(0, h)), float(rng.uniform(0, 2 * math.pi)),
               int(rng.integers(20, 45)), float(rng.uniform(0.01, 0.03)) * side, int(rng.integers(2, 5)), 0.08)
    return mask.astype(bool)


GENERATORS = {
    "lama_thin": lambda h, w, rng: lama_mask("thin", h, w, rng),
    "lama_medium": lambda h, w, rng: lama_mask("medium", h, w, rng),
    "lama_thick": lambda h, w, rng: lama_mask("thick", h, w, rng),
    "cracks": cracks,
    "scan_cracks": scan_cracks,
}
KINDS = tuple(GENERATORS)


def create_mask(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A mask of ``kind``: one of :data:`KINDS` or of :data:`inpaint_kit.masks.MASK_KINDS`; never empty."""
    from .masks import create_advanced_mask

    if kind not in GENERATORS:
        return create_advanced_mask(kind, h, w, rng)
    mask = GENERATORS[kind](h, w, rng)
    if not mask.any():
        mask[h // 2, w // 2] = True
    return mask
