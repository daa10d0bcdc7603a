"""The from-scratch diffusion inpainter: a small U-Net noise predictor (:mod:`.unet`), the diffusion
math and samplers (:mod:`.schedule`, :mod:`.sampling`), training (:mod:`.train`), the engine used by
``inpaint-kit infer --model builtin`` (:mod:`.engine`) and the shipped model (:mod:`.builtin`).

The seed project's building blocks are re-exported here: ``load_image``, ``load_mask`` (optional
Gaussian soften), ``save_tensor_as_image`` and ``create_advanced_mask``. Heavy modules import lazily."""

from ..masks import MASK_KINDS, create_advanced_mask
from .tensors import load_image, load_mask, save_tensor_as_image

__all__ = ["MASK_KINDS", "create_advanced_mask", "load_image", "load_mask", "save_tensor_as_image"]
