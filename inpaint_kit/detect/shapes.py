"""Shape drawing for synthetic damage: paths, trees, networks and outlines as point arrays, and an
anti-aliased coverage canvas that draws them with width and value varying along a stroke.

Pure numpy (+ OpenCV for rasterising): every function takes a ``numpy.random.Generator`` and returns
points ``(N, 2)`` as float ``(x, y)`` pixel coordinates, or a coverage map ``float32 (H, W)`` in [0, 1].
Nothing here knows about colours or photographs (that is :mod:`inpaint_kit.detect.damage`), so a mask
generator (e.g. the inpainting training masks) can draw the same shapes by thresholding a coverage map.
:func:`composite` lays coverage maps over an image with given fills (damage and hard negatives alike).

Anti-aliasing: shapes are rasterised on a canvas ``SUPERSAMPLE`` times larger and area-averaged down,
so a 0.5-px scratch becomes a 1-px line of coverage 0.5, and edges are soft as on a scan.
"""

from __future__ import annotations

import math

import numpy as np

SUPERSAMPLE = 4  # coverage is exact to 1/16 of a pixel's area (4 x 4 sub-pixels)


def smooth_noise(n: int, rng: np.random.Generator, period: float, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """``(n,)`` values in ``[lo, hi]`` varying smoothly along a path: random knots every ``period`` samples,
    interpolated with a cosine ease (the width and opacity of a scratch wander, they do not flicker)."""
    n = max(int(n), 1)
    knots = max(2, int(math.ceil(n / max(period, 1.0))) + 2)
    v = rng.uniform(lo, hi, size=knots)
    pos = np.arange(n) / max(period, 1.0)
    i = np.minimum(pos.astype(int), knots - 2)
    t = pos - i
    t = (1 - np.cos(np.pi * t)) / 2
    return (v[i] * (1 - t) + v[i + 1] * t).astype(np.float32)


def walk(start, angle: float, length: float, rng: np.random.Generator, step: float = 2.0, turn: float = 0.15,
         drift: float = 0.0, jitter: float = 0.0) -> np.ndarray:
    """A persistent random walk (cracks, hairs, fibres): ``length`` px in steps of ``step``, the heading
    changing by ``N(0, turn)`` radians per step plus a steady ``drift`` (curl); ``jitter`` displaces each
    point sideways by ``N(0, jitter)`` px (the small-scale jaggedness of a crack)."""
    n = max(2, int(length / step) + 1)
    headings = angle + np.cumsum(rng.normal(0.0, turn, n - 1) + drift)
    d = np.stack([np.cos(headings), np.sin(headings)], axis=1) * step
    pts = np.vstack([np.zeros((1, 2)), np.cumsum(d, axis=0)]) + np.asarray(start, float)
    if jitter > 0:
        normal = np.stack([-np.sin(headings), np.cos(headings)], axis=1)
        pts[1:] += normal * rng.normal(0.0, jitter, (n - 1, 1))
    return pts


def arc(h: int, w: int, rng: np.random.Generator, bend: float = 0.1, wobble: float = 0.0, step: float = 2.0) -> np.ndarray:
    """A long gentle curve from one side of an ``h x w`` canvas to another (a scratch running across a
    print): a circular arc of relative sagitta ``bend`` between two border points, plus a low-frequency
    sideways ``wobble`` (px)."""
    def border_point(side: int) -> np.ndarray:
        u = rng.uniform(0.05, 0.95)
        return np.array([(u * w, 0.0), (w - 1.0, u * h), (u * w, h - 1.0), (0.0, u * h)][side])

    s0 = int(rng.integers(4))
    s1 = (s0 + int(rng.choice([1, 2, 2, 3]))) % 4  # mostly to the opposite side
    p0, p1 = border_point(s0), border_point(s1)
    chord = p1 - p0
    length = float(np.hypot(*chord)) + 1e-6
    n = max(2, int(length / step) + 1)
    t = np.linspace(0.0, 1.0, n)[:, None]
    normal = np.array([-chord[1], chord[0]]) / length
    sag = bend * length * rng.choice([-1, 1]) * 4 * t * (1 - t)  # parabola ~ arc for small bends
    side = smooth_noise(n, rng, period=max(8.0, n / 4), lo=-1.0, hi=1.0)[:, None] * wobble
    # extend a little beyond the border so the scratch does not end visibly at the edge
    ext = chord / length * 4.0
    pts = p0 + chord * t + normal * (sag + side)
    pts[0] -= ext
    pts[-1] += ext
    return pts


def line_across(h: int, w: int, rng: np.random.Generator, step: float = 2.0) -> np.ndarray:
    """A straight line crossing the whole canvas at a random position and angle (a paper fold, a wire)."""
    cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
    a = rng.uniform(0, np.pi)
    d = np.array([np.cos(a), np.sin(a)])
    reach = float(np.hypot(h, w))
    n = max(2, int(2 * reach / step))
    t = np.linspace(-reach, reach, n)[:, None]
    pts = np.array([cx, cy]) + t * d
    inside = (pts[:, 0] > -4) & (pts[:, 0] < w + 4) & (pts[:, 1] > -4) & (pts[:, 1] < h + 4)
    return pts[inside] if inside.sum() >= 2 else pts[[0, -1]]


def midpoint_displace(p0, p1, rng: np.random.Generator, roughness: float, levels: int = 6) -> np.ndarray:
    """A jagged line between two points by recursive midpoint displacement (tears, fractured edges):
    each level moves midpoints sideways by ``N(0, roughness * segment length)``. Returns ``(2^levels + 1, 2)``."""
    return midpoint_displace_many(np.asarray([p0], float), np.asarray([p1], float), rng, roughness, levels)[0]


def midpoint_displace_many(p0: np.ndarray, p1: np.ndarray, rng: np.random.Generator, roughness: float,
                           levels: int) -> np.ndarray:
    """:func:`midpoint_displace` for ``E`` lines at once: ``p0``, ``p1`` ``(E, 2)`` -> ``(E, 2^levels + 1, 2)``."""
    pts = np.stack([p0, p1], axis=1).astype(float)  # (E, 2, 2)
    for _ in range(levels):
        a, b = pts[:, :-1], pts[:, 1:]
        seg = b - a
        ln = np.hypot(seg[..., 0], seg[..., 1])[..., None] + 1e-9
        normal = np.stack([-seg[..., 1], seg[..., 0]], axis=-1) / ln
        mid = (a + b) / 2 + normal * rng.normal(0.0, roughness, ln.shape) * ln
        out = np.empty((pts.shape[0], pts.shape[1] + mid.shape[1], 2))
        out[:, 0::2], out[:, 1::2] = pts, mid
        pts = out
    return pts


def blob(center, radius: float, rng: np.random.Generator, roughness: float = 0.3, points: int = 48) -> np.ndarray:
    """A closed irregular outline (dust speck, foxing spot, flake): the radius modulated around the circle
    by a few random harmonics of relative amplitude ``roughness``."""
    theta = np.linspace(0, 2 * np.pi, points, endpoint=False)
    r = np.ones(points)
    for k in range(2, 7):
        r += roughness / k * rng.normal() * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    r = radius * np.clip(r, 0.35, None)
    return np.asarray(center, float) + np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)


