"""``inpaint-kit train-ddpm``: train the from-scratch diffusion inpainter on a folder of images."""

from __future__ import annotations

import argparse

HELP = "train the from-scratch DDPM inpainter on any folder of images (CPU-friendly; several processes with torchrun)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..train.config import DdpmTrainConfig
    from .training import add_arguments as add_training_arguments

    add_training_arguments(p, DdpmTrainConfig)


def run(args: argparse.Namespace) -> int:
    import logging

    from ..ddpm.train import train
    from ..train.config import DdpmTrainConfig
    from .training import config_from_args

    if not args.verbose:  # accelerate's per-checkpoint INFO lines break the progress bar
        logging.getLogger("accelerate").setLevel(logging.WARNING)
    result = train(config_from_args(DdpmTrainConfig, args))
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(f"trained {result.step} steps; model folder: {result.out} (--model {result.out})")
        if result.nan_skips:
            print(f"{result.nan_skips} update(s) skipped for NaN/inf loss")
    return 0
