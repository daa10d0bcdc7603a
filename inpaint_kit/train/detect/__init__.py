"""``inpaint-kit train-detect``: the damage detector's trainer on the shared
:class:`~inpaint_kit.train.trainer.Trainer` base. ``config`` (flags, no torch) -> ``data`` (photos,
synthetic damage, labelled pairs, the validation split) -> ``trainer`` (:class:`DetectTrainer`, ``train``)."""
