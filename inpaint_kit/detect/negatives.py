"""Hard negatives: what old photographs contain that looks like damage but is not, drawn into the picture
(labelled "not damage"): film grain, autochrome and halftone screens, paper texture, and thin lines that
belong to the scene (hair, whiskers, grass, rigging and wires, text strokes, picture edges and borders).

Everything works on float32 RGB ``(H, W, 3)`` in [0, 1] and is a pure function of its inputs and the
``numpy.random.Generator`` it is given. Scene lines take their colours from the picture around them and
are drawn *before* the photograph's own blur (:mod:`inpaint_kit.detect.damage` blurs the scene, then adds
the damage), so they have the picture's sharpness, which damage on a print often does not.
"""

from __future__ import annotations

import numpy as np

from . import shapes

SCREENS = ("grain", "autochrome", "halftone", "paper")  # textures over the whole picture
SCENE = ("hair", "whiskers", "grass", "wires", "text", "edges")  # thin things in the picture
NEGATIVE_KINDS = SCREENS + SCENE


def luminance(img: np.ndarray) -> np.ndarray:
    """Rec. 601 luma ``(H, W)`` of an RGB float image."""
    return img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(a, (0, 0), sigma) if sigma > 0.05 else a


# --- screens: textures over the whole picture -------------------------------------------------------

def grain_field(h: int, w: int, rng: np.random.Generator, size: float = 0.8, chroma: float = 0.0) -> np.ndarray:
    """Film grain noise ``(H, W, 3)`` with unit standard deviation: white noise blurred to grain ``size``
    px (clumps), monochrome plus a ``chroma`` share of per-channel noise (colour film dyes)."""
    mono = _blur(rng.standard_normal((h, w), dtype=np.float32), size)
    field = np.repeat(mono[..., None], 3, axis=2)
    if chroma > 0:
        colour = _blur(rng.standard_normal((h, w, 3), dtype=np.float32), size)  # per channel
        field = (1 - chroma) * field + chroma * colour
    std = float(field.std()) or 1.0
    return field / std


def add_grain(img: np.ndarray, field: np.ndarray, amount: float) -> np.ndarray:
    """Grain of standard deviation ``amount`` (in [0, 1] units), strongest in the mid-tones and shadows
    (as silver grain shows in a print), clipped to [0, 1]."""
    lum = luminance(img)[..., None]
    weight = 0.5 + 2.0 * lum * (1 - lum) + 0.4 * (1 - lum)  # 0.5 in white, about 1 in mid-tones and shadows
    return np.clip(img + field * amount * weight, 0.0, 1.0)


def film_grain(img: np.ndarray, rng: np.random.Generator, amount: float | None = None) -> np.ndarray:
    """``img`` with film grain (random size, strength ``amount`` or drawn in 0.015-0.07)."""
    h, w = img.shape[:2]
    amount = rng.uniform(0.015, 0.07) if amount is None else amount
    field = grain_field(h, w, rng, size=rng.uniform(0.5, 1.4), chroma=rng.uniform(0, 0.5))
    return add_grain(img, field, amount)


