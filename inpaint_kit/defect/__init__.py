"""DefectFill (Song et al., CVPR 2025): learn a defect from a few reference images and paint it into
defect-free ones, to synthesise inspection data.

* :mod:`~inpaint_kit.defect.data`: MVTec AD and source-system layouts, references, adjusted masks;
* :mod:`~inpaint_kit.defect.config`: :class:`DefectTrainConfig` (``inpaint-kit train-defect`` flags);
* :mod:`~inpaint_kit.defect.attention`: cross-attention capture of the defect token;
* :mod:`~inpaint_kit.defect.trainer`: :class:`DefectTrainer` (defect, object and attention losses);
* :mod:`~inpaint_kit.defect.generate`: ``inpaint-kit defect`` (masks, fill, Low-Fidelity Selection, MVTec output).
"""
