"""Finding damage automatically: a small U-Net run at native resolution in seamless tiles, a classical
morphological baseline, the synthetic damage it is trained on, and the metrics it is measured with.

    from inpaint_kit.detect import load_detector, detect_mask
    det = load_detector("builtin")          # once; "classical" or a train-detect folder also work
    mask = detect_mask(image, det)          # RGB uint8 (H, W, 3) -> bool (H, W), True = damage (repaint)

Modules: ``detector`` (loading, probability, thresholding), ``tiling`` (bounded-memory tiles), ``network``
(the U-Net and its folder format), ``classical`` (top-hat / black-hat baseline), ``damage`` + ``shapes`` +
``negatives`` (synthetic damage and hard negatives), ``metrics`` and ``evaluate`` (accuracy), ``config`` +
``job`` + ``files`` (the ``detect`` command's runs and outputs), ``labelled`` (imgs/ + masks/ pairs).
Nothing here imports torch at module level.
"""

from .detector import Detector, detect_mask, load_detector, to_mask

__all__ = ["Detector", "detect_mask", "load_detector", "to_mask"]
