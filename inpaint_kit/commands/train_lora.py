"""``inpaint-kit train-lora``: adapt an SD inpainting model to your own images (LoRA or partial UNet)."""

from __future__ import annotations

import argparse

HELP = "Fine-tune an SD inpainting model on your images: UNet attention LoRA (default) or --train attn."


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..train.config import LR_SCHEDULERS, MASK_SOURCES, MIXED_PRECISIONS, TRAIN_MODES, LoraTrainConfig

    d = LoraTrainConfig.field_defaults()
    core = p.add_argument_group("data and model")
    core.add_argument("--data_root", required=True,
                      help="folder with imgs/ and masks/ (black = repair) or masks_inverted/ (white = repair), paired by stem")
    core.add_argument("--model", default=d["model"], help="base SD inpainting model: hub id, diffusers folder or single file")
    core.add_argument("--out", default=d["out"], help="output folder (weights, training_config.json, checkpoints/, logs/)")
    core.add_argument("--size", type=int, default=d["size"], help="training crop side in pixels (multiple of 8)")
    core.add_argument("--mask_mode", choices=("black", "white"), default=d["mask_mode"], help="which colour marks repair in masks/")
    core.add_argument("--mask_source", choices=MASK_SOURCES, default=d["mask_source"],
                      help="pairs: given masks are the holes; random: generated holes, given masks = damage excluded from "
                           "the loss; mixed: alternate")
    core.add_argument("--no_damage_aware", dest="damage_aware", action="store_false",
                      help="with random masks, do NOT exclude the given masks' damage from the loss")
    core.add_argument("--mask_loss_weight", type=float, default=d["mask_loss_weight"],
                      help="loss weight inside the hole (outside is 1)")
    core.add_argument("--prompt", default=d["prompt"], help="caption for images without a <stem>.txt beside them")

    what = p.add_argument_group("what trains")
    what.add_argument("--train", nargs="+", choices=TRAIN_MODES, default=d["train"],
                      help="lora: LoRA on UNet attention; attn: the UNet attention projections themselves; "
                           "text_encoder: add a text-encoder LoRA")
    what.add_argument("--rank", type=int, default=d["rank"], help="LoRA rank")
    what.add_argument("--alpha", type=float, default=d["alpha"], help="LoRA alpha (default: = rank)")

    opt = p.add_argument_group("optimisation")
    opt.add_argument("--steps", type=int, default=d["steps"], help="optimizer updates")
    opt.add_argument("--batch", type=int, default=d["batch"], help="images per micro-batch per process")
    opt.add_argument("--accum", type=int, default=d["accum"], help="gradient accumulation: micro-batches per update")
    opt.add_argument("--lr", type=float, default=d["lr"], help="learning rate (AdamW)")
    opt.add_argument("--lr_scheduler", choices=LR_SCHEDULERS, default=d["lr_scheduler"], help="learning-rate schedule")
    opt.add_argument("--warmup_steps", type=int, default=d["warmup_steps"], help="learning-rate warm-up updates")
    opt.add_argument("--max_grad_norm", type=float, default=d["max_grad_norm"], help="gradient clipping norm")
    opt.add_argument("--mixed_precision", choices=MIXED_PRECISIONS, default=d["mixed_precision"],
                     help="fp16/bf16 halve memory on GPUs (frozen weights in that dtype)")
    opt.add_argument("--gradient_checkpointing", action="store_true", help="trade compute for memory")
    opt.add_argument("--seed", type=int, default=d["seed"], help="seed of every random draw (samples, masks, noise)")
    opt.add_argument("--device", default=d["device"], help="'cpu' forces the CPU (default: accelerate's choice)")

    ck = p.add_argument_group("checkpoints and validation")
    ck.add_argument("--save_every", type=int, default=d["save_every"], help="checkpoint every N updates")
    ck.add_argument("--checkpoints_total_limit", type=int, default=d["checkpoints_total_limit"], help="checkpoints kept")
    ck.add_argument("--resume", default=d["resume"],
                    help="checkpoint folder, an output folder (its newest checkpoint), or 'latest' (in --out)")
    ck.add_argument("--validate_every", type=int, default=d["validate_every"], help="validate every N updates (0 = never)")
    ck.add_argument("--validation_image", default=d["validation_image"], help="image inpainted at each validation")
    ck.add_argument("--validation_mask", default=d["validation_mask"], help="its mask (--mask_mode convention)")
    ck.add_argument("--validation_prompt", default=d["validation_prompt"], help="prompt (default: --instance_prompt or --prompt)")
    ck.add_argument("--validation_steps", type=int, default=d["validation_steps"], help="denoising steps for validation")

    db = p.add_argument_group("DreamBooth prior preservation (on when --class_data_dir is given)")
    db.add_argument("--instance_prompt", default=d["instance_prompt"], help="caption of your images, e.g. 'a mural of sks cave'")
    db.add_argument("--class_prompt", default=d["class_prompt"], help="caption of the class, e.g. 'a mural'")
    db.add_argument("--class_data_dir", default=d["class_data_dir"], help="class images; missing ones are generated first")
    db.add_argument("--num_class_images", type=int, default=d["num_class_images"], help="class images wanted")
    db.add_argument("--prior_loss_weight", type=float, default=d["prior_loss_weight"], help="weight of the class loss")
    db.add_argument("--class_steps", type=int, default=d["class_steps"], help="denoising steps per generated class image")
    p.add_argument("--no_progress", dest="progress", action="store_false", help="no progress bars")


def config_from_args(args: argparse.Namespace):
    """The one place argparse values become a :class:`LoraTrainConfig`."""
    import dataclasses

    from ..train.config import LoraTrainConfig

    names = [f.name for f in dataclasses.fields(LoraTrainConfig)]
    return LoraTrainConfig(**{n: getattr(args, n) for n in names if hasattr(args, n)}).validate()


def run(args: argparse.Namespace) -> int:
    import logging

    from ..train.loop import train

    logging.getLogger("accelerate").setLevel(logging.WARNING)  # its per-checkpoint INFO lines break the progress bar
    cfg = config_from_args(args)
    result = train(cfg)
    print(f"trained {result.step} steps ({result.trainable_params:,} trainable parameters); weights: {result.weights}")
    if result.nan_skips:
        print(f"{result.nan_skips} update(s) skipped for NaN/inf loss")
    return 0
