"""The data of ``train-ddpm``: random training windows of a folder of images, each with a random mask.

Every window and mask is drawn from the numpy generator it is given (the trainer seeds one per draw), so a
draw is a pure function of ``(seed, draw)``: a resumed run sees what an uninterrupted one would.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from ...errors import InpaintKitError
from ...images import load_image
from ...maskgen import draw
from ...pairing import scan
from ..augment import scanned


class WindowSampler:
    """Random training windows ``(B, 3, S, S)`` in [-1, 1] and masks ``(B, 1, S, S)`` from a folder."""

    def __init__(self, folder: str, size: int, mask_kinds, min_scale: float, max_scale: float,
                 colour_weight: float = 1.0, permute_channels: float = 0.0, augment: float = 0.0):
        paths = scan(folder)
        if not paths:
            raise InpaintKitError(f"{folder}: no images found (looked for png/jpg/webp/bmp/tif, recursively)")
        self.images = [Image.fromarray(load_image(p)) for p in paths]
        self.names = [str(p.relative_to(folder)) for p in paths]
        self.size, self.kinds = size, tuple(mask_kinds)
        self.min_scale, self.max_scale = min_scale, max_scale
        colour = [float(np.ptp(np.asarray(im.reduce(4), np.int16), axis=2).mean() > 2) for im in self.images]
        w = np.array([colour_weight if c else 1.0 for c in colour])
        self.p = w / w.sum()
        self.permute, self.augment = permute_channels, augment

    def window(self, rng: np.random.Generator) -> np.ndarray:
        """One RGB uint8 window: a crop of side ``size/scale`` resized to ``size``, maybe channel-shuffled,
        maybe made to look scanned (``augment``: :func:`..augment.scanned`), maybe mirrored."""
        im = self.images[int(rng.choice(len(self.images), p=self.p))]
        w, h = im.size
        # log-uniform scale, but never a crop larger than the image
        scale = math.exp(rng.uniform(math.log(self.min_scale), math.log(self.max_scale)))
        side = min(self.size / scale, w, h)
        x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
        crop = im.resize((self.size, self.size), Image.BICUBIC, box=(x0, y0, x0 + side, y0 + side))
        arr = np.asarray(crop)
        if self.permute and rng.random() < self.permute:
            arr = arr[..., rng.permutation(3)]
        if self.augment:  # only then: a run without it draws the same windows as before the flag existed
            arr = scanned(arr, rng, self.augment)
        return arr[:, ::-1] if rng.random() < 0.5 else arr

    def mask(self, rng: np.random.Generator) -> np.ndarray:
        """A window cut from a mask drawn on a larger canvas, so that mask scales match inference windows
        (the ``window`` generator of :mod:`inpaint_kit.maskgen`)."""
        return draw("window", self.size, self.size, rng, kinds=self.kinds)

    def sample(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One training pair: a window ``(3, S, S)`` in [-1, 1] and its mask ``(1, S, S)`` (1 = hole)."""
        x = torch.from_numpy(self.window(rng).astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1).contiguous()
        return x, torch.from_numpy(self.mask(rng).astype(np.float32))[None]

    def batch(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` windows ``(n, 3, S, S)`` and masks ``(n, 1, S, S)`` from one generator (the preview rows)."""
        x = np.stack([self.window(rng) for _ in range(n)]).astype(np.float32) / 127.5 - 1.0
        m = np.stack([self.mask(rng) for _ in range(n)]).astype(np.float32)
        return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(m)[:, None]
