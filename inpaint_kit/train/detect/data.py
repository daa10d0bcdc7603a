"""The detector's training data: random crops of clean photographs with synthetic damage
(:func:`inpaint_kit.detect.damage.render`), optionally mixed with labelled pairs (imgs/ + masks/), and a
fixed validation split of photographs kept out of training.

Every sample is a pure function of the generator it is given (the trainer seeds one per draw), so runs
resume exactly and N processes train like one.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ...detect.damage import DamageSettings, Sample, render
from ...errors import InpaintKitError
from ...images import load_image
from ...pairing import scan

VAL_EVERY = 8  # default validation split: every 8th photo in sorted order


def split(folder: str, val_images: str = "") -> tuple[list[Path], list[Path]]:
    """``(training photos, validation photos)`` under ``folder``: the named ``val_images`` (file names,
    comma-separated) or every :data:`VAL_EVERY`-th photo, at least one of each."""
    paths = scan(folder)
    if len(paths) < 2:
        raise InpaintKitError(f"--data {folder}: found {len(paths)} image(s); need at least 2 (one is kept for "
                              "validation)")
    names = [n.strip() for n in val_images.split(",") if n.strip()]
    if names:
        val = [p for p in paths if p.name in names or str(p.relative_to(folder)) in names]
        missing = sorted(set(names) - {p.name for p in val} - {str(p.relative_to(folder)) for p in val})
        if missing:
            raise InpaintKitError(f"--val_images: {', '.join(missing)} not found under {folder}")
    else:
        val = paths[VAL_EVERY // 2 :: VAL_EVERY] or paths[-1:]
    train = [p for p in paths if p not in val]
    if not train:
        raise InpaintKitError(f"--val_images takes every photo of {folder}; leave some for training")
    return train, val


class Photos:
    """Photographs held in memory and random square crops of them at a random scale."""

    def __init__(self, paths: list[Path]):
        self.paths = list(paths)
        self.images = [load_image(p) for p in self.paths]

    def crop(self, rng: np.random.Generator, side: int, scale: tuple[float, float]) -> np.ndarray:
        """A ``side x side`` RGB uint8 crop of a random photo: a square of ``side / s`` source px (``s``
        log-uniform in ``scale``, never more than the photo), resized to ``side``, randomly rotated by a
        multiple of 90 degrees and mirrored."""
        import cv2

        img = self.images[int(rng.integers(len(self.images)))]
        h, w = img.shape[:2]
        s = math.exp(rng.uniform(math.log(scale[0]), math.log(scale[1])))
        src = int(min(h, w, max(8, round(side / s))))
        y, x = int(rng.integers(0, h - src + 1)), int(rng.integers(0, w - src + 1))
        crop = img[y : y + src, x : x + src]
        if src != side:
            crop = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA if src > side else cv2.INTER_CUBIC)
        crop = np.rot90(crop, int(rng.integers(4)))
        return np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop)


class Pairs:
    """Labelled real damage: images under ``imgs/`` with masks under ``masks/`` (paired by stem)."""

    def __init__(self, folder: str, mask_mode: str):
        from ...detect.labelled import load_pairs

        self.items = load_pairs(folder, mask_mode)

    def sample(self, rng: np.random.Generator, side: int) -> Sample:
        """A ``side x side`` crop at native scale (padded by mirroring when the image is smaller), mirrored
        at random: the mask stays exact."""
        img, mask = self.items[int(rng.integers(len(self.items)))]
        h, w = mask.shape
        if h < side or w < side:
            py, px = max(0, side - h), max(0, side - w)
            img = np.pad(img, ((0, py), (0, px), (0, 0)), mode="reflect")
            mask = np.pad(mask, ((0, py), (0, px)), mode="reflect")
            h, w = mask.shape
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        im, m = img[y : y + side, x : x + side], mask[y : y + side, x : x + side]
        if rng.random() < 0.5:
            im, m = im[:, ::-1], m[:, ::-1]
        return Sample(np.ascontiguousarray(im), np.ascontiguousarray(im), np.ascontiguousarray(m), ("labelled",))


class DamageData:
    """Training samples: synthetic damage on crops of the training photos (``settings.training()``: the
    held-out setting never appears), or, with probability ``pairs_fraction``, a labelled pair."""

    def __init__(self, photos: Photos, size: int, settings: DamageSettings, photo_scale=(0.5, 1.5),
                 pairs: Pairs | None = None, pairs_fraction: float = 0.0):
        self.photos, self.size, self.settings = photos, size, settings.training()
        self.photo_scale = tuple(photo_scale)
        self.pairs, self.pairs_fraction = pairs, pairs_fraction if pairs is not None else 0.0

    def sample(self, rng: np.random.Generator) -> Sample:
        """One sample of ``size x size``. A third of them are drawn on a larger canvas and resampled down
        (damage and picture resampled together, as when a scan is resized)."""
        if self.pairs is not None and rng.random() < self.pairs_fraction:
            return self.pairs.sample(rng, self.size)
        canvas = self.size
        if rng.random() < 1 / 3:
            canvas = int(round(self.size * rng.uniform(1.1, 1.8)))
        crop = self.photos.crop(rng, canvas, self.photo_scale)
        return render(crop, rng, self.settings, out_size=(self.size, self.size))


def to_tensors(samples: list[Sample]):
    """``(x (B, 3, S, S) float32 in [-1, 1], y (B, 1, S, S) in {0, 1}, weight (B, 1, S, S) in {0, 1})`` of a
    list of samples; the weight is 0 on damage hidden by the picture's texture (``Sample.ignore``)."""
    import torch

    x = np.stack([s.image for s in samples]).astype(np.float32) / 127.5 - 1.0
    y = np.stack([s.mask for s in samples]).astype(np.float32)
    w = np.stack([np.ones(s.mask.shape, bool) if s.ignore is None else ~s.ignore for s in samples]).astype(np.float32)
    return (torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y)[:, None],
            torch.from_numpy(w)[:, None])


def validation_set(photos: Photos, size: int, settings: DamageSettings, n: int, seed: int,
                   photo_scale=(0.5, 1.5)) -> tuple[list[Sample], list[Sample]]:
    """A fixed validation split from the validation photos: ``n`` damaged samples (the training settings)
    and ``n // 2`` clean ones (hard negatives and grain only) for the false-positive limit."""
    data = DamageData(photos, size, settings, photo_scale)
    rng = np.random.default_rng(seed)
    damaged = [render(photos.crop(rng, size, photo_scale), rng, data.settings, damaged=True) for _ in range(n)]
    clean = [render(photos.crop(rng, size, photo_scale), rng, data.settings, damaged=False)
             for _ in range(max(1, n // 2))]
    return damaged, clean
