"""The typed request of a detection run (``inpaint-kit detect``, and what ``infer --mask auto`` needs):
built the same way by the CLI and the Python API; ``validate()`` raises one-line errors, never rewrites."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError
from ..images import MAX_IMAGE_MEGAPIXELS
from ..masks import MASK_MODES
from .detector import CONTEXT, OVERLAP, TILE


@dataclass
class DetectConfig:
    """Every setting of a detection run."""

    model: str = "builtin"  # builtin | classical | a train-detect output folder
    threshold: float | None = None  # None = the model's own (chosen on its validation split)
    min_area: int = 0  # drop detected components smaller than this many pixels
    dilate: int = 0  # grow the written mask by N pixels
    mask_mode: str = "black"  # written masks: black = damage (repair), as infer reads them by default
    save_prob: str | None = None  # "" = beside the mask, else a folder (tree mirrored)
    preview: str | None = None  # "" = beside the mask, else a folder (tree mirrored)
    tile: int = TILE
    overlap: int = OVERLAP
    device: str | None = None
    dtype: str = "auto"  # the network's arithmetic (detector.DTYPES): auto = bf16 where native, else fp32
    overwrite: bool = False
    max_image_megapixels: float = MAX_IMAGE_MEGAPIXELS

    def validate(self) -> "DetectConfig":
        """Check every value (and that --model is a detector) before anything loads; one-line errors."""
        checks = [
            (self.threshold is None or 0 < self.threshold < 1,
             f"--threshold {self.threshold}: must be between 0 and 1 (exclusive)"),
            (self.min_area >= 0, f"--min_area {self.min_area}: must be >= 0 (pixels)"),
            (self.dilate >= 0, f"--dilate {self.dilate}: must be >= 0 (pixels)"),
            (self.mask_mode in MASK_MODES, f"--mask_mode {self.mask_mode!r}: one of {', '.join(MASK_MODES)}"),
            (self.tile >= 64 and 0 <= self.overlap < self.tile // 2,
             f"--tile {self.tile} / --tile_overlap {self.overlap}: need a tile >= 64 and 0 <= overlap < tile / 2"),
            (self.max_image_megapixels > 0, "--max_image_megapixels must be positive"),
            (not (self.model == "classical" and self.device not in (None, "cpu")),
             f"--device {self.device}: the classical detector runs on the CPU; leave --device out"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        from .detector import check_dtype, check_model

        check_dtype(self.model, self.dtype)
        check_model(self.model)
        return self

    def load(self):
        """The :class:`~inpaint_kit.detect.detector.Detector` of this config (load it once, reuse it)."""
        from .detector import load_detector

        return load_detector(self.model, self.device, self.threshold, self.tile, self.overlap, CONTEXT,
                             self.dtype)
