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
(train-ddpm: a window cut from a mask drawn on a larger canvas), ``spot`` (``inpaint-kit defect``).

No torch here; OpenCV is imported inside the generators that draw lines.
"""

from __future__ import annotations

from typing import Callable

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
