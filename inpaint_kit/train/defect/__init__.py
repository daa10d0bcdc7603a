"""``inpaint-kit train-defect``: DefectFill (Song et al., CVPR 2025), a defect learned from a few reference
images. :mod:`.config` (flags, no torch), :mod:`.data` (MVTec AD / source layouts, references, adjusted
masks), :mod:`.trainer` (:class:`DefectTrainer`, ``train(cfg)``), :mod:`.attention` (cross-attention capture
of the defect token). Painting the learned defect into good images is ``inpaint-kit defect``
(:mod:`inpaint_kit.defect.generate`)."""
