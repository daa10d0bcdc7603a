"""``inpaint-kit train-lora``: adapt an SD inpainting model to your own images (LoRA or partial UNet)."""

from __future__ import annotations

import argparse

HELP = "Fine-tune an SD inpainting model on your images: UNet attention LoRA (default) or --train attn."


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..train.config import LoraTrainConfig
    from .training import add_arguments as add_training_arguments

    add_training_arguments(p, LoraTrainConfig)


def run(args: argparse.Namespace) -> int:
    import logging

    from ..train.config import LoraTrainConfig
    from ..train.loop import train
    from .training import config_from_args

    if not args.verbose:  # accelerate's per-checkpoint INFO lines break the progress bar
        logging.getLogger("accelerate").setLevel(logging.WARNING)
    result = train(config_from_args(LoraTrainConfig, args))
    from accelerate import PartialState

    if not PartialState().is_main_process:  # under torchrun every process returns here; one reports
        return 0
    print(f"trained {result.step} steps ({result.trainable_params:,} trainable parameters); weights: {result.weights}")
    if result.nan_skips:
        print(f"{result.nan_skips} update(s) skipped for NaN/inf loss")
    return 0