def autochrome(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The Autochrome look (1907-1935 colour plates): a random mosaic of dyed starch grains (orange-red,
    green, blue-violet, 1.5-4 px) with dark gaps, multiplying the picture, then the plate's softness."""
    import cv2

    h, w = img.shape[:2]
    g = rng.uniform(1.5, 4.0)
    sh, sw = max(1, int(h / g)), max(1, int(w / g))
    dyes = np.array([[0.95, 0.45, 0.3], [0.4, 0.85, 0.35], [0.45, 0.45, 0.95]], np.float32)
    pick = rng.integers(0, 3, (sh, sw))
    mosaic = cv2.resize(dyes[pick], (w, h), interpolation=cv2.INTER_NEAREST)
    gaps = (rng.random((sh, sw)) < 0.12).astype(np.float32)
    mosaic *= 1 - 0.6 * cv2.resize(gaps, (w, h), interpolation=cv2.INTER_NEAREST)[..., None]
    mosaic = _blur(mosaic, g * 0.35)
    mosaic /= mosaic.reshape(-1, 3).mean(axis=0) + 1e-6  # keep the picture's colour balance
    strength = rng.uniform(0.08, 0.3)
    out = img * (1 - strength + strength * mosaic)
    return np.clip(_blur(out, rng.uniform(0.3, 0.9)), 0.0, 1.0)


def halftone(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A printed halftone screen (newspaper and book reproductions): dots on a rotated grid of period
    3-7 px whose size follows the darkness, mixed with the picture."""
    h, w = img.shape[:2]
    period, angle = rng.uniform(3.0, 7.0), rng.uniform(0, np.pi / 2)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (x * np.cos(angle) + y * np.sin(angle)) / period
    v = (-x * np.sin(angle) + y * np.cos(angle)) / period
    d = np.hypot(u - np.round(u), v - np.round(v))  # distance to the nearest dot centre, in periods
    lum = luminance(img)
    radius = np.sqrt(np.clip(1 - lum, 0, 1) / np.pi) * 1.05  # dot area ~ darkness
    ink = np.clip((radius - d) * period + 0.5, 0.0, 1.0)[..., None]  # anti-aliased dot edge
    screened = img * (1 - ink) + ink * img * 0.25 / (lum[..., None] + 0.25)  # dots darken, keep hue
    mix = rng.uniform(0.3, 0.9)
    return np.clip((1 - mix) * img + mix * _blur(screened, rng.uniform(0.0, 0.6)), 0.0, 1.0)


def paper_texture(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Paper and print-surface texture: fibrous low-contrast noise stretched along one direction, or the
    regular dimple pattern of a silk / pearl finish, multiplying the picture."""
    import cv2

    h, w = img.shape[:2]
    if rng.random() < 0.5:  # fibres: anisotropic blurred noise
        n = rng.standard_normal((h, w), dtype=np.float32)
        k = int(rng.integers(5, 15)) | 1
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2] = 1.0 / k
        m = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(kernel, m, (k, k))
        tex = cv2.filter2D(n, -1, kernel / max(kernel.sum(), 1e-6))
    else:  # silk / pearl finish: two crossed sinusoids with wandering phase
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        p = rng.uniform(3.0, 9.0)
        phase = _blur(rng.standard_normal((h, w), dtype=np.float32), 6.0) * 8
        tex = np.sin(2 * np.pi * x / p + phase) * np.sin(2 * np.pi * y / p + phase)
    tex = tex / (tex.std() + 1e-6)
    amount = rng.uniform(0.01, 0.05)
    return np.clip(img * (1 + amount * tex[..., None]), 0.0, 1.0)


# --- scene lines: thin things that belong to the picture --------------------------------------------

def _local_colour(img: np.ndarray, pts: np.ndarray, rng: np.random.Generator, contrast: float) -> np.ndarray:
    """A colour related to the picture under the path: its mean there, pushed brighter or darker by
    ``contrast`` (a wire is darker than the sky it crosses, a whisker brighter than the fur)."""
    h, w = img.shape[:2]
    idx = np.clip(np.round(pts).astype(int), 0, [w - 1, h - 1])
    base = img[idx[:, 1], idx[:, 0]].mean(axis=0)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    target = np.ones(3) if sign > 0 else np.zeros(3)
    return np.clip(base + (target - base) * contrast + rng.normal(0, 0.04, 3), 0.0, 1.0)


def _paint(img: np.ndarray, cover: np.ndarray, colour) -> np.ndarray:
    """``img * (1 - cover) + colour * cover``, computed only inside the cover's bounding box."""
    return shapes.composite(img, [(cover, colour)])


def hair(img, rng, scale=1.0):
    """A lock of hair: 6-30 near-parallel strands following one smooth curve, in the lock's own colour."""
    h, w = img.shape[:2]
    base = shapes.walk(rng.uniform(0, [w, h]), rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 1.0) * max(h, w), rng,
                       step=2.0, turn=0.05, drift=rng.normal(0, 0.01))
    colour = _local_colour(img, base, rng, rng.uniform(0.2, 0.6))
    cov = shapes.Coverage(h, w)
    d = np.gradient(base, axis=0)
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1) / (np.hypot(d[:, 0], d[:, 1])[:, None] + 1e-6)
    for _ in range(int(rng.integers(6, 31))):
        off = rng.normal(0, 6 * scale) + shapes.smooth_noise(len(base), rng, 30, -2, 2) * scale  # (N,)
        cov.stroke(base + normal * off[:, None], rng.uniform(0.4, 1.3) * scale,
                   shapes.smooth_noise(len(base), rng, 20, 0.3, 1.0))
    return _paint(img, cov.read(), colour)