def jagged_blob(center, radius: float, rng: np.random.Generator, roughness: float = 0.3,
                fracture: float = 0.12) -> np.ndarray:
    """:func:`blob` with a fractured edge (each side midpoint-displaced): flaked emulsion, losses."""
    outline = blob(center, radius, rng, roughness, points=int(np.clip(radius, 6, 24)))
    parts = [midpoint_displace(a, b, rng, fracture, levels=3)[:-1]
             for a, b in zip(outline, np.roll(outline, -1, axis=0))]
    return np.vstack(parts)


def tree(start, angle: float, length: float, width: float, rng: np.random.Generator, depth: int = 3,
         branch_rate: float = 0.02, turn: float = 0.12, jitter: float = 0.3,
         spread: float = 0.7) -> list[tuple[np.ndarray, np.ndarray]]:
    """A branching crack: a main :func:`walk` with branches leaving it at ``spread``-ish angles (about
    ``branch_rate`` per px), each thinner and shorter, ``depth`` levels deep. Returns ``[(points (N, 2),
    widths (N,))]``; widths taper towards every free end."""
    out = []
    pts = walk(start, angle, length, rng, step=1.5, turn=turn, jitter=jitter)
    n = len(pts)
    taper = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / max(3.0, 0.15 * n) + 0.25)
    widths = width * taper * smooth_noise(n, rng, period=12, lo=0.6, hi=1.3)
    out.append((pts, widths))
    if depth > 1 and n >= 3:
        count = rng.poisson(branch_rate * length)
        for _ in range(int(count)):
            i = int(rng.integers(1, n - 1))
            seg = pts[min(i + 1, n - 1)] - pts[i - 1]
            heading = math.atan2(seg[1], seg[0]) + rng.choice([-1, 1]) * rng.uniform(0.3, spread + 0.3)
            out += tree(pts[i], heading, length * rng.uniform(0.2, 0.55), widths[i] * rng.uniform(0.5, 0.85), rng,
                        depth - 1, branch_rate, turn * 1.2, jitter, spread)
    return out


