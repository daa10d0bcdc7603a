"""``inpaint-kit train-defect``: DefectFill, learn a defect from a few reference images (LoRA on the UNet
attention and the text encoder, defect + object + attention losses)."""

from __future__ import annotations

import argparse

HELP = "DefectFill: learn one defect type of an object from a few MVTec-layout examples (LoRA)."


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..defect.config import DefectTrainConfig
    from .training import add_arguments as add_training_arguments

    add_training_arguments(p, DefectTrainConfig)


def run(args: argparse.Namespace) -> int:
    import logging

    from ..defect.config import DefectTrainConfig
    from ..defect.trainer import train_defect
    from .training import config_from_args

    if not args.verbose:  # accelerate's per-checkpoint INFO lines break the progress bar
        logging.getLogger("accelerate").setLevel(logging.WARNING)
    result = train_defect(config_from_args(DefectTrainConfig, args))
    print(f"trained {result.step} steps ({result.trainable_params:,} trainable parameters); weights: {result.weights}")
    if result.nan_skips:
        print(f"{result.nan_skips} update(s) skipped for NaN/inf loss")
    return 0
