"""Where the model works: working-canvas size, resizing in and out, windows around the mask, and
pasting a result back so that every pixel outside the mask is the input's, bit for bit."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .masks import feather, resize_nearest


def work_size(h: int, w: int, size: int, multiple: int = 8) -> tuple[int, int]:
    """Working canvas ``(H', W')``: long side scaled to ``size``, each side rounded to a multiple of
    ``multiple`` (at least one multiple). The aspect ratio is kept as closely as rounding allows."""
    if size < multiple:
        raise ValueError(f"size {size} is smaller than the model's multiple {multiple}")
    scale = size / max(h, w)

    def snap(x: float) -> int:
        return max(multiple, int(round(x * scale / multiple)) * multiple)

    return snap(h), snap(w)


def resize_image(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize an RGB uint8 image to ``(H, W)`` with Lanczos (high quality both up and down)."""
    h, w = size_hw
    if image.shape[:2] == (h, w):
        return image
    return np.array(Image.fromarray(image, "RGB").resize((w, h), Image.LANCZOS))  # writable copy


def to_work(image: np.ndarray, mask: np.ndarray, size: int, multiple: int = 8):
    """Scale image and mask to the working canvas. Returns ``(work_image, work_mask)``.

    Paste-back later uses the full-resolution mask, so the working mask only has to cover it."""
    hw = work_size(*mask.shape, size=size, multiple=multiple)
    work_mask = resize_nearest(mask, hw)
    if mask.any() and not work_mask.any():
        # A mask thinner than one working pixel would vanish: keep at least its area's pixels.
        work_mask = shrink_mask_any(mask, hw)
    return resize_image(image, hw), work_mask


def shrink_mask_any(mask: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Downscale a bool mask so that a working pixel is True if any source pixel under it is."""
    h, w = size_hw
    im = Image.fromarray(mask.astype(np.uint8) * 255, "L").resize((w, h), Image.BOX)
    return np.asarray(im) > 0


def paste_back(original: np.ndarray, result: np.ndarray, mask: np.ndarray, blur: int = 0) -> np.ndarray:
    """Combine a model result with the original. ``result`` may be at any size: it is resized to the
    original's. Outside the mask (and its ``blur`` band) the original's pixels are returned unchanged."""
    result = resize_image(result, original.shape[:2])
    alpha = feather(mask, blur)[..., None]
    if blur <= 0:
        return np.where(mask[..., None], result, original)
    out = alpha * result.astype(np.float32) + (1.0 - alpha) * original.astype(np.float32)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return np.where(alpha > 0, out, original)


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box ``(top, left, bottom, right)`` (exclusive ends) of the True pixels, or None."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1
