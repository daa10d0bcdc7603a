"""Long straight scratches: the line test run on the network's probability map.

A film scratch drawn by the transport or a projector gate is a 1-3 px line, dead straight, through a whole
frame. Locally (the network sees about 140 px) it looks like a wire, a whisker or a picture edge, so the
network gives it a raised but uncertain probability (0.1-0.4 on a 1-px line that changed the picture by 70
grey levels), far under its threshold. What tells it apart is its **length**: no picture line keeps the
network's attention, pixel after pixel, in a dead-straight row or column for hundreds of pixels.

The test, for near-horizontal lines (near-vertical ones: the same on the transposed map):

1. evidence ``e = p >= evidence`` (a pixel the network finds at least a little damage-like);
2. ``e`` grown by ``tolerance`` px across (a line up to about 2 degrees off the axis stays inside it over a
   segment; scanned film is aligned with the scanner within that);
3. ``share`` = the fraction of a ``length``-px segment along the row with evidence (a box filter);
4. a row is on a long line where ``share >= fill`` while ``gap`` px to either side across it is under
   ``share - contrast`` on both sides (a thin ridge: a flagged region, an edge or texture has evidence on
   at least one side and is left alone);
5. in that band, the pixels with evidence and at least half the largest probability across the line
   (within ``tolerance``) are raised to probability 1: the line's own pixels, not the picture beside it;
6. a line's gaps (stretches up to ``length`` px where the picture hid it from the network, also up to the
   image's edge) are bridged where the row is still a faint ridge (:func:`bridge`): a scratch does not stop.

Only lines: blobs, textures and short strokes are the network's business, and its threshold decides them
as before. The map is processed in bands of rows with enough margin for every filter, so the result equals
the whole-image computation and memory stays bounded (a 100-MP map is never copied in float).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .tiling import PROB_SCALE


@dataclass(frozen=True)
class LineSettings:
    """The long-line test (module docstring). ``evidence``: probability that counts as evidence;
    ``length``: segment length (px); ``fill``: share of a segment with evidence; ``contrast``: how much
    more than ``gap`` px to either side; ``tolerance``: px of slack across the line (its tilt)."""

    evidence: float = 0.05
    length: int = 256
    fill: float = 0.8
    contrast: float = 0.6
    gap: int = 5
    tolerance: int = 2

    def __post_init__(self):
        if not (0 < self.evidence < 1 and self.length >= 16 and 0 < self.fill <= 1 and 0 < self.contrast <= 1
                and self.gap > self.tolerance >= 0):
            raise ValueError(f"line settings {self}: need 0 < evidence < 1, length >= 16, 0 < fill, contrast <= 1, "
                             "gap > tolerance >= 0")

    def to_json(self) -> dict:
        """What the detector's ``config.json`` stores under ``lines``."""
        return asdict(self)


def _rows(p: np.ndarray, s: LineSettings) -> np.ndarray:
    """Long near-horizontal lines of a float map ``p (h, w)``: bool ``(h, w)`` (rows within ``gap +
    tolerance + 1`` of the top and bottom are not reliable: the caller gives margins)."""
    import cv2

    e = (p >= s.evidence).astype(np.uint8)
    if s.tolerance:
        e = cv2.dilate(e, np.ones((2 * s.tolerance + 1, 1), np.uint8))  # (h, w): slack across
    share = cv2.blur(e.astype(np.float32), (s.length, 1), borderType=cv2.BORDER_REFLECT_101)  # (h, w)
    g = s.gap
    side = np.full_like(share, 1.0)
    side[g:-g] = np.maximum(share[: -2 * g], share[2 * g :])  # the larger share g rows above / below
    band = (share >= s.fill) & (share - side >= s.contrast)
    if not band.any():
        return band
    # the line's own pixels in the band: evidence at least half the largest p across it (within tolerance)
    top = cv2.dilate(p, np.ones((2 * s.tolerance + 1, 1), np.uint8)) if s.tolerance else p
    return band & (p >= s.evidence) & (p >= 0.5 * top)


