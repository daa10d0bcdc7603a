"""``inpaint-kit train-detect``: train the damage detector on clean photographs with synthetic damage."""

from __future__ import annotations

import argparse

HELP = "train the damage detector (a small U-Net) on clean photos with synthetic damage (+ optional labelled pairs)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..train.detect.config import DetectTrainConfig
    from .training import add_arguments as add_training_arguments

    add_training_arguments(p, DetectTrainConfig)


def run(args: argparse.Namespace) -> int:
    import logging

    from ..train.detect.config import DetectTrainConfig
    from ..train.detect.trainer import train
    from .training import config_from_args

    if not args.verbose:  # accelerate's per-checkpoint INFO lines break the progress bar
        logging.getLogger("accelerate").setLevel(logging.WARNING)
    result = train(config_from_args(DetectTrainConfig, args))
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(f"trained {result.step} steps; detector folder: {result.out} (detect --model {result.out})")
    return 0
