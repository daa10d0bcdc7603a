"""Conversions between the package's numpy conventions and the DDPM's tensors, and the seed's file API.

numpy: image RGB uint8 (H, W, 3), mask bool (H, W) True = repaint.
torch: image float (1, 3, H, W) in [-1, 1], mask float (1, 1, H, W) in [0, 1] with 1 = repaint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..images import load_image as _load_rgb
from ..images import save_png
from ..masks import read_mask


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> float (1, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 127.5 - 1.0


def tensor_to_image(x: torch.Tensor) -> np.ndarray:
    """float (3, H, W) or (1, 3, H, W) in [-1, 1] -> RGB uint8 (H, W, 3) (clipped, rounded)."""
    if x.dim() == 4:
        x = x[0]
    arr = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return np.ascontiguousarray(arr.permute(1, 2, 0).numpy())


def tensor_to_float(x: torch.Tensor) -> np.ndarray:
    """float (3, H, W) or (1, 3, H, W) in [-1, 1] -> RGB float32 (H, W, 3) in [0, 1] (clipped, not rounded:
    the engine's fill at full precision; :func:`tensor_to_image` quantised once gives the same 8 bits)."""
    if x.dim() == 4:
        x = x[0]
    arr = (x.detach().float().cpu().clamp(-1, 1) + 1) / 2  # exact halving: * 255 rounds as * 127.5 did
    return np.ascontiguousarray(arr.permute(1, 2, 0).numpy())


def soften_mask(mask: np.ndarray, sigma: float = 0.0) -> np.ndarray:
    """float32 (H, W) in [0, 1]: 1 on the mask, and with ``sigma > 0`` a Gaussian fall-off just outside it
    (the hole itself stays fully repainted; only the blend into the known pixels is softened)."""
    m = mask.astype(np.float32)
    if sigma <= 0 or not mask.any():
        return m
    import cv2

    blurred = cv2.GaussianBlur(m, (0, 0), sigmaX=float(sigma), borderType=cv2.BORDER_REFLECT)
    return np.maximum(m, np.clip(blurred * 2.0, 0.0, 1.0))  # x2: the blur is 0.5 right at the edge


def load_image(path: str | Path) -> torch.Tensor:
    """Read an image file as a float tensor (1, 3, H, W) in [-1, 1]."""
    return image_to_tensor(_load_rgb(path))


def load_mask(path: str | Path, mask_mode: str = "black", soften: float = 0.0) -> torch.Tensor:
    """Read a mask file as float (1, 1, H, W), 1 = repaint (``mask_mode`` as in the CLI), optionally
    softened at the edge with a Gaussian of ``soften`` pixels (``--mask_soften``)."""
    m = soften_mask(read_mask(path, mask_mode), soften)
    return torch.from_numpy(m)[None, None]


def save_tensor_as_image(x: torch.Tensor, path: str | Path, metadata: dict | None = None) -> Path:
    """Write a (1, 3, H, W) / (3, H, W) tensor in [-1, 1] as a PNG (atomically)."""
    return save_png(path, tensor_to_image(x), metadata)
