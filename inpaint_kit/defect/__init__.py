"""DefectFill (Song et al., CVPR 2025): learn a defect from a few reference images and paint it into
defect-free ones, to synthesise inspection data.

* training (``inpaint-kit train-defect``) lives with the other trainers, in :mod:`inpaint_kit.train.defect`;
* :mod:`~inpaint_kit.defect.generate`: ``inpaint-kit defect``, the inference side (masks, fill, Low-Fidelity
  Selection, MVTec output).
"""