def network(h: int, w: int, cell: float, rng: np.random.Generator, keep: float = 0.85,
            roughness: float = 0.08) -> list[np.ndarray]:
    """A craquelure network: the edges of a jittered Voronoi tessellation with cells about ``cell`` px
    across, each edge slightly fractured, a share ``1 - keep`` of them missing (networks are incomplete).
    Returns polylines ``[(N, 2)]`` covering the canvas."""
    import cv2

    gx, gy = np.meshgrid(np.arange(-cell, w + cell, cell), np.arange(-cell, h + cell, cell))
    seeds = np.stack([gx.ravel(), gy.ravel()], axis=1) + rng.uniform(-0.45, 0.45, (gx.size, 2)) * cell
    rect = (int(-2 * cell), int(-2 * cell), int(w + 4 * cell), int(h + 4 * cell))
    sub = cv2.Subdiv2D(rect)
    sub.insert([(float(x), float(y)) for x, y in seeds])
    facets, _ = sub.getVoronoiFacetList([])
    ends = np.concatenate([np.stack([f, np.roll(f, -1, axis=0)], axis=1) for f in map(np.asarray, facets)])  # (E, 2, 2)
    ends = ends.astype(float)
    # every edge is shared by two cells: keep one copy (keyed by its end points in either order)
    lo, hi = np.minimum(ends[:, 0], ends[:, 1]), np.maximum(ends[:, 0], ends[:, 1])
    _, first = np.unique(np.round(np.concatenate([lo, hi], axis=1), 1), axis=0, return_index=True)
    ends = ends[np.sort(first)]
    inside = ((ends[..., 0].max(1) >= -2) & (ends[..., 0].min(1) <= w + 2) & (ends[..., 1].max(1) >= -2)
              & (ends[..., 1].min(1) <= h + 2))
    ends = ends[inside & (rng.random(len(ends)) < keep)]
    if not len(ends):
        return []
    return list(midpoint_displace_many(ends[:, 0], ends[:, 1], rng, roughness, levels=3))