def whiskers(img, rng, scale=1.0):
    """Whiskers: 3-10 bright, tapered, gently curved hairs fanning out from one point."""
    h, w = img.shape[:2]
    origin = rng.uniform(0.1, 0.9, 2) * [w, h]
    a0 = rng.uniform(0, 2 * np.pi)
    cov = shapes.Coverage(h, w)
    for _ in range(int(rng.integers(3, 11))):
        pts = shapes.walk(origin, a0 + rng.normal(0, 0.5), rng.uniform(20, 90) * scale, rng, step=2.0, turn=0.02,
                          drift=rng.normal(0, 0.02))
        n = len(pts)
        cov.stroke(pts, np.linspace(1.3, 0.3, n) * scale * rng.uniform(0.7, 1.2), np.linspace(1.0, 0.4, n))
    colour = np.clip(np.full(3, rng.uniform(0.75, 1.0)) + rng.normal(0, 0.03, 3), 0, 1)
    return _paint(img, cov.read(), colour)


def grass(img, rng, scale=1.0):
    """A tuft of grass: 10-60 tapered blades rising from a base line, in three shades of green, yellow or
    brown (later blades cover earlier ones within a shade)."""
    h, w = img.shape[:2]
    x0, y0 = rng.uniform(0, w), rng.uniform(0.3, 1.0) * h
    up = -np.pi / 2 + rng.normal(0, 0.2)
    hues = np.array([[0.35, 0.5, 0.2], [0.6, 0.6, 0.3], [0.45, 0.35, 0.2], [0.75, 0.75, 0.55]])
    shades = [shapes.Coverage(h, w) for _ in range(3)]
    colours = [np.clip(hues[int(rng.integers(4))] * rng.uniform(0.5, 1.3) + rng.normal(0, 0.04, 3), 0, 1)
               for _ in shades]
    for _ in range(int(rng.integers(10, 61))):
        start = (x0 + rng.normal(0, 25 * scale), y0 + rng.normal(0, 4 * scale))
        pts = shapes.walk(start, up + rng.normal(0, 0.35), rng.uniform(10, 60) * scale, rng, step=1.5, turn=0.03,
                          drift=rng.normal(0, 0.015))
        shades[int(rng.integers(3))].stroke(pts, np.linspace(1.8, 0.3, len(pts)) * scale, 1.0)
    for cov, colour in zip(shades, colours):
        img = _paint(img, cov.read(), colour)
    return img


def wires(img, rng, scale=1.0):
    """Rigging, telegraph and tram wires: 1-6 long thin dark lines, straight or sagging, several often
    converging on one point (a mast)."""
    h, w = img.shape[:2]
    cov = shapes.Coverage(h, w)
    mast = rng.uniform(0, 1, 2) * [w, h] if rng.random() < 0.5 else None
    for _ in range(int(rng.integers(3, 9)) if mast is not None else int(rng.integers(1, 4))):
        if mast is not None:
            far = rng.uniform(-0.2, 1.2, 2) * [w, h]
            t = np.linspace(0, 1, 200)[:, None]
            sag = rng.uniform(0, 0.05) * np.hypot(*(far - mast)) * 4 * t * (1 - t) * np.array([0, 1])
            pts = mast + (far - mast) * t + sag
        else:
            pts = shapes.arc(h, w, rng, bend=rng.uniform(0, 0.06))
        cov.stroke(pts, rng.uniform(0.5, 1.6) * scale, rng.uniform(0.6, 1.0))
    # Single wires are darker than the sky they cross: a lone long bright line of varying width is a
    # scratch's signature, and a bright lone "wire" would teach the detector to miss scratches. Sunlit
    # rigging (bright) comes in groups converging on a mast, at constant width and opacity.
    colour = np.clip(np.full(3, rng.uniform(0.02, 0.3)) + rng.normal(0, 0.02, 3), 0, 1)
    if mast is not None and rng.random() < 0.4:
        colour = np.clip(np.full(3, rng.uniform(0.7, 0.95)) + rng.normal(0, 0.03, 3), 0, 1)
    return _paint(img, cov.read(), colour)


