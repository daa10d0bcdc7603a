"""``inpaint-kit train-ddpm``: the from-scratch inpainter of :mod:`inpaint_kit.ddpm` trained on any folder of
images. :mod:`.config` (flags, no torch), :mod:`.data` (random windows and masks), :mod:`.trainer`
(:class:`DdpmTrainer`, ``train(cfg)``)."""