def line_pixels(prob: np.ndarray, settings: LineSettings, band: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """``(ys, xs)`` of the pixels on long straight lines of a ``uint16 (H, W)`` probability map (x
    :data:`~inpaint_kit.detect.tiling.PROB_SCALE`), computed in bands of ``band`` rows, then the gaps of each
    line bridged (:func:`bridge`). Rows (columns) are only tested when the image is at least ``length`` px
    wide (tall): a line cannot be long in less."""
    h, w = prob.shape
    s = settings
    none = np.zeros(0, np.intp)
    found = {vertical: ([none], [none]) for vertical in (False, True)}  # per family: ys, xs of each band
    families = [v for v, along, across in ((False, w, h), (True, h, w))
                if along >= s.length and across > 2 * (s.gap + s.tolerance + 2)]
    near = s.gap + s.tolerance + 2  # rows a horizontal test looks across
    far = s.length // 2 + near  # rows a vertical test looks along
    for y0 in range(0, h, band):
        y1 = min(h, y0 + band)
        for vertical in families:
            m = far if vertical else near
            a, b = max(0, y0 - m), min(h, y1 + m)
            part = prob[a:b].astype(np.float32) / PROB_SCALE  # (b - a, w)
            if vertical:
                hit = _rows(np.ascontiguousarray(part.T), s).T
            else:
                hit = _rows(part, s)
            yy, xx = np.nonzero(hit[y0 - a : y1 - a])
            found[vertical][0].append(yy + y0)
            found[vertical][1].append(xx)
    fy, fx = np.concatenate(found[False][0]), np.concatenate(found[False][1])
    vy, vx = np.concatenate(found[True][0]), np.concatenate(found[True][1])
    hy, hx = bridge(prob, fy, fx, s)
    cx, cy = bridge(prob.T, vx, vy, s)  # a column is a row of the transposed map
    return np.concatenate([fy, hy, vy, cy]), np.concatenate([fx, hx, vx, cx])


def bridge(prob: np.ndarray, ys: np.ndarray, xs: np.ndarray, s: LineSettings) -> tuple[np.ndarray, np.ndarray]:
    """The gaps of long near-horizontal lines (found pixels ``ys, xs`` of ``prob``, ``uint16 (H, W)``; a
    transposed view for columns), as ``(ys, xs)`` of the pixels to add. A film scratch runs on through
    stretches where the picture hides it from the network (evidence in under ``fill`` of a segment): on a
    row found over at least ``length / 2`` px, a gap between two found runs, or between a run and the
    image's edge, of at most ``length`` px is bridged when the row there is still a ridge: its mean
    probability at least ``evidence`` above the mean ``gap`` rows to either side (a dead-straight line that
    stops, or a picture line beside it, is not). Reads only the rows concerned (memory stays bounded)."""
    h, w = prob.shape
    out_y, out_x = [np.zeros(0, np.intp)], [np.zeros(0, np.intp)]
    if not len(ys):
        return out_y[0], out_x[0]
    order = np.lexsort((xs, ys))
    ys, xs = ys[order], xs[order]
    rows, starts, counts = np.unique(ys, return_index=True, return_counts=True)
    for r, i, n in zip(rows, starts, counts):
        if n < s.length // 2 or not s.gap <= r < h - s.gap:
            continue
        x = np.unique(xs[i : i + n])
        breaks = np.nonzero(np.diff(x) > 1)[0]
        gaps = [(int(x[j]) + 1, int(x[j + 1])) for j in breaks] + [(0, int(x[0])), (int(x[-1]) + 1, w)]
        line = prob[r].astype(np.float32) / PROB_SCALE  # (w,)
        above = prob[r - s.gap].astype(np.float32) / PROB_SCALE
        below = prob[r + s.gap].astype(np.float32) / PROB_SCALE
        for a, b in gaps:
            if not 0 < b - a <= s.length:
                continue
            ridge = line[a:b].mean() - max(above[a:b].mean(), below[a:b].mean())
            if ridge >= s.evidence:
                out_x.append(np.arange(a, b))
                out_y.append(np.full(b - a, r, np.intp))
    return np.concatenate(out_y), np.concatenate(out_x)


def raise_lines(prob: np.ndarray, settings: LineSettings, band: int = 512) -> np.ndarray:
    """``prob`` (uint16 ``(H, W)``) with the pixels of long straight lines set to probability 1, in place;
    returns it."""
    ys, xs = line_pixels(prob, settings, band)
    prob[ys, xs] = PROB_SCALE
    return prob