def text(img, rng, scale=1.0):
    """Lettering (signs, captions, plate numbers): a few words in a Hershey font, 7-40 px high, dark on
    light or light on dark, sometimes on a sign board."""
    import cv2

    h, w = img.shape[:2]
    fonts = [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX,
             cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_ITALIC | cv2.FONT_HERSHEY_COMPLEX]
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 abcdefghijklmnopqrstuvwxyz"
    words = "".join(rng.choice(list(letters), int(rng.integers(3, 14))))
    font = fonts[int(rng.integers(len(fonts)))]
    size = rng.uniform(7, 40) * scale / 22.0
    thick = max(1, int(round(size * rng.uniform(1.0, 2.5))))
    (tw, th), _ = cv2.getTextSize(words, font, size, thick)
    x, y = rng.uniform(-0.1 * tw, max(1, w - 0.9 * tw)), rng.uniform(th, max(th + 1, h))
    ss = shapes.SUPERSAMPLE
    canvas = np.zeros((h * ss, w * ss), np.uint8)
    cv2.putText(canvas, words, (int(x * ss), int(y * ss)), font, size * ss, 255, thick * ss, cv2.LINE_AA)
    cov = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    if rng.random() < 0.4:  # a sign board behind the letters
        board = shapes.Coverage(h, w).polygon(np.array([[x - 4, y - th - 4], [x + tw + 4, y - th - 4],
                                                        [x + tw + 4, y + 6], [x - 4, y + 6]]), 1.0).read()
        img = _paint(img, board, np.clip(rng.uniform(0, 1, 3) * 0.6 + 0.3, 0, 1))
    ink = np.full(3, rng.uniform(0.0, 0.2)) if rng.random() < 0.6 else np.full(3, rng.uniform(0.8, 1.0))
    return _paint(img, cov, np.clip(ink + rng.normal(0, 0.05, 3), 0, 1))


def edges(img, rng, scale=1.0):
    """Picture edges: a print's border (straight, rounded or a circular vignette, black or white), round
    objects with a thin lit or shaded rim (coins, wheels, buttons), or sharp-edged objects (window frames,
    posts, roof lines)."""
    h, w = img.shape[:2]
    r = rng.random()
    if r < 0.35:  # a border: everything outside a rectangle or a circle
        inner = shapes.Coverage(h, w)
        if rng.random() < 0.4:
            c = rng.uniform(0.4, 0.6, 2) * [w, h]
            inner.disc(c, rng.uniform(0.45, 0.75) * max(h, w))
        else:
            m = rng.uniform(0.02, 0.2, 4) * [w, h, w, h]
            inner.polygon(np.array([[m[0], m[1]], [w - m[2], m[1]], [w - m[2], h - m[3]], [m[0], h - m[3]]]))
        colour = np.full(3, rng.uniform(0.0, 0.12)) if rng.random() < 0.6 else np.full(3, rng.uniform(0.85, 1.0))
        return _paint(img, 1.0 - inner.read(), colour)
    if r < 0.7:  # round things with a rim: coins, plates, wheels, buttons, eyes, flowers
        for _ in range(int(rng.integers(1, 7))):
            c = rng.uniform(0, 1, 2) * [w, h]
            rad = rng.uniform(4, 40) * scale
            outline = shapes.blob(c, rad, rng, rng.uniform(0.0, 0.15))
            # the body keeps the picture's texture, re-lit and tinted, with a shading ramp: an object, not a
            # flat hole (a flat fill is what a loss looks like)
            y, x = np.mgrid[0:h, 0:w].astype(np.float32)
            a = rng.uniform(0, 2 * np.pi)
            ramp = ((x - c[0]) * np.cos(a) + (y - c[1]) * np.sin(a)) / (2 * rad)
            gain = rng.uniform(0.5, 1.6) * (1 + rng.uniform(0, 0.6) * ramp)[..., None]
            # nearly neutral: a brown-tinted, soft-edged patch is foxing (damage)
            body = np.clip(img * gain * rng.uniform(0.95, 1.05, 3) + rng.uniform(-0.15, 0.15), 0, 1)
            img = _paint(img, shapes.Coverage(h, w).polygon(outline).read(), body)
            if rng.random() < 0.7:  # a lit or shaded rim, as thin as a scratch
                rim_colour = np.full(3, rng.uniform(0.8, 1.0)) if rng.random() < 0.6 else np.full(3, rng.uniform(0, 0.2))
                rim = shapes.Coverage(h, w).stroke(np.vstack([outline, outline[:1]]), rng.uniform(0.6, 2.0) * scale,
                                                   shapes.smooth_noise(len(outline) + 1, rng, 8, 0.3, 1.0))
                img = _paint(img, rim.read(), rim_colour)
        return img
    cov = shapes.Coverage(h, w)
    for _ in range(int(rng.integers(1, 5))):  # frames and posts: thin filled rectangles, any angle
        c = rng.uniform(0, 1, 2) * [w, h]
        # at least 2.5 px wide and never across the whole picture: a thin even line end to end is a scratch
        length, width = rng.uniform(20, 150) * scale, rng.uniform(2.5, 8.0) * scale
        a = rng.uniform(0, np.pi) if rng.random() < 0.3 else rng.choice([0, np.pi / 2]) + rng.normal(0, 0.03)
        d, n = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
        cov.polygon(np.array([c - d * length / 2 - n * width / 2, c + d * length / 2 - n * width / 2,
                              c + d * length / 2 + n * width / 2, c - d * length / 2 + n * width / 2]))
    pts = shapes.arc(h, w, rng, bend=0)
    return _paint(img, cov.read(), _local_colour(img, pts, rng, rng.uniform(0.3, 0.8)))


