"""Writing what detection produces: the mask (8-bit grey PNG in the ``--mask_mode`` convention), the
probability map (16-bit grey PNG) and a preview overlay (8-bit RGB), each atomically and carrying the
run's parameters as JSON in the ``inpaint-kit`` text chunk (what resume compares)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from ..images import METADATA_KEY, atomic_write, save_png

OVERLAY_COLOUR = np.array([255, 32, 32], np.float32)


def _png(path, im: Image.Image, metadata: dict | None) -> Path:
    info = PngImagePlugin.PngInfo()
    if metadata:
        info.add_text(METADATA_KEY, json.dumps(metadata, sort_keys=True))
    return atomic_write(path, lambda tmp: im.save(tmp, format="PNG", pnginfo=info))


def save_mask(path, mask: np.ndarray, mask_mode: str = "black", metadata: dict | None = None) -> Path:
    """A bool mask (True = damage / repair) as an 8-bit grey PNG: repair black on white (``black``, what
    ``infer`` reads by default) or white on black (``white``)."""
    repair = 0 if mask_mode == "black" else 255
    grey = np.where(mask, repair, 255 - repair).astype(np.uint8)
    return _png(path, Image.fromarray(grey, "L"), metadata)


def save_probability(path, prob: np.ndarray, metadata: dict | None = None) -> Path:
    """A ``uint16`` probability map (x 65535) as a 16-bit grey PNG (white = damage)."""
    return _png(path, Image.fromarray(np.ascontiguousarray(prob, dtype=np.uint16)), metadata)


def overlay(image: np.ndarray, mask: np.ndarray, strength: float = 0.6) -> np.ndarray:
    """The image with detected damage tinted red (RGB uint8), to check a mask by eye."""
    out = image.astype(np.float32)
    m = mask[..., None].astype(np.float32) * strength
    return np.round(out * (1 - m) + OVERLAY_COLOUR * m).astype(np.uint8)


def save_preview(path, image: np.ndarray, mask: np.ndarray, metadata: dict | None = None) -> Path:
    """:func:`overlay` written as an 8-bit RGB PNG."""
    return save_png(path, overlay(image, mask), metadata)
