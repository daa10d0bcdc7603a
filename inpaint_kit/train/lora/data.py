"""The data of ``train-lora``: one training example per draw, from an ``imgs/`` + ``masks/`` folder
(:mod:`inpaint_kit.train.samples`: the layout, the seeded crop) and the class images of prior preservation.

Mask sources (``--mask_source``):
* ``pairs``  - the given masks are the holes to fill (for clean images with masks of hole shapes);
* ``random`` - holes from the ``assorted`` generator of :mod:`inpaint_kit.maskgen`; a given mask marks
  *known damage*, whose pixels are not ground truth and get loss weight 0 (damage-aware loss);
* ``mixed``  - alternates the two, draw by draw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...images import load_image
from ...maskgen import draw as draw_mask
from ...masks import read_mask
from ...pairing import scan
from ..samples import Sample, resize_crop, uses_pairs


def find_class_samples(class_dir: str | Path, class_prompt: str) -> list[Sample]:
    """The prior-preservation class images (no masks: they always get random holes)."""
    return [Sample(p, None, "black", class_prompt) for p in scan(class_dir)]


def load_sample(sample: Sample, size: int, mask_source: str, draw: int, seed: int, damage_aware: bool = True) -> dict:
    """Build one training example, deterministic in ``(seed, draw)``.

    Returns ``pixels`` float32 ``(3, size, size)`` in [-1, 1], ``mask`` float32 ``(1, size, size)`` (1 =
    repaint), ``damage`` float32 ``(1, size, size)`` (1 = known damage, loss weight 0) and ``caption``."""
    rng = np.random.default_rng([seed, draw, 1])
    image = load_image(sample.image)
    given = read_mask(sample.mask, sample.mask_mode, image.shape[:2]) if sample.mask is not None else None
    use_pairs = given is not None and uses_pairs(mask_source, draw)
    flip = bool(rng.integers(0, 2))
    extra = [given] if given is not None else []
    image, extra = resize_crop(image, extra, size, rng, flip)
    if use_pairs:
        mask, damage = extra[0], np.zeros((size, size), bool)
        if not mask.any():  # this crop missed the hole: fall back to a random one
            mask = draw_mask("assorted", size, size, rng)
    else:
        mask = draw_mask("assorted", size, size, rng)
        damage = extra[0] if (extra and damage_aware) else np.zeros((size, size), bool)
    pixels = image.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
    return {"pixels": pixels, "mask": mask[None].astype(np.float32), "damage": damage[None].astype(np.float32),
            "caption": sample.caption}


def collate(items: list[dict]):
    """Stack examples into tensors: pixels ``(B, 3, S, S)``, mask and damage ``(B, 1, S, S)``, captions list."""
    import torch

    return {
        "pixels": torch.from_numpy(np.stack([i["pixels"] for i in items])),
        "mask": torch.from_numpy(np.stack([i["mask"] for i in items])),
        "damage": torch.from_numpy(np.stack([i["damage"] for i in items])),
        "captions": [i["caption"] for i in items],
    }
