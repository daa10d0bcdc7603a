"""Training data of ``train-controlnet``: which images, and the mask each draw gets.

Layouts (see :mod:`inpaint_kit.train.controlnet.config`): COCO (``--data`` + ``--ann_file``), ``imgs/`` +
``masks/`` pairs (found and checked by :func:`inpaint_kit.train.samples.find_samples`), or any folder of
images. As for every trainer, each draw is a pure function of ``(seed, draw)`` (image, crop, flip and mask),
so a resumed run draws exactly the masks an uninterrupted one would. Generated masks: the ``coverage``
generator of :mod:`inpaint_kit.maskgen` (:func:`coverage_mask`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import InpaintKitError
from ...images import load_image
from ...maskgen import coverage_mask
from ...masks import read_mask
from ...pairing import scan
from .. import samples


@dataclass(frozen=True)
class Item:
    """One training image: its given mask file (pairs layout), caption and annotated objects (COCO)."""

    image: Path
    mask: Path | None = None
    mask_mode: str = "black"
    caption: str = ""
    objects: tuple = field(default=(), compare=False)  # COCO annotations of this image (dicts)


def object_mask(ann: dict, h: int, w: int) -> np.ndarray:
    """One COCO annotation as a bool ``(h, w)`` mask: polygons filled, uncompressed RLE decoded, otherwise
    (compressed RLE needs pycocotools) its bounding box."""
    import cv2

    seg = ann.get("segmentation")
    mask = np.zeros((h, w), np.uint8)
    if isinstance(seg, list) and seg:
        polys = [np.asarray(p, np.float64).reshape(-1, 2).round().astype(np.int32) for p in seg if len(p) >= 6]
        cv2.fillPoly(mask, polys, 1)
    elif isinstance(seg, dict) and isinstance(seg.get("counts"), list):
        flat, pos, val = np.zeros(h * w, np.uint8), 0, 0
        for run in seg["counts"]:
            flat[pos : pos + run] = val
            pos, val = pos + run, 1 - val
        mask = flat.reshape((w, h)).T  # COCO RLE runs go down columns
    else:
        x, y, bw, bh = (int(round(v)) for v in ann.get("bbox", (0, 0, 0, 0)))
        mask[max(0, y) : y + bh, max(0, x) : x + bw] = 1
    return mask.astype(bool)


def find_coco(image_dir: str | Path, ann_file: str | Path, prompt: str = "", size: int = 512) -> list[Item]:
    """The images of a COCO instances file that exist in ``image_dir``, each with its annotations."""
    image_dir, ann_file = Path(image_dir), Path(ann_file)
    if not image_dir.is_dir():
        raise InpaintKitError(f"--data {image_dir}: not a folder; pass COCO's image folder (e.g. train2017)")
    try:
        coco = json.loads(ann_file.read_text(encoding="utf-8"))
        images, anns = coco["images"], coco.get("annotations", [])
    except FileNotFoundError:
        raise InpaintKitError(f"--ann_file {ann_file}: no such file; pass a COCO instances JSON") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InpaintKitError(f"--ann_file {ann_file}: not a COCO instances JSON ({type(e).__name__}: {e}); "
                              "it needs an 'images' list") from None
    by_image: dict = {}
    for a in anns:
        if not a.get("iscrowd"):
            by_image.setdefault(a.get("image_id"), []).append(a)
    items = [Item(image_dir / im["file_name"], caption=prompt, objects=tuple(by_image.get(im["id"], ())))
             for im in images if (image_dir / im["file_name"]).is_file()]
    if not items:
        raise InpaintKitError(f"--ann_file {ann_file}: none of its {len(images)} images is in {image_dir}; check "
                              "that --data is the folder its file_name entries are in")
    for it in items:
        samples.check_size(it.image, size)
    return items


def find_items(cfg) -> list[Item]:
    """The training images of ``cfg`` (a ControlNetTrainConfig) in whichever layout it names, checked."""
    if cfg.ann_file:
        return find_coco(cfg.data, cfg.ann_file, cfg.prompt, cfg.size)
    root = Path(cfg.data)
    if (root / "imgs").is_dir():
        return [Item(s.image, s.mask, s.mask_mode, s.caption)
                for s in samples.find_samples(root, cfg.mask_source, cfg.mask_mode, cfg.prompt, cfg.size)]
    if not root.is_dir():
        raise InpaintKitError(f"--data {root}: not a folder; pass a folder of training images")
    images = scan(root)
    if not images:
        raise InpaintKitError(f"--data {root}: no images found (recursive); put training images there")
    for img in images:
        samples.check_size(img, cfg.size)
    return [Item(img, caption=samples.caption(img, cfg.prompt)) for img in images]


def load_item(item: Item, cfg, draw: int) -> dict:
    """One training example, deterministic in ``(cfg.seed, draw)``: ``pixels`` float32 ``(3, S, S)`` in
    [-1, 1], ``mask`` float32 ``(1, S, S)`` (1 = repaint), ``caption``."""
    size, (lo, hi) = cfg.size, cfg.mask_coverage
    rng = np.random.default_rng([cfg.seed, draw, 1])
    image = load_image(item.image)
    h, w = image.shape[:2]
    extra = []
    if item.mask is not None:
        extra.append(read_mask(item.mask, item.mask_mode, (h, w)))
    use_object = bool(item.objects) and cfg.object_masks > 0 and rng.random() < cfg.object_masks
    if use_object:
        extra.append(object_mask(item.objects[int(rng.integers(len(item.objects)))], h, w))
    image, extra = samples.resize_crop(image, extra, size, rng, bool(rng.integers(0, 2)))
    use_pairs = item.mask is not None and samples.uses_pairs(cfg.mask_source, draw)
    mask = None
    if use_pairs and extra[0].any():
        mask = extra[0]
    elif use_object and extra[-1].any():
        mask = extra[-1]
    if mask is None:  # generated (also when the crop missed the given hole or the object)
        mask = coverage_mask(size, size, rng, lo, hi)
    pixels = image.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
    return {"pixels": pixels, "mask": mask[None].astype(np.float32), "caption": item.caption}


def collate(examples: list[dict]):
    """Stack examples: pixels ``(B, 3, S, S)``, mask ``(B, 1, S, S)``, captions list."""
    import torch

    return {"pixels": torch.from_numpy(np.stack([e["pixels"] for e in examples])),
            "mask": torch.from_numpy(np.stack([e["mask"] for e in examples])),
            "captions": [e["caption"] for e in examples]}
