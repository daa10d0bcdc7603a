"""``inpaint-kit train-thinfill``: train the thin-damage filler (a small U-Net refining OpenCV's fill)."""

from __future__ import annotations

import argparse

HELP = "train the thin-damage filler (feed-forward, refines a Navier-Stokes fill) on any folder of photos"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..train.thinfill.config import ThinFillTrainConfig
    from .training import add_arguments as add_training_arguments

    add_training_arguments(p, ThinFillTrainConfig)


def run(args: argparse.Namespace) -> int:
    import logging

    from ..train.thinfill.config import ThinFillTrainConfig
    from ..train.thinfill.trainer import train
    from .training import config_from_args

    if not args.verbose:
        logging.getLogger("accelerate").setLevel(logging.WARNING)
    result = train(config_from_args(ThinFillTrainConfig, args))
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(f"trained {result.step} steps; model folder: {result.out} (--thin_model {result.out})")
    return 0
