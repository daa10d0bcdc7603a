"""Synthetic damage on clean photographs, each kind with its exact mask: the training and evaluation data
of the damage detector.

``render(picture, rng, settings) -> Sample`` makes one damaged photograph. The recipe follows how damage
looks on film and paper rather than drawn lines:

1. **the print**: the photo in colour, greyscale or sepia (sometimes faded), with things that look like
   damage but are the picture (:mod:`inpaint_kit.detect.negatives`: hair, whiskers, grass, wires, text,
   edges, autochrome / halftone / paper texture), blurred to its own sharpness, with its film grain;
2. **the damage**, kind by kind (:data:`KINDS`), anti-aliased (:mod:`inpaint_kit.detect.shapes`), width and
   opacity varying along a stroke, in the colours of exposed paper, emulsion, dirt and rust; damage that was
   on the negative is blurred like the picture, damage on the print is sharp; cracks and flakes follow a
   paper fold when the print has one;
3. **the scan**: one blur for everything, an optional resampling and greyscale scan, then grain / sensor
   noise and JPEG laid over picture and damage alike.

**The mask** is exactly what the damage changed: the pixels where the damaged print and the same print
without damage, both through the scan's blur and resampling, differ by at least :data:`VISIBLE` in some
channel (measured before the noise and JPEG, which are laid over both identically and would otherwise
mark every pixel). ``Sample.clean`` is that undamaged print through the same scan, noise included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from . import negatives, shapes
from .negatives import luminance
from .shapes import composite  # noqa: F401 (part of this module's interface)

# film_scratch last: evaluation seeds are drawn per kind index, so the older kinds keep their test images
KINDS = ("crack_dark", "crack_bright", "scratch", "dust", "hair", "foxing", "flaking", "tear", "craquelure",
         "film_scratch")
TONES = ("colour", "grey", "sepia")
VISIBLE = 0.03  # 7.65 / 255: a change smaller than this is not damage (nor visible on a print)
REQUIRED = 0.06  # 15 / 255: fainter damage is marked but not required of a detector (Sample.ignore)
MASKING = 1.0  # a change smaller than this x the local contrast is hidden by the texture (see hidden())
HOLD_OUT_KINDS = tuple(f"kind:{k}" for k in KINDS) + tuple(f"tone:{t}" for t in TONES) + ("crease",)


@dataclass(frozen=True)
class DamageSettings:
    """What :func:`render` draws from. Probabilities are per sample; ranges are ``(low, high)``."""

    kinds: tuple[str, ...] = KINDS
    tones: tuple[str, ...] = TONES
    items: tuple[int, int] = (1, 6)  # damage items per damaged sample
    clean_fraction: float = 0.15  # samples with no damage at all (hard negatives only)
    scale: tuple[float, float] = (0.6, 1.8)  # damage size factor, log-uniform
    scene_lines: float = 0.5  # probability of 1-3 scene-line items (hair, wires, text, ...)
    screens: float = 0.35  # probability of an autochrome / halftone / paper texture
    border: float = 0.1  # probability of the print's or plate's smooth edge crossing the picture
    sky: float = 0.15  # probability of a large smooth area in the picture (sky, wall, backdrop)
    lens_blur: tuple[float, float] = (0.0, 1.4)  # sigma of the photo's own softness, px (half the photos)
    scan_blur: tuple[float, float] = (0.0, 0.5)  # sigma of the scanner's blur over everything, px
    grain: float = 0.85  # probability of film grain in the picture
    noise: float = 0.6  # probability of grain / sensor noise over picture and damage
    jpeg: float = 0.5  # probability of JPEG compression
    jpeg_quality: tuple[int, int] = (30, 95)
    grey_scan: float = 0.1  # probability of a greyscale scan (damage colours lost too)
    crease: float = 0.2  # probability of a paper fold that cracks and flakes follow
    hold_out: str | None = None  # kept out: "kind:<kind>", "tone:<tone>" or "crease" (see held_out())

    def __post_init__(self):
        bad = [k for k in self.kinds if k not in KINDS] + [t for t in self.tones if t not in TONES]
        if bad or not self.kinds or not self.tones:
            raise ValueError(f"unknown or empty damage kinds / tones: {bad or '(none)'}")
        if self.hold_out is not None and self.hold_out not in HOLD_OUT_KINDS:
            raise ValueError(f"hold_out {self.hold_out!r}: one of {', '.join(HOLD_OUT_KINDS)}")

    def training(self) -> "DamageSettings":
        """The settings without the held-out kind / tone / creases (what a training run draws from)."""
        if self.hold_out is None:
            return self
        what, _, name = self.hold_out.partition(":")
        if what == "kind":
            return replace(self, kinds=tuple(k for k in self.kinds if k != name) or self.kinds)
        if what == "tone":
            return replace(self, tones=tuple(t for t in self.tones if t != name) or self.tones)
        return replace(self, crease=0.0)

    def held_out(self) -> "DamageSettings":
        """Only the held-out setting (what the separate generalisation score is measured on)."""
        if self.hold_out is None:
            raise ValueError("no setting is held out")
        what, _, name = self.hold_out.partition(":")
        if what == "kind":
            return replace(self, kinds=(name,), clean_fraction=0.0)
        if what == "tone":
            return replace(self, tones=(name,), clean_fraction=0.0)
        return replace(self, crease=1.0, kinds=("crack_bright", "crack_dark", "flaking"), clean_fraction=0.0)


@dataclass
class Sample:
    """One damaged photograph: ``image`` (damaged) and ``clean`` uint8 ``(H, W, 3)``, ``mask`` bool
    ``(H, W)`` (True = damage), the ``kinds`` drawn and the generator's ``info`` (tone, blur, JPEG, ...).
    ``ignore`` bool ``(H, W)``: damage pixels too faint (change below :data:`REQUIRED`) or hidden by the
    picture's own texture (:func:`hidden`): neither asked for nor held against a detector; None = none."""

    image: np.ndarray
    clean: np.ndarray
    mask: np.ndarray
    kinds: tuple[str, ...] = ()
    info: dict = field(default_factory=dict)
    ignore: np.ndarray | None = None

    @property
    def care(self) -> np.ndarray:
        """The damage a detector must find: the mask without its hidden pixels."""
        return self.mask if self.ignore is None else self.mask & ~self.ignore