def border(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The edge of the print or plate crossing the picture: everything beyond a smooth circle of radius
    0.5-6x the canvas (a round autochrome plate, a rounded mount) or a straight line, black, white, cream or
    grey. A missing corner has a torn, jagged edge; a border's is smooth (and may be large and dark too)."""
    h, w = img.shape[:2]
    side = max(h, w)
    p = rng.uniform(0.1, 0.9, 2) * [w, h]  # a point on the edge
    a = rng.uniform(0, 2 * np.pi)  # towards the picture's centre
    radius = rng.uniform(0.5, 6.0) * side if rng.random() < 0.6 else 1e4 * side
    centre = p + radius * np.array([np.cos(a), np.sin(a)])
    inside = shapes.Coverage(h, w, ss=2)
    if radius < 100 * side:
        inside.disc(centre, radius)
    else:  # a straight edge: the half-plane towards the centre
        d = np.array([np.cos(a), np.sin(a)])
        n = np.array([-d[1], d[0]]) * 4 * side
        inside.polygon(np.array([p + n, p + n + d * 4 * side, p - n + d * 4 * side, p - n]))
    colour = np.array(rng.choice([[0.03, 0.03, 0.03], [0.08, 0.07, 0.06], [0.95, 0.94, 0.9], [0.85, 0.8, 0.68],
                                  [0.45, 0.45, 0.45]]))
    return _paint(img, 1.0 - inside.read(), np.clip(colour + rng.normal(0, 0.02, 3), 0, 1))


def sky(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A large smooth area of the picture (clear sky, a wall, still water, a studio backdrop): everything
    on one side of a soft natural edge replaced by a gentle gradient of one colour, dark or light; it is
    the picture, however flat (a flat region is not a loss by itself)."""
    h, w = img.shape[:2]
    side = max(h, w)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    d = (x - rng.uniform(0, w)) * np.cos(a) + (y - rng.uniform(0, h)) * np.sin(a)  # signed distance, px
    wobble = _blur(rng.standard_normal((h, w), dtype=np.float32), side / 8) * side * rng.uniform(0, 0.5)
    region = np.clip(0.5 + (d + wobble) / rng.uniform(1.0, 4.0), 0, 1)  # a soft edge of 1-4 px
    colour = np.array(rng.uniform(0, 1, 3)) * rng.uniform(0.1, 1.0)
    ramp = 1 + rng.uniform(-0.3, 0.3) * (x * np.cos(a + 1) + y * np.sin(a + 1)) / side
    flat = np.clip(colour * ramp[..., None], 0, 1).astype(np.float32)
    return (img * (1 - region[..., None]) + flat * region[..., None]).astype(np.float32)


SCENE_DRAW = {"hair": hair, "whiskers": whiskers, "grass": grass, "wires": wires, "text": text, "edges": edges}
SCREEN_DRAW = {"grain": film_grain, "autochrome": autochrome, "halftone": halftone, "paper": paper_texture}


def add_scene_lines(img: np.ndarray, rng: np.random.Generator, count: int, scale: float = 1.0,
                    kinds=SCENE) -> np.ndarray:
    """``count`` scene-line items of random ``kinds`` drawn into the picture (before its blur)."""
    for _ in range(count):
        kind = kinds[int(rng.integers(len(kinds)))]
        img = SCENE_DRAW[kind](img, rng, scale)
    return np.clip(img, 0.0, 1.0).astype(np.float32)