class Coverage:
    """An anti-aliased drawing surface: draw strokes and polygons with a value in [0, 1] per segment,
    read back ``float32 (H, W)`` coverage. Later drawing replaces earlier where they overlap."""

    def __init__(self, h: int, w: int, ss: int = SUPERSAMPLE):
        self.h, self.w, self.ss = h, w, ss
        self.canvas = np.zeros((h * ss, w * ss), np.uint8)

    def _pt(self, p) -> tuple[int, int]:
        """A point in pixel coordinates (pixel centres at integers) on the supersampled canvas."""
        return int(round(p[0] * self.ss + (self.ss - 1) / 2)), int(round(p[1] * self.ss + (self.ss - 1) / 2))

    def _thickness(self, widths: np.ndarray) -> np.ndarray:
        """OpenCV thickness giving the nearest achievable width: its lines are an odd number of sub-pixels
        across (thickness 1 -> 1, 2 -> 3, 4 -> 5, 6 -> 7 rows, odd thicknesses > 1 add one more), so widths
        come in steps of 2 sub-pixels (0.5 px at 4x)."""
        rows = np.maximum(1, np.floor((np.asarray(widths, float) * self.ss - 1) / 2 + 0.5) * 2 + 1).astype(int)
        return np.where(rows == 1, 1, rows - 1)

    def stroke(self, points: np.ndarray, widths, values=1.0) -> "Coverage":
        """A polyline whose width (px) and value vary per point (arrays of ``len(points)``, or scalars);
        OpenCV's thick lines have round caps, so a bending path has no gaps at its joints."""
        import cv2

        n = len(points)
        if n < 2:
            return self
        pts = np.round(np.asarray(points, float) * self.ss + (self.ss - 1) / 2).astype(np.int32)
        widths = np.broadcast_to(np.asarray(widths, float), (n,))
        values = np.broadcast_to(np.asarray(values, float), (n,))
        thick = self._thickness(0.5 * (widths[:-1] + widths[1:]))  # per segment
        val = np.round(255 * np.clip(0.5 * (values[:-1] + values[1:]), 0, 1)).astype(int)
        val[0.5 * (widths[:-1] + widths[1:]) <= 0] = 0
        if (thick == thick[0]).all() and (val == val[0]).all():
            if val[0] > 0:
                cv2.polylines(self.canvas, [pts], False, int(val[0]), int(thick[0]), cv2.LINE_8)
            return self
        p = pts.tolist()
        for i, (t, v) in enumerate(zip(thick.tolist(), val.tolist())):
            if v > 0:
                cv2.line(self.canvas, p[i], p[i + 1], v, t, cv2.LINE_8)
        return self

    def strokes(self, lines: list[np.ndarray], widths: np.ndarray, values: np.ndarray, bins: int = 6) -> "Coverage":
        """Many polylines of one width and value each (a craquelure network): drawn in a few batched calls,
        widths and values rounded to ``bins`` levels over their range."""
        import cv2

        if not lines:
            return self
        widths, values = np.asarray(widths, float), np.asarray(values, float)
        t = self._thickness(widths)
        v = np.round(255 * np.clip(values, 0, 1) * bins / 255).astype(int) * 255 // bins
        pts = [np.round(np.asarray(p) * self.ss + (self.ss - 1) / 2).astype(np.int32) for p in lines]
        for key in sorted(set(zip(t.tolist(), v.tolist())), key=lambda k: k[1]):
            group = [p for p, ti, vi in zip(pts, t, v) if (ti, vi) == key]
            if key[1] > 0:
                cv2.polylines(self.canvas, group, False, int(key[1]), int(key[0]), cv2.LINE_8)
        return self

    def polygon(self, points: np.ndarray, value: float = 1.0) -> "Coverage":
        """A filled polygon ``(N, 2)`` of ``value``."""
        import cv2

        pts = np.round(np.asarray(points) * self.ss + (self.ss - 1) / 2).astype(np.int32)
        cv2.fillPoly(self.canvas, [pts], int(round(255 * float(np.clip(value, 0, 1)))), cv2.LINE_8)
        return self

    def disc(self, center, radius: float, value: float = 1.0) -> "Coverage":
        """A filled disc of ``radius`` px and ``value``."""
        import cv2

        cv2.circle(self.canvas, self._pt(center), max(1, int(round(radius * self.ss))),
                   int(round(255 * float(np.clip(value, 0, 1)))), -1, cv2.LINE_8)
        return self

    def read(self) -> np.ndarray:
        """The coverage ``float32 (H, W)`` in [0, 1] (area average of the sub-pixels)."""
        import cv2

        small = cv2.resize(self.canvas, (self.w, self.h), interpolation=cv2.INTER_AREA)
        return small.astype(np.float32) / 255.0


def composite(img: np.ndarray, layers) -> np.ndarray:
    """Lay damage ``layers`` over ``img`` (float RGB ``(H, W, 3)``): ``img * (1 - a) + fill * a`` each,
    computed only inside the bounding box of the layer's coverage (most damage is small)."""
    img = np.array(img, np.float32, copy=True)
    for cov, fill in layers:
        rows, cols = np.flatnonzero(cov.any(axis=1)), np.flatnonzero(cov.any(axis=0))
        if not len(rows):
            continue
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        a = cov[box][..., None]
        f = np.asarray(fill, np.float32)
        f = f[box] if f.ndim == 3 else f
        img[box] = img[box] * (1 - a) + f * a
    return img
