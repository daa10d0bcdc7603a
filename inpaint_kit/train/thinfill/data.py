"""Training windows for the thin filler: a crop of a photo (random scale and flip, sometimes made to look
scanned: grey or sepia, grain, JPEG artefacts), a thin mask, and the classical fill of that mask.

Every draw comes from one numpy generator, so a sample depends only on its seed."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ...classical import cv2_inpaint
from ...errors import InpaintKitError
from ...geometry import split_by_width
from ...images import load_image
from ...maskgen import draw
from ...pairing import scan
from ..augment import scanned

MASK_CANVASES = (1, 2, 3)  # masks are drawn on canvases this many windows wide and a window cut out


class ThinSampler:
    """``sample(rng) -> (clean (S, S, 3) uint8, fill (S, S, 3) uint8, mask (S, S) bool)``."""

    def __init__(self, folder: str, size: int, kinds, max_width: float, min_scale: float, max_scale: float,
                 augment: float, base: str = "ns", radius: int = 3):
        paths = scan(folder)
        if not paths:
            raise InpaintKitError(f"{folder}: no images found (looked for png/jpg/webp/bmp/tif, recursively)")
        self.images = [Image.fromarray(load_image(p)) for p in paths]
        self.names = [str(p.relative_to(folder)) for p in paths]
        self.size, self.kinds, self.max_width = size, tuple(kinds), max_width
        self.min_scale, self.max_scale, self.augment = min_scale, max_scale, augment
        self.base, self.radius = base, radius

    def window(self, rng: np.random.Generator) -> np.ndarray:
        """A crop of side ``size / scale`` resized to ``size`` (log-uniform scale), maybe mirrored."""
        im = self.images[int(rng.integers(len(self.images)))]
        w, h = im.size
        scale = math.exp(rng.uniform(math.log(self.min_scale), math.log(self.max_scale)))
        side = min(self.size / scale, w, h)
        x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
        arr = np.asarray(im.resize((self.size, self.size), Image.BICUBIC, box=(x0, y0, x0 + side, y0 + side)))
        return np.ascontiguousarray(arr[:, ::-1] if rng.random() < 0.5 else arr)

    def mask(self, rng: np.random.Generator) -> np.ndarray:
        """A thin mask: drawn on a larger canvas, a window cut out, components wider than ``max_width``
        dropped; never empty."""
        s = self.size
        for _ in range(20):
            kind = self.kinds[int(rng.integers(len(self.kinds)))]
            canvas = s * MASK_CANVASES[int(rng.integers(len(MASK_CANVASES)))]
            m = draw(kind, canvas, canvas, rng)
            top, left = (int(v) for v in rng.integers(0, canvas - s + 1, size=2))
            thin, _ = split_by_width(m[top : top + s, left : left + s], self.max_width)
            if thin.any():
                return thin
        m = np.zeros((s, s), bool)
        m[s // 2, s // 4 : 3 * s // 4] = True
        return m

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        clean = scanned(self.window(rng), rng, self.augment)
        mask = self.mask(rng)
        return clean, cv2_inpaint(clean, mask, self.base, self.radius), mask
