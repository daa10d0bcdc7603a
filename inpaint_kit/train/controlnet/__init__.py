"""``inpaint-kit train-controlnet``: an inpaint ControlNet over a frozen SD 1.5-family model. :mod:`.config`
(flags, no torch), :mod:`.data` (layouts, one example per draw), :mod:`.trainer` (:class:`ControlNetTrainer`,
``train(cfg)``)."""