# --- colours -----------------------------------------------------------------------------------------

def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(a, (0, 0), sigma) if sigma > 0.05 else a


def paper(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Exposed paper / baryta ``(H, W, 3)``: off-white to aged cream with a faint fibre texture (never
    flat pure white)."""
    base = np.array(rng.choice([[0.95, 0.94, 0.9], [0.93, 0.9, 0.8], [0.88, 0.83, 0.7], [0.97, 0.97, 0.96]]))
    base = np.clip(base + rng.normal(0, 0.025, 3), 0.6, 1.0)
    tex = _blur(rng.standard_normal((h, w), dtype=np.float32), rng.uniform(0.5, 1.2))
    return np.clip(base + rng.uniform(0.01, 0.04) * tex[..., None], 0, 1).astype(np.float32)


def backing(h: int, w: int, rng: np.random.Generator, colour) -> np.ndarray:
    """What shows through a loss that is not paper: the dark base, a mount board, the scanner's lid, with a
    coarse texture (board fibres, dirt) as on a scan, never a perfectly flat fill (which is what a clear sky
    looks like)."""
    tex = _blur(rng.standard_normal((h, w), dtype=np.float32), rng.uniform(0.6, 2.0))
    tex = tex / (tex.std() + 1e-6) * rng.uniform(0.015, 0.05)
    return np.clip(np.asarray(colour, np.float32) + tex[..., None], 0, 1).astype(np.float32)


def dirt(rng: np.random.Generator) -> np.ndarray:
    """Dark dirt / silver / old emulsion: near black, greyish or brown."""
    v = rng.uniform(0.02, 0.3)
    tint = np.array(rng.choice([[1.0, 1.0, 1.0], [1.15, 1.0, 0.8], [1.05, 1.0, 0.95]]))
    return np.clip(v * tint + rng.normal(0, 0.015, 3), 0, 1).astype(np.float32)


def bright(rng: np.random.Generator) -> np.ndarray:
    """A bright scratch or dust colour: white-grey, slightly warm or cool."""
    v = rng.uniform(0.8, 1.0)
    return np.clip(v + rng.normal(0, 0.025, 3), 0, 1).astype(np.float32)


# --- the damage kinds ---------------------------------------------------------------------------------
# Each returns a list of layers (coverage (H, W) float32, fill): fill is an RGB colour (3,) or a colour image
# (H, W, 3) (exposed paper has texture), laid over the print with the coverage as opacity.

@dataclass
class Context:
    """What every damage kind may look at: the canvas size, the damage scale, the photo's own blur, and the
    paper fold of this print (points, or None)."""

    h: int
    w: int
    scale: float
    lens_sigma: float
    fold: np.ndarray | None


def _crack(ctx: Context, rng, dark: bool):
    h, w, s = ctx.h, ctx.w, ctx.scale
    cov = shapes.Coverage(h, w)
    width = rng.uniform(0.6, 2.4) * s
    if ctx.fold is not None and rng.random() < 0.7:  # the crack runs along the fold, jagged, with spurs
        main = ctx.fold + rng.normal(0, 0.4, ctx.fold.shape)
        n = len(main)
        keep = shapes.smooth_noise(n, rng, 25, -0.6, 1.0) > 0  # broken in places
        widths = width * shapes.smooth_noise(n, rng, 15, 0.5, 1.3) * keep
        cov.stroke(main, widths, shapes.smooth_noise(n, rng, 20, 0.7, 1.0))
        for _ in range(int(rng.poisson(n * 0.02))):
            i = int(rng.integers(n))
            for pts, wd in shapes.tree(main[i], rng.uniform(0, 2 * np.pi), rng.uniform(5, 30) * s, width * 0.7, rng,
                                       depth=2, jitter=0.3):
                cov.stroke(pts, wd, 1.0)
    else:
        start = rng.uniform(0, 1, 2) * [w, h]
        for pts, wd in shapes.tree(start, rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 0.9) * max(h, w), width, rng,
                                   depth=int(rng.integers(2, 5)), branch_rate=rng.uniform(0.008, 0.04),
                                   turn=rng.uniform(0.05, 0.2), jitter=rng.uniform(0.15, 0.6)):
            cov.stroke(pts, wd, shapes.smooth_noise(len(pts), rng, 20, 0.65, 1.0))
    c = cov.read()
    if dark:
        return [(c, dirt(rng))]
    layers = []
    if rng.random() < 0.5:  # raised, darker emulsion edges either side of the bright crack
        rim = np.clip(_blur(c, 0.9 * s) * 1.8 - c, 0, 1) * rng.uniform(0.25, 0.6)
        layers.append((rim, dirt(rng)))
    return layers + [(c, paper(h, w, rng))]


def crack_dark(ctx, rng):
    """A branching crack filled with dirt: dark, jagged, tapering; sometimes along the fold."""
    return _crack(ctx, rng, dark=True)


def crack_bright(ctx, rng):
    """A branching crack where the emulsion opened to the paper: cream-white, often with darker edges."""
    return _crack(ctx, rng, dark=False)


def scratch(ctx, rng):
    """1-3 long thin scratches across the print, mostly bright and partly transparent: width and opacity
    wander along them; sometimes broken, sometimes a parallel group (a film cinch mark); a quarter are dead
    straight and even from edge to edge (film-transport scratches)."""
    h, w, s = ctx.h, ctx.w, ctx.scale
    cov = shapes.Coverage(h, w)
    if rng.random() < 0.25:  # a film-transport scratch: dead straight, even width and opacity, end to end
        cov.stroke(shapes.line_across(h, w, rng), rng.uniform(0.5, 2.0) * s, rng.uniform(0.35, 0.9))
        return [(cov.read(), bright(rng) if rng.random() < 0.85 else dirt(rng))]
    base = shapes.arc(h, w, rng, bend=rng.uniform(0, 0.12), wobble=rng.uniform(0, 3))
    count = int(rng.integers(1, 4)) if rng.random() < 0.35 else 1
    d = np.gradient(base, axis=0)
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1) / (np.hypot(d[:, 0], d[:, 1])[:, None] + 1e-6)
    for k in range(count):
        pts = base + normal * (k * rng.uniform(2, 10) * s)
        n = len(pts)
        a, b = sorted(rng.uniform(0, 1, 2)) if rng.random() < 0.4 else (0.0, 1.0)  # partial scratches
        a, b = int(a * n), max(int(a * n) + 2, int(b * n))
        widths = shapes.smooth_noise(n, rng, rng.uniform(20, 80), 0.35, 2.2) * s
        alpha = shapes.smooth_noise(n, rng, rng.uniform(15, 60), 0.2, 0.95)
        if rng.random() < 0.4:  # broken: stretches where the scratch skipped
            alpha *= shapes.smooth_noise(n, rng, rng.uniform(10, 40), -0.5, 1.0) > 0
        cov.stroke(pts[a:b], widths[a:b], alpha[a:b])
    colour = bright(rng) if rng.random() < 0.9 else dirt(rng)
    return [(cov.read(), colour)]


def film_scratch(ctx, rng):
    """Film scratches: 1-3 px lines dead straight (or bent by a fraction of a pixel per hundred) from edge to
    edge, as the film transport or a projector gate draws them through a whole frame: mostly within 2 degrees
    of vertical or horizontal (often exactly, a crisp 1-px column of a digital scan), sometimes 2-4 parallel;
    bright (through the emulsion) or dark (on the negative), at constant or slowly varying opacity, some
    with gaps. The picture is crossed regardless of what it shows: the line's length and straightness, not
    its local look, tell it from a wire (:func:`inpaint_kit.detect.negatives.wires`)."""
    h, w = ctx.h, ctx.w
    r = rng.random()
    vertical = r < 0.45 or (r >= 0.9 and rng.random() < 0.5)
    angle = 0.0 if rng.random() < 0.4 else float(np.radians(rng.uniform(-2, 2)))
    if r >= 0.9:  # any direction (a scratch on a print turned in the scanner, a cinch mark)
        angle = float(rng.uniform(-np.pi / 4, np.pi / 4))
    along, across = (h, w) if vertical else (w, h)
    bend = rng.uniform(0, 0.004) * along if rng.random() < 0.4 else 0.0  # sagitta in px
    count = 1 if rng.random() < 0.65 else int(rng.integers(2, 5))
    start = float(rng.integers(2, max(3, across - 2)))  # integer: axis-aligned 1-px lines are crisp
    if rng.random() < 0.5:
        start += rng.uniform(0, 1)
    offsets = np.cumsum([0.0] + list(rng.uniform(3, 40, count - 1))) * rng.choice([-1, 1])  # one side
    t = np.arange(-4.0, along + 4.0, 2.0)  # (N,) along the frame, past its edges
    u = (t - along / 2) / (along / 2)
    bright_ = rng.random() < 0.7
    cov = shapes.Coverage(h, w)
    for off in offsets:
        c = start + off + (t - along / 2) * np.tan(angle) + bend * (1 - u * u)
        pts = np.stack([c, t], axis=1) if vertical else np.stack([t, c], axis=1)
        n = len(pts)
        width = 1.0 if rng.random() < 0.4 else _uniform_log(rng, 0.7, 3.0)
        if rng.random() < 0.5:
            alpha = np.full(n, rng.uniform(0.25, 0.9), np.float32)
        else:
            alpha = shapes.smooth_noise(n, rng, rng.uniform(0.3, 1.0) * n, 0.25, 0.9)
        if rng.random() < 0.15:  # gaps where the scratch skipped
            alpha *= shapes.smooth_noise(n, rng, rng.uniform(10, 40), -0.3, 1.0) > 0
        cov.stroke(pts, width, alpha)
    return [(cov.read(), bright(rng) if bright_ else dirt(rng))]


def dust(ctx, rng):
    """Dust and specks: 5-60 irregular dots and short fibres of 0.5-6 px, dark (on the print) or white
    (on the negative, then blurred like the picture)."""
    h, w, s = ctx.h, ctx.w, ctx.scale
    cov = shapes.Coverage(h, w)
    area = h * w / 256.0**2
    for _ in range(int(rng.integers(5, 61) * min(4.0, max(0.5, area)))):
        c = rng.uniform(0, 1, 2) * [w, h]
        r = float(np.clip(rng.lognormal(math.log(1.1 * s), 0.55), 0.35, 6.0 * s))
        op = rng.uniform(0.6, 1.0)
        if rng.random() < 0.2:
            pts = shapes.walk(c, rng.uniform(0, 2 * np.pi), rng.uniform(3, 15) * s, rng, step=1.0, turn=0.3)
            cov.stroke(pts, rng.uniform(0.5, 1.2) * s, op)
        else:
            cov.polygon(shapes.blob(c, r, rng, rng.uniform(0.1, 0.5), points=16), op)
    c = cov.read()
    on_negative = rng.random() < 0.45
    if on_negative:
        c = _blur(c, max(0.3, ctx.lens_sigma))
        return [(np.clip(c * 1.3, 0, 1), bright(rng))]
    return [(c, dirt(rng) if rng.random() < 0.75 else bright(rng))]


def hair(ctx, rng):
    """Hairs and fibres lying on the print or negative: 1-3 smooth curling lines of 0.6-2.5 px."""
    h, w, s = ctx.h, ctx.w, ctx.scale
    cov = shapes.Coverage(h, w)
    for _ in range(int(rng.integers(1, 4))):
        pts = shapes.walk(rng.uniform(0, 1, 2) * [w, h], rng.uniform(0, 2 * np.pi), rng.uniform(20, 260) * s, rng,
                          step=1.5, turn=rng.uniform(0.03, 0.1), drift=rng.uniform(-0.03, 0.03))
        n = len(pts)
        cov.stroke(pts, rng.uniform(0.6, 2.2) * s * shapes.smooth_noise(n, rng, 30, 0.75, 1.15),
                   shapes.smooth_noise(n, rng, 30, 0.7, 1.0))
    c = _blur(cov.read(), rng.uniform(0.0, 0.7))
    return [(np.clip(c * 1.15, 0, 1), dirt(rng) if rng.random() < 0.5 else bright(rng))]


def foxing(ctx, rng):
    """Foxing: a cluster of 1-15 rust-brown stains in the paper, semi-opaque with soft, irregular edges and
    darker cores (lighter than dark picture areas, darker than light ones, as a stain is)."""
    h, w, s = ctx.h, ctx.w, ctx.scale
    centre = rng.uniform(0, 1, 2) * [w, h]
    spread = rng.uniform(5, 60) * s
    spots, cores = shapes.Coverage(h, w), shapes.Coverage(h, w)
    radii = []
    for _ in range(int(rng.integers(1, 16))):
        r = float(np.clip(rng.lognormal(math.log(4 * s), 0.6), 1.2, 25 * s))
        c = centre + rng.normal(0, spread, 2)
        spots.polygon(shapes.blob(c, r, rng, rng.uniform(0.2, 0.6)), rng.uniform(0.35, 0.75))
        cores.disc(c, max(0.5, r * rng.uniform(0.15, 0.4)))
        radii.append(r)
    soft = float(np.median(radii)) * rng.uniform(0.1, 0.25)  # one edge softness for the cluster
    total = np.clip(_blur(spots.read(), soft) + 0.3 * _blur(cores.read(), 0.5), 0, 1)
    rust = np.clip(np.array([0.62, 0.42, 0.24]) * rng.uniform(0.75, 1.2) + rng.normal(0, 0.03, 3), 0.05, 1.0)
    return [(total, rust.astype(np.float32))]


def flaking(ctx, rng):
    """Flaking and losses: 1-6 fractured islands (or wide gouges) where the emulsion came off, showing
    paper (or, less often, the dark base), often with a thin dark rim; along the fold when the print has one."""
    h, w, s = ctx.h, ctx.w, ctx.scale
    cov = shapes.Coverage(h, w)
    along = ctx.fold is not None and rng.random() < 0.6
    for _ in range(int(rng.integers(1, 7))):
        c = ctx.fold[int(rng.integers(len(ctx.fold)))] if along else rng.uniform(0, 1, 2) * [w, h]
        if rng.random() < 0.25 and not along:  # a gouge: a wide wandering loss, ragged along its sides
            pts = shapes.walk(c, rng.uniform(0, 2 * np.pi), rng.uniform(20, 120) * s, rng, step=2.0, turn=0.12,
                              jitter=0.8)
            n = len(pts)
            cov.stroke(pts, rng.uniform(3, 14) * s * shapes.smooth_noise(n, rng, 8, 0.5, 1.3), 1.0)
            continue
        r = float(np.clip(rng.lognormal(math.log(7 * s), 0.6), 2.0, 45 * s))
        cov.polygon(shapes.jagged_blob(c, r, rng, rng.uniform(0.25, 0.6), rng.uniform(0.08, 0.2)))
    c = cov.read()
    layers = []
    if rng.random() < 0.5:
        layers.append((np.clip(_blur(c, 0.8) * 2 - c, 0, 1) * rng.uniform(0.3, 0.7), dirt(rng)))
    fill = paper(h, w, rng) if rng.random() < 0.75 else backing(h, w, rng, dirt(rng))
    return layers + [(c, fill)]


def tear(ctx, rng):
    """A tear from the edge (a jagged line of white paper fibres), or a missing corner / edge piece
    showing the scanner's background behind a torn, fibrous paper edge."""
    h, w, s = ctx.h, ctx.w, ctx.scale
    side = int(rng.integers(4))
    u = rng.uniform(0.1, 0.9)
    edge_pts = [(u * w, -2.0), (w + 1.0, u * h), (u * w, h + 1.0), (-2.0, u * h)]
    if rng.random() < 0.5:  # a tear line into the picture
        p0 = np.array(edge_pts[side])
        inward = np.array([[0, 1], [-1, 0], [0, -1], [1, 0]][side], float)
        a = math.atan2(inward[1], inward[0]) + rng.normal(0, 0.4)
        p1 = p0 + np.array([math.cos(a), math.sin(a)]) * rng.uniform(0.15, 0.6) * min(h, w)
        pts = shapes.midpoint_displace(p0, p1, rng, rng.uniform(0.04, 0.12), levels=7)
        cov = shapes.Coverage(h, w)
        n = len(pts)
        cov.stroke(pts, np.linspace(rng.uniform(1.5, 4.0), 0.6, n) * s, 1.0)
        for i in rng.integers(0, n, int(n * 0.4)):  # loose fibres along the tear
            f = shapes.walk(pts[i], rng.uniform(0, 2 * np.pi), rng.uniform(1.5, 5) * s, rng, step=0.7, turn=0.4)
            cov.stroke(f, 0.5 * s, rng.uniform(0.4, 0.9))
        return [(cov.read(), paper(h, w, rng))]
    # a missing piece: everything beyond a jagged line cutting a corner or an edge
    corner = int(rng.integers(4))
    cx, cy = [(0, 0), (w, 0), (w, h), (0, h)][corner]
    # absolute sizes (px x scale), not fractions of the canvas: a torn corner is as large on a whole scan
    # as on a training crop of it
    a, b = (min(0.6 * side, rng.uniform(15, 110) * s) for side in (w, h))
    p0 = np.array([cx + (a if cx == 0 else -a), cy])
    p1 = np.array([cx, cy + (b if cy == 0 else -b)])
    cut = shapes.midpoint_displace(p0, p1, rng, rng.uniform(0.03, 0.1), levels=7)
    piece = np.vstack([cut, [[cx + (-3 if cx == 0 else 3), cy + (-3 if cy == 0 else 3)]]])
    hole = shapes.Coverage(h, w).polygon(piece).read()
    background = np.array(rng.choice([[0.98, 0.98, 0.98], [0.03, 0.03, 0.03], [0.5, 0.5, 0.5], [0.45, 0.3, 0.2]]))
    layers = [(hole, backing(h, w, rng, np.clip(background + rng.normal(0, 0.02, 3), 0, 1)))]
    if rng.random() < 0.9:  # the paper's torn white core along the cut
        rim = shapes.Coverage(h, w).stroke(cut, rng.uniform(1.0, 3.5) * s, 1.0).read()
        layers.append((rim * (1 - hole), paper(h, w, rng)))
    return layers


def craquelure(ctx, rng):
    """Craquelure: a network of fine cracks (polygonal cells 6-30 px) over part or all of the print,
    dark with dirt or light, denser in some places than others."""
    h, w, s = ctx.h, ctx.w, ctx.scale
    region = _blur(shapes.Coverage(h, w).polygon(
        shapes.blob(rng.uniform(0, 1, 2) * [w, h], rng.uniform(0.2, 0.8) * max(h, w), rng, 0.4)).read(), 8.0)
    if rng.random() < 0.3:
        region = np.ones((h, w), np.float32)
    edges = shapes.network(h, w, rng.uniform(6, 30) * s, rng, keep=rng.uniform(0.6, 0.95))
    if edges:
        mids = np.clip(np.round(np.array([e[len(e) // 2] for e in edges])).astype(int), 0, [w - 1, h - 1])
        kept = [e for e, m in zip(edges, mids) if rng.random() < region[m[1], m[0]]]
        width = rng.uniform(0.4, 1.3) * s
        cov = shapes.Coverage(h, w).strokes(kept, width * rng.uniform(0.6, 1.4, len(kept)),
                                            rng.uniform(0.4, 1.0, len(kept)))
        c = cov.read()
    else:
        c = np.zeros((h, w), np.float32)
    return [(c, dirt(rng) if rng.random() < 0.65 else paper(h, w, rng))]


DRAW = {"crack_dark": crack_dark, "crack_bright": crack_bright, "scratch": scratch, "film_scratch": film_scratch,
        "dust": dust, "hair": hair, "foxing": foxing, "flaking": flaking, "tear": tear, "craquelure": craquelure}


# --- the print and the scan -----------------------------------------------------------------------------

def colourise(lum: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A grey picture ``(H, W)`` in colour: its luminance through a random dark-to-light colour ramp, the
    ramp's hue drifting slowly across the picture (grey textures such as grass or gravel become green
    foliage, brown earth, blue water: colour content the training photos lack)."""
    import colorsys

    h, w = lum.shape
    hue = rng.uniform(0, 1)
    dark = np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.3)))
    light = np.array(colorsys.hsv_to_rgb((hue + rng.normal(0, 0.08)) % 1, rng.uniform(0.05, 0.5), rng.uniform(0.7, 1)))
    drift = _blur(rng.standard_normal((h, w), dtype=np.float32), max(h, w) / 6)
    drift = (drift / (np.abs(drift).max() + 1e-6))[..., None] * rng.uniform(0, 0.15) * rng.normal(0, 1, 3)
    out = dark + (light - dark) * lum[..., None] + drift * lum[..., None]
    return np.clip(out, 0, 1).astype(np.float32)


def tone(img: np.ndarray, name: str, rng: np.random.Generator) -> np.ndarray:
    """The photo as a colour print (sometimes faded with a warm cast), a greyscale print or a sepia print."""
    lum = luminance(img)[..., None]
    if name == "grey":
        return np.repeat(lum, 3, axis=2)
    if name == "sepia":
        dark, light = np.array([0.16, 0.1, 0.05]), np.array([0.98, 0.9, 0.75]) + rng.normal(0, 0.03, 3)
        return np.clip(dark + (light - dark) * lum, 0, 1).astype(np.float32)
    if float(np.abs(img - lum).mean()) < 0.01 and rng.random() < 0.7:
        img = colourise(lum[..., 0], rng)  # a grey source photo as colour content (foliage, skin, sky, ...)
    if rng.random() < 0.4:  # faded: less saturation and contrast, a warm cast
        k = rng.uniform(0.1, 0.5)
        img = (1 - k) * img + k * lum
        img = 0.5 + (img - 0.5) * rng.uniform(0.65, 0.95) + np.array([0.04, 0.02, -0.03]) * rng.uniform(0, 1.5)
    return np.clip(img, 0, 1).astype(np.float32)


def hidden(clean: np.ndarray, change: np.ndarray) -> np.ndarray:
    """Changes masked by the picture's texture: smaller than :data:`MASKING` x the local standard deviation
    of the undamaged picture's luminance (Gaussian window, sigma 2 px). Faint dirt lines over grass change
    the pixels but cannot be seen, so no detector (or person) could mark them; training and scoring ignore
    them instead of calling them damage or not damage (contrast masking: a change is visible in proportion
    to the contrast around it)."""
    lum = luminance(clean)
    mean = _blur(lum, 2.0)
    std = np.sqrt(np.clip(_blur(lum * lum, 2.0) - mean * mean, 0, None))
    return change < MASKING * std


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()


def _uniform_log(rng, lo, hi):
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def render(picture: np.ndarray, rng: np.random.Generator, settings: DamageSettings = DamageSettings(),
           kinds: tuple[str, ...] | None = None, scale: float | None = None, out_size: tuple[int, int] | None = None,
           damaged: bool | None = None) -> Sample:
    """Damage ``picture`` (uint8 or float RGB ``(H, W, 3)``) as described in the module docstring.

    ``kinds``: draw only these kinds (default: ``settings.kinds``); ``scale``: the damage size factor
    (default: drawn from ``settings.scale``); ``out_size``: ``(h, w)`` of the scan when it is resampled
    (default: the picture's size); ``damaged``: force a damaged (True) or clean (False) sample (default:
    clean with probability ``settings.clean_fraction``)."""
    import cv2

    img = picture.astype(np.float32) / 255.0 if picture.dtype == np.uint8 else picture.astype(np.float32)
    h, w = img.shape[:2]
    kinds = tuple(kinds or settings.kinds)
    scale = _uniform_log(rng, *settings.scale) if scale is None else scale
    info = {"scale": round(scale, 3)}
    # 1. the print
    if rng.random() < settings.sky:  # part of the scene: toned, lit and grained with it
        img = negatives.sky(img, rng)
        info["sky"] = True
    if rng.random() < settings.scene_lines:  # part of the scene: toned with it
        img = negatives.add_scene_lines(img, rng, int(rng.integers(1, 4)), scale)
    info["tone"] = settings.tones[int(rng.integers(len(settings.tones)))]
    img = tone(img, info["tone"], rng)
    if rng.random() < settings.border:
        img = negatives.border(img, rng)
        info["border"] = True
    if rng.random() < settings.screens:
        screens = ["halftone", "paper"] + (["autochrome"] * 2 if info["tone"] == "colour" else [])
        info["screen"] = screens[int(rng.integers(len(screens)))]
        img = negatives.SCREEN_DRAW[info["screen"]](img, rng)
    lens = rng.uniform(*settings.lens_blur) if rng.random() < 0.5 else 0.0  # half the prints are sharp
    img = _blur(img, lens)
    if rng.random() < settings.grain:
        img = negatives.film_grain(img, rng, rng.uniform(0.008, 0.045))
    info["lens_sigma"] = round(lens, 2)
    # 2. the damage
    fold = None
    if rng.random() < settings.crease:
        fold = shapes.line_across(h, w, rng, step=1.5)
        fold = fold + shapes.smooth_noise(len(fold), rng, 40, -1.5, 1.5)[:, None]
        info["crease"] = True
    clean = img
    drawn = ()
    is_damaged = damaged if damaged is not None else rng.random() >= settings.clean_fraction
    if is_damaged:
        ctx = Context(h, w, scale, lens, fold)
        n = int(rng.integers(settings.items[0], settings.items[1] + 1))
        drawn = tuple(kinds[int(rng.integers(len(kinds)))] for _ in range(n))
        for kind in drawn:
            img = composite(img, DRAW[kind](ctx, rng))
    # 3. the scan
    scan = rng.uniform(*settings.scan_blur)
    clean, img = _blur(clean, scan), _blur(np.clip(img, 0, 1).astype(np.float32), scan)
    if out_size is not None and tuple(out_size) != (h, w):
        interp = cv2.INTER_AREA if out_size[0] < h else cv2.INTER_CUBIC
        clean = cv2.resize(clean, (out_size[1], out_size[0]), interpolation=interp)
        img = cv2.resize(img, (out_size[1], out_size[0]), interpolation=interp)
    if rng.random() < settings.grey_scan:
        clean, img = (np.repeat(luminance(x)[..., None], 3, axis=2) for x in (clean, img))
        info["grey_scan"] = True
    clean, img = np.clip(clean, 0, 1), np.clip(img, 0, 1)
    change = np.abs(img - clean).max(axis=2)
    mask = change >= VISIBLE  # exactly what the damage changed (see the docstring)
    ignore = mask & ((change < REQUIRED) | hidden(clean, change))
    if rng.random() < settings.noise:  # grain / sensor noise over picture and damage alike
        field_ = negatives.grain_field(*img.shape[:2], rng, size=rng.uniform(0.4, 1.0), chroma=rng.uniform(0, 0.6))
        amount = rng.uniform(0.005, 0.035)
        clean, img = negatives.add_grain(clean, field_, amount), negatives.add_grain(img, field_, amount)
    out = [np.round(x * 255).astype(np.uint8) for x in (img, clean)]
    if rng.random() < settings.jpeg:
        info["jpeg"] = int(rng.integers(settings.jpeg_quality[0], settings.jpeg_quality[1] + 1))
        out = [_jpeg(x, info["jpeg"]) for x in out]
    return Sample(out[0], out[1], mask, drawn, info, ignore)
