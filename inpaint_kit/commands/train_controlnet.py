"""``inpaint-kit train-controlnet``: train an inpaint ControlNet over a frozen SD 1.5-family model."""

from __future__ import annotations

import argparse

HELP = ("Train an inpainting ControlNet (control_v11p_sd15_inpaint convention) over a frozen SD 1.5-family model, "
        "on a folder of images, imgs/ + masks/ pairs, or COCO (--image_dir + --ann_file).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..train.controlnet_config import ControlNetTrainConfig
    from .training import add_arguments as add_training_arguments

    add_training_arguments(p, ControlNetTrainConfig)


def run(args: argparse.Namespace) -> int:
    import logging

    from ..train.controlnet import train
    from ..train.controlnet_config import ControlNetTrainConfig
    from .training import config_from_args

    if not args.verbose:  # accelerate's per-checkpoint INFO lines break the progress bar
        logging.getLogger("accelerate").setLevel(logging.WARNING)
    result = train(config_from_args(ControlNetTrainConfig, args))
    print(f"trained {result.step} steps ({result.trainable_params:,} trainable parameters); ControlNet: {result.out}")
    if result.nan_skips:
        print(f"{result.nan_skips} update(s) skipped for NaN/inf loss")
    return 0
