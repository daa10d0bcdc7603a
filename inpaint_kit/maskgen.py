"""Named random mask generators: every random hole in the package is drawn here (the trainers, the
ControlNet data, DefectFill's masks and ``inpaint-kit defect``, ``eval``).

A generator is a pure function ``fn(h, w, rng, **params) -> bool (h, w)`` (True = repaint), registered by
name with :func:`generator`; :func:`draw` calls one by name and keeps the promises every caller relies on:
the mask has the asked size, is never empty, and is the same for the same ``rng`` state
(``np.random.default_rng(seed)``). Sizes are relative to the canvas, so a mask drawn at 256 px looks like
the same mask at 64 px. Parameters (``scale``, ``lo``/``hi``, ``kinds``, ...) have defaults, so every
generator can be drawn from ``(h, w, rng)`` alone, e.g. by ``--mask_kinds`` of ``train-ddpm`` and ``eval``.

Shapes: ``random_rect``, ``center``, ``irregular`` (medium brush strokes), ``stripes``, ``thin`` (cracks and
scratches), ``thick``, ``every_second_line``, ``half``, ``expand`` (the nine :data:`MASK_KINDS`),
``craquelure`` (a network of thin cracks, as in aged paint), ``ellipse``, ``stroke``, ``box`` (one local
defect), ``boxes`` (a few boxes). Mixtures of shapes, each the random holes of one trainer: ``assorted``
(train-lora), ``coverage`` (train-controlnet: shapes added until a coverage range is met), ``window``
(train-ddpm: a window cut from a mask drawn on a larger canvas), ``spot`` (``inpaint-kit defect``). Damage
benchmarks (:data:`DAMAGE_KINDS`, ``eval`` and ``train-thinfill``): ``lama_thin``, ``lama_medium``, ``lama_thick``
(LaMa's evaluation protocol), ``cracks`` (branching thin cracks) and ``scan_cracks`` (a large scan's).

No torch here; OpenCV is imported inside the generators that draw lines.
"""

from __future__ import annotations

from typing import Callable

import math

import numpy as np

Generator = Callable[..., np.ndarray]  # fn(h, w, rng, **params) -> bool (h, w)
GENERATORS: dict[str, Generator] = {}


def generator(name: str):
    """Register the decorated function as the mask generator ``name`` (see the module docstring)."""

    def register(fn: Generator) -> Generator:
        if name in GENERATORS:
            raise ValueError(f"mask generator {name!r} is registered twice")
        GENERATORS[name] = fn
        return fn

    return register


