"""Scan-like changes of a training window, shared by the trainers that learn to fill old prints
(``train-ddpm --augment``, ``train-thinfill --augment``): grey or sepia tones, film grain, JPEG artefacts.

The target of a fill is the changed window itself, so a model trained with them learns to continue a scan's
tone, grain and compression in the hole instead of painting a clean photo into a grainy print."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)


def scanned(window: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """The RGB uint8 window as a scan of an old print might show it: each change with probability ``p``:
    grey or sepia tones, film grain (Gaussian, sigma 2-8 levels), JPEG artefacts (quality 30-90).
    ``p = 0`` returns the window's values unchanged (and draws nothing from ``rng``)."""
    if p <= 0:
        return np.ascontiguousarray(window)
    out = window.astype(np.float32)
    if rng.random() < p:
        grey = out @ np.array([0.299, 0.587, 0.114], np.float32)
        out = np.repeat(grey[..., None], 3, axis=2) if rng.random() < 0.5 else out @ SEPIA.T
    if rng.random() < p:
        out = out + rng.normal(0, rng.uniform(2, 8), out.shape[:2])[..., None] * rng.uniform(0.7, 1.0, 3)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if rng.random() < p:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, "JPEG", quality=int(rng.integers(30, 91)))
        out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return out
