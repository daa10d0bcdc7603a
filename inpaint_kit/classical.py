"""OpenCV's classical inpainting (Telea's fast marching, Navier-Stokes): the baselines of ``eval`` and the
rough first fill that the DDPM engine can start from (``--init telea|ns``)."""

from __future__ import annotations

import numpy as np

CLASSICAL = ("telea", "ns")


def cv2_inpaint(image: np.ndarray, mask: np.ndarray, method: str, radius: int = 3) -> np.ndarray:
    """Fill ``mask`` (bool, True = repaint) of an RGB uint8 image with ``telea`` or ``ns``."""
    import cv2

    if method not in CLASSICAL:
        raise ValueError(f"classical method must be one of {', '.join(CLASSICAL)}, got {method!r}")
    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    bgr = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
    out = cv2.inpaint(bgr, mask.astype(np.uint8) * 255, radius, flag)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)
