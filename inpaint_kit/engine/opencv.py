"""OpenCV's classical inpainting as an engine: ``--model telea`` (Telea 2004, fast marching) and
``--model ns`` (Bertalmio et al. 2001, Navier-Stokes). Instant, no weights, deterministic: every row of a
collage is the same fill (the seed changes nothing), a row alone equals the same row batched. A fast
fallback for users, the thin-damage filler's building block, and the baseline every benchmark runs as a
whole command. Registered as the ``opencv`` engine (:mod:`.registry`); implements
:class:`~inpaint_kit.engine.base.Engine` (fills float32 in [0, 1], exactly ``v / 255`` of OpenCV's 8 bits)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..classical import cv2_inpaint
from ..errors import UsageError
from .base import Canvas, RowsMixin, Sampling, check_items, to_float

RADIUS = 3  # OpenCV's inpaintRadius (the eval baselines use the same)


class OpenCVEngine(RowsMixin):
    """``cv2.inpaint`` on each canvas (items sharing an image and mask share one call)."""

    multiple = 1

    def __init__(self, method: str, radius: int = RADIUS):
        self.method, self.radius = method, radius

    def describe(self) -> dict:
        return {"model": self.method, "engine": "opencv", "radius": self.radius, "device": "cpu"}

    def fill(self, items: Sequence[Canvas], sampling: Sampling = Sampling(), progress: bool = True) -> list[np.ndarray]:
        """Fill every item's mask with OpenCV (known pixels unchanged); float32 ``(h, w, 3)`` in [0, 1]."""
        check_items(items, self.multiple)
        done: dict[tuple[int, int], np.ndarray] = {}
        out = []
        for it in items:
            key = (id(it.image), id(it.mask))
            if key not in done:
                done[key] = cv2_inpaint(it.image, it.mask, self.method, self.radius) if it.mask.any() else it.image
            out.append(to_float(done[key]))
        return out


def load_opencv_engine(model: str, *, device: str | None = None, dtype: str = "auto", options=None) -> OpenCVEngine:
    """The engine for ``telea`` / ``ns`` (no options: the registry refuses other engines' flags first). A
    dtype other than auto/fp32 does not apply: a one-line :class:`UsageError`."""
    if dtype not in ("auto", "fp32"):
        raise UsageError(f"--dtype {dtype} does not apply to --model {model} (OpenCV works in 8-bit); leave it out")
    return OpenCVEngine(str(model))
