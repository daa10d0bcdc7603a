"""The from-scratch diffusion inpainter: a small U-Net predicting noise or v (:mod:`.unet`, the
``prediction`` field of its config), the diffusion math and samplers (:mod:`.schedule`, :mod:`.sampling`)
and the shipped model (:mod:`.builtin`). Its trainer (``train-ddpm``) lives with the other trainers, in
:mod:`inpaint_kit.train.ddpm`; the engine used by ``inpaint-kit infer --model builtin`` lives beside the SD
engine, in :mod:`inpaint_kit.engine.ddpm`.

The seed project's building blocks are re-exported here: ``load_image``, ``load_mask`` (optional
Gaussian soften), ``save_tensor_as_image`` and ``create_advanced_mask``; importing this package imports
torch (through :mod:`.tensors`)."""

from ..maskgen import MASK_KINDS, create_advanced_mask
from .tensors import load_image, load_mask, save_tensor_as_image

__all__ = ["MASK_KINDS", "create_advanced_mask", "load_image", "load_mask", "save_tensor_as_image"]
