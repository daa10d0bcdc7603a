"""The config of ``inpaint-kit train-controlnet`` (no torch: the CLI builds its flags from these fields).

Three data layouts, told apart by what ``--data`` holds (:mod:`inpaint_kit.train.controlnet.data`):

* a COCO layout: ``--data train2017 --ann_file annotations/instances_train2017.json`` (``--image_dir`` is
  an old spelling of ``--data``); masks are generated, and with ``--object_masks P`` a fraction P of them
  are the outline of one of the image's annotated objects (polygon, RLE or box);
* ``imgs/`` + ``masks/`` (or ``masks_inverted/``) paired by stem, as in ``train-lora`` (``--mask_source``);
* any other folder of images (recursive): every mask is generated.

Generated masks are the ``coverage`` generator of :mod:`inpaint_kit.maskgen`: rectangles and strokes
(irregular, thick, thin) added until they cover ``--mask_coverage LO`` of the crop, redrawn when the union
overshoots ``HI`` (default 10-30 %).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import InpaintKitError
from ..config import CHECKPOINTS, DATA, MASK_MODES, MASK_SOURCES, TRAINS, TrainerConfig, option, redefault

DEFAULT_BASE = "stable-diffusion-v1-5/stable-diffusion-v1-5"


@dataclass
class ControlNetTrainConfig(TrainerConfig):
    """A ControlNet inpainting run over a frozen SD 1.5-family model (``inpaint-kit train-controlnet``)."""

    data: str = redefault(TrainerConfig, "data", "", aliases=("--data_root", "--image_dir"),
                          help="training images: a folder of images (masks generated), a folder with imgs/ + masks/ "
                               "(pairs as in train-lora), or COCO's image folder (e.g. train2017) with --ann_file")
    output_dir: str = redefault(TrainerConfig, "output_dir", "weights/controlnet")
    lr: float = redefault(TrainerConfig, "lr", 1e-5)
    accum: int = redefault(TrainerConfig, "accum", 1, aliases=("--grad_accum",))  # --grad_accum: an old spelling
    model: str = option(DEFAULT_BASE, group=DATA,
                        help="frozen base SD 1.5-family model with a 4-channel UNet: hub id, diffusers folder or file")
    ann_file: str | None = option(None, group=DATA, type=str, resume="change",
                                  help="COCO instances JSON: train on its images in --data")
    object_masks: float = option(0.0, group=DATA,
                                 help="COCO: fraction of masks that are an annotated object's outline (0-1)")
    mask_coverage: list[float] = option(group=DATA, nargs=2, type=float, metavar=("LO", "HI"),
                                        factory=lambda: [0.1, 0.3],
                                        help="generated masks cover between LO and HI of the crop")
    mask_source: str = option("pairs", group=DATA, choices=MASK_SOURCES,
                              help="imgs/ + masks/ layout: pairs = the given masks, random = generated ones, "
                                   "mixed = alternate")
    mask_mode: str = option("black", group=DATA, choices=MASK_MODES, help="which colour marks repair in masks/")
    size: int = option(512, group=DATA, help="training crop side in pixels (multiple of 8)")
    prompt: str = option("", group=DATA, help="caption for images without a <stem>.txt beside them")
    mask_loss_weight: float = option(1.0, group=DATA, help="loss weight inside the hole (outside is 1)")
    gradient_checkpointing: bool = option(False, group=TRAINS, resume="change", help="trade compute for memory")
    validation_image: str | None = option(None, group=CHECKPOINTS, resume="change", type=str,
                                          help="image inpainted at each validation (--validate_every)")
    validation_mask: str | None = option(None, group=CHECKPOINTS, resume="change", type=str,
                                         help="its mask (--mask_mode convention)")
    validation_prompt: str | None = option(None, group=CHECKPOINTS, resume="change", type=str,
                                           help="prompt of the preview (default: --prompt)")
    validation_steps: int = option(20, group=CHECKPOINTS, resume="change", help="denoising steps for validation")

    def validate(self) -> "ControlNetTrainConfig":
        """Check every value; raise a one-line :class:`InpaintKitError` naming the bad one."""
        super().validate()
        if self.size < 8 or self.size % 8:
            raise InpaintKitError(f"--size {self.size}: must be a positive multiple of 8 (the VAE downsamples by 8)")
        lo, hi = self.mask_coverage
        if not 0 < lo <= hi < 1:
            raise InpaintKitError(f"--mask_coverage {lo} {hi}: need 0 < LO <= HI < 1 (fractions of the crop)")
        if not 0 <= self.object_masks <= 1:
            raise InpaintKitError(f"--object_masks {self.object_masks}: a fraction between 0 and 1")
        if self.object_masks and not self.ann_file:
            raise InpaintKitError("--object_masks needs --ann_file (the COCO annotations holding the objects)")
        if self.validate_every and not (self.validation_image and self.validation_mask):
            raise InpaintKitError("--validate_every needs --validation_image and --validation_mask")
        if self.validation_steps < 1:
            raise InpaintKitError(f"--validation_steps {self.validation_steps}: must be at least 1")
        if self.mask_loss_weight < 0:
            raise InpaintKitError(f"--mask_loss_weight {self.mask_loss_weight}: must not be negative")
        return self