def draw(kind: str, h: int, w: int, rng: np.random.Generator, **params) -> np.ndarray:
    """Draw a random repair mask of generator ``kind``: bool ``(h, w)``, True = repaint, never empty,
    deterministic for a given ``rng`` state. ``params`` go to the generator (each has defaults)."""
    if kind not in GENERATORS:
        raise ValueError(f"unknown mask kind {kind!r}; choose from {', '.join(GENERATORS)}")
    if h < 2 or w < 2:
        raise ValueError(f"mask size must be at least 2x2, got {h}x{w}")
    mask = GENERATORS[kind](h, w, rng, **params)
    if not mask.any():  # a stroke can in principle vanish on a tiny canvas: keep the promise
        mask[h // 2, w // 2] = True
    return mask


def create_advanced_mask(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Draw a random repair mask of ``kind`` (the seed project's name for :func:`draw`)."""
    return draw(kind, h, w, rng)


def kind_index(kind: str) -> int:
    """A generator's fixed number (its registration order), e.g. to seed one stream per kind."""
    return list(GENERATORS).index(kind)


def pick(kinds, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """One of ``kinds`` chosen uniformly by ``rng``, then drawn with the same ``rng``."""
    return draw(kinds[int(rng.integers(len(kinds)))], h, w, rng)


# --- shapes -----------------------------------------------------------------------------------------

def strokes(h: int, w: int, rng: np.random.Generator, n: tuple[int, int], width: tuple[float, float],
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


@generator("random_rect")
def random_rect(h, w, rng):
    """One axis-aligned rectangle, 10-50 % of each side."""
    mh, mw = int(rng.uniform(0.1, 0.5) * h) or 1, int(rng.uniform(0.1, 0.5) * w) or 1
    top, left = int(rng.integers(0, h - mh + 1)), int(rng.integers(0, w - mw + 1))
    m = np.zeros((h, w), bool)
    m[top : top + mh, left : left + mw] = True
    return m


@generator("center")
def center(h, w, rng):
    """The centred half-size square (RePaint / LaMa "center")."""
    m = np.zeros((h, w), bool)
    m[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
    return m


@generator("irregular")
def irregular(h, w, rng):
    """Free-form brush strokes of medium width (DeepFill v2 style)."""
    return strokes(h, w, rng, (2, 5), (0.03, 0.08), (3, 8), (0.08, 0.25))


@generator("stripes")
def stripes(h, w, rng):
    """Parallel scan lines 1-3 px wide (horizontal or vertical)."""
    period = int(rng.integers(6, 17))
    width = int(rng.integers(1, 4))
    offset = int(rng.integers(0, period))
    vertical = bool(rng.integers(0, 2))
    n = w if vertical else h
    on = ((np.arange(n) + offset) % period) < width
    return np.broadcast_to(on[None, :] if vertical else on[:, None], (h, w)).copy()


@generator("thin")
def thin(h, w, rng):
    """Thin meandering strokes: cracks and scratches (LaMa "thin")."""
    return strokes(h, w, rng, (2, 6), (0.006, 0.016), (4, 12), (0.05, 0.2))


@generator("thick")
def thick(h, w, rng):
    """Wide strokes covering large areas (LaMa "thick")."""
    return strokes(h, w, rng, (1, 4), (0.08, 0.16), (2, 5), (0.1, 0.3))


@generator("every_second_line")
def every_second_line(h, w, rng):
    """Every other row (RePaint "alternating lines")."""
    m = np.zeros((h, w), bool)
    m[int(rng.integers(0, 2)) :: 2] = True
    return m


@generator("half")
def half(h, w, rng):
    """One half of the canvas: left, right, top or bottom (RePaint "half")."""
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


@generator("expand")
def expand(h, w, rng):
    """Everything except a centred half-size window (RePaint "expand")."""
    return ~center(h, w, rng)


# The classic kinds: train-ddpm's default --mask_kinds, and the kinds eval has always offered.
MASK_KINDS = tuple(GENERATORS)


@generator("craquelure")
def craquelure(h, w, rng, cells: tuple[float, float] = (4.0, 12.0), width: tuple[float, float] = (0.004, 0.01),
               wobble: float = 0.25):
    """A network of thin cracks, as in aged paint or varnish: the borders of random polygonal cells
    (``cells`` across the short side), bent by a smooth random displacement (``wobble``, a fraction of a
    cell), drawn ``width`` (a fraction of the short side, at least 1 px) wide."""
    import cv2

    side = min(h, w)
    cell = side / float(rng.uniform(*cells))  # cell diameter in pixels
    n = max(2, int(round(h * w / cell**2)))
    seeds = np.ones((h, w), np.uint8)
    seeds[rng.integers(0, h, n), rng.integers(0, w, n)] = 0
    # Voronoi cells of the seed points: every pixel labelled with its nearest seed's component.
    _, labels = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_CCOMP)
    # A smooth displacement field (a coarse random grid, cubic-upsampled) bends the straight cell borders.
    coarse = max(2, int(round(side / cell)) + 1)
    shift = rng.normal(0.0, wobble * cell, (2, coarse, coarse)).astype(np.float32)
    dx, dy = (cv2.resize(s, (w, h), interpolation=cv2.INTER_CUBIC) for s in shift)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    labels = cv2.remap(labels.astype(np.float32), xs + dx, ys + dy, cv2.INTER_NEAREST,
                       borderMode=cv2.BORDER_REFLECT)
    edge = np.zeros((h, w), bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[1:] |= labels[1:] != labels[:-1]
    px = max(1, int(round(rng.uniform(*width) * side)))
    if px > 1:
        edge = cv2.dilate(edge.astype(np.uint8), np.ones((px, px), np.uint8)).astype(bool)
    return edge


# --- one local defect (inpaint-kit defect's generated masks) ---------------------------------------

def _local(shape: str, h: int, w: int, rng: np.random.Generator, scale=(0.1, 0.3),
           center: tuple[int, int] | None = None) -> np.ndarray:
    """One ellipse, stroke or box, its extent a ``scale`` fraction of the short side, centred at ``center``
    (y, x) or at random in the middle 60 % of the image (where the object usually is)."""
    import cv2

    side = min(h, w)
    out = np.zeros((h, w), np.uint8)
    cy, cx = (int(rng.uniform(0.2, 0.8) * h), int(rng.uniform(0.2, 0.8) * w)) if center is None else center
    extent = max(2, int(round(side * rng.uniform(*scale))))
    if shape == "ellipse":
        axes = (max(1, extent // 2), max(1, int(extent * rng.uniform(0.25, 0.6))))
        cv2.ellipse(out, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    elif shape == "stroke":
        pts, angle = [(cx, cy)], rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(1, 4))):
            angle += rng.uniform(-0.8, 0.8)
            step = extent / 2
            pts.append((int(pts[-1][0] + step * np.cos(angle)), int(pts[-1][1] + step * np.sin(angle))))
        cv2.polylines(out, [np.array(pts, np.int32)], False, 1, max(1, side // 48))
    elif shape == "box":
        bh, bw = extent, max(1, int(extent * rng.uniform(0.3, 1.0)))
        out[max(0, cy - bh // 2):cy + (bh + 1) // 2, max(0, cx - bw // 2):cx + (bw + 1) // 2] = 1
    else:
        raise ValueError(f"unknown local shape {shape!r}; choose from {', '.join(LOCAL_SHAPES)}")
    return out.astype(bool)


LOCAL_SHAPES = ("ellipse", "stroke", "box")


@generator("ellipse")
def ellipse(h, w, rng, scale=(0.1, 0.3), center=None):
    """One filled ellipse at a random angle (see :func:`_local` for ``scale`` and ``center``)."""
    return _local("ellipse", h, w, rng, scale, center)


@generator("stroke")
def stroke(h, w, rng, scale=(0.1, 0.3), center=None):
    """One short bent polyline, a scratch (see :func:`_local`)."""
    return _local("stroke", h, w, rng, scale, center)


@generator("box")
def box(h, w, rng, scale=(0.1, 0.3), center=None):
    """One axis-aligned box (see :func:`_local`)."""
    return _local("box", h, w, rng, scale, center)


@generator("spot")
def spot(h, w, rng, scale=(0.1, 0.3), center=None):
    """One ellipse, stroke or box, chosen by ``rng`` (``inpaint-kit defect --mask_shapes random``)."""
    return _local(LOCAL_SHAPES[int(rng.integers(3))], h, w, rng, scale, center)


@generator("boxes")
def random_boxes(h, w, rng, n: tuple[int, int] = (1, 4), side: tuple[float, float] = (0.1, 0.4)):
    """Union of ``n`` random axis-aligned boxes, each side a ``side`` fraction of the image's (DefectFill's
    adjusted masks start from these)."""
    out = np.zeros((h, w), bool)
    for _ in range(int(rng.integers(n[0], n[1] + 1))):
        bh, bw = (max(1, int(round(s * rng.uniform(*side)))) for s in (h, w))
        top, left = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        out[top:top + bh, left:left + bw] = True
    return out


# --- the trainers' mixtures ---------------------------------------------------------------------------

ASSORTED_KINDS = ("random_rect", "irregular", "thin", "thick", "stripes", "center")  # train-lora's holes
COVERAGE_KINDS = ("random_rect", "irregular", "thick", "thin")  # train-controlnet's: rectangles and strokes
COVERAGE_TRIES = 24  # redraws before a mask outside the coverage range is accepted as is
WINDOW_CANVASES = (64, 128, 256)  # train-ddpm: canvas sides (per 64 px of window) a window is cut from


@generator("assorted")
def assorted(h, w, rng, kinds=ASSORTED_KINDS):
    """One of ``kinds`` (rectangle, irregular, thin, thick, stripes, centre), chosen by ``rng``: the
    random holes of ``train-lora``."""
    return pick(kinds, h, w, rng)


@generator("coverage")
def coverage_mask(h, w, rng, lo: float = 0.1, hi: float = 0.3, kinds=COVERAGE_KINDS):
    """A mask covering between ``lo`` and ``hi`` of the canvas (``train-controlnet --mask_coverage``):
    shapes of ``kinds`` are added until ``lo`` is reached; a union overshooting ``hi`` is redrawn (after
    :data:`COVERAGE_TRIES` the last is kept)."""
    mask = np.zeros((h, w), bool)
    for _ in range(COVERAGE_TRIES):
        mask = np.zeros((h, w), bool)
        while mask.mean() < lo:
            mask |= pick(kinds, h, w, rng)
        if mask.mean() <= hi:
            return mask
    return mask


@generator("window")
def window_mask(h, w, rng, kinds=MASK_KINDS):
    """A window cut from a mask of one of ``kinds`` drawn on a larger canvas (1, 2 or 4 times the window,
    :data:`WINDOW_CANVASES`), so that mask scales match the windows a model sees at inference
    (``train-ddpm``); a cut that misses the mask is redrawn (8 tries, then a mask at the window's size)."""
    kind = kinds[int(rng.integers(len(kinds)))]
    scale = WINDOW_CANVASES[int(rng.integers(len(WINDOW_CANVASES)))] / 64
    ch, cw = max(h, int(scale * h)), max(w, int(scale * w))
    for _ in range(8):
        m = draw(kind, ch, cw, rng)
        top, left = (int(v) for v in rng.integers(0, [ch - h + 1, cw - w + 1]))
        m = m[top : top + h, left : left + w]
        if m.any():
            return m
    return draw(kind, h, w, rng)


# --- damage benchmarks: LaMa's evaluation protocol and branching cracks (eval, train-thinfill) ---------
#
# * ``lama_thin`` / ``lama_medium`` / ``lama_thick``: the masks most inpainting papers compare on (LaMa,
#   Suvorov et al. 2022, arXiv 2109.07161; generator ``make_random_irregular_mask`` /
#   ``make_random_rectangle_mask`` of ``saicinpainting/training/data/masks.py`` with the settings of
#   ``configs/data_gen/random_{thin,medium,thick}_{256,512}.yaml``). A mask is free-form strokes, or (with
#   weight 0.3 against 1 for strokes: ``MixedMaskGenerator`` picks one generator per mask) 1-5 boxes;
#   masks covering more than half the image are drawn again (``max_tamper_area: 0.5``). LaMa draws on
#   square 256 or 512 crops; here the settings of the nearer size are scaled by the image's long side.
# * ``cracks``: branching thin cracks of an old print (1-3 px at a 256-px long side, scaled with it).
# * ``scan_cracks``: cracks of a large scan: 2-4 px wide whatever the image size, long, branching,
#   crossing the whole surface (what ``bench/bench_highres.py`` paints, without the blobs).
# Registered last, so the numbers (kind_index) of the generators above stay as they were.

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
    """A LaMa protocol mask of ``kind`` (thin, medium, thick) for an ``h`` x ``w`` image (see the section's
    comment for the source and settings)."""
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

@generator("lama_thin")
def lama_thin(h, w, rng):
    """LaMa's evaluation masks, thin (:func:`lama_mask`)."""
    return lama_mask("thin", h, w, rng)


@generator("lama_medium")
def lama_medium(h, w, rng):
    """LaMa's evaluation masks, medium (:func:`lama_mask`)."""
    return lama_mask("medium", h, w, rng)


@generator("lama_thick")
def lama_thick(h, w, rng):
    """LaMa's evaluation masks, thick (:func:`lama_mask`)."""
    return lama_mask("thick", h, w, rng)


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


@generator("cracks")
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


@generator("scan_cracks")
def scan_cracks(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Cracks of a large scan: 3-8 long branching cracks, 2-4 px wide at any image size (a scan's cracks
    are as thin as the paper's, however many pixels the scanner makes), each crossing much of the image."""
    mask = np.zeros((h, w), np.uint8)
    side = max(h, w)
    for _ in range(int(rng.integers(3, 9))):
        _crack(mask, rng, (rng.uniform(0, w), rng.uniform(0, h)), float(rng.uniform(0, 2 * math.pi)),
               int(rng.integers(20, 45)), float(rng.uniform(0.01, 0.03)) * side, int(rng.integers(2, 5)), 0.08)
    return mask.astype(bool)


DAMAGE_KINDS = ("lama_thin", "lama_medium", "lama_thick", "cracks", "scan_cracks")  # eval's damage benchmark
