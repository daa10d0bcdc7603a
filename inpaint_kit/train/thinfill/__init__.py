"""``inpaint-kit train-thinfill``: the thin-damage filler (:mod:`inpaint_kit.thinfill`) trained on any folder
of photos. ``config`` (flags, no torch) -> ``data`` (windows, thin masks, classical fills) -> ``trainer``
(:class:`ThinFillTrainer` on the shared :class:`~inpaint_kit.train.trainer.Trainer`)."""

from .config import ThinFillTrainConfig

__all__ = ["ThinFillTrainConfig"]
