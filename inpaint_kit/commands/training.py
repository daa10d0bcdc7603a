"""Every ``train-*`` command, built from one table (:data:`TRAIN_COMMANDS`: help line, config class, trainer
class). A command's flags come from its config dataclass (:mod:`inpaint_kit.train.config`): one flag per
field, with the field's default, help, choices and old spellings, so nothing is restated; running it builds
the config, runs the trainer (which prints its messages and closing summary on the main process only) and
returns 0. A new trainer is one row here plus its ``"train-<name>": "inpaint_kit.commands.training:train-<name>"``
line in :data:`inpaint_kit.cli.COMMANDS`.

Shared flags come from :mod:`inpaint_kit.commands.flags` (``--output_dir``, ``--resume [PATH]``,
``--overwrite``, ``--device``/``--threads``, ``--no_progress``/``--verbose``). Every other flag has no
argparse default: a flag left out is simply absent from the parsed arguments, which is how ``--resume``
knows to take that setting from the run instead of from the defaults (:meth:`TrainerConfig.from_options`).

No torch here: ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from dataclasses import dataclass

from . import flags


@dataclass(frozen=True)
class TrainCommand:
    """One ``train-*`` sub-command: its ``--help`` line, and its config and trainer classes as
    ``module:Class`` paths (the config module has no torch, so ``--help`` stays instant; the trainer's
    module is imported when the command runs)."""

    help: str
    config: str
    trainer: str


TRAIN_COMMANDS = {
    "train-lora": TrainCommand(
        "Fine-tune an SD inpainting model on your images: UNet attention LoRA (default) or --train attn.",
        "inpaint_kit.train.lora.config:LoraTrainConfig", "inpaint_kit.train.lora.trainer:LoraTrainer"),
    "train-ddpm": TrainCommand(
        "train the from-scratch DDPM inpainter on any folder of images (CPU-friendly; several processes with "
        "torchrun)",
        "inpaint_kit.train.ddpm.config:DdpmTrainConfig", "inpaint_kit.train.ddpm.trainer:DdpmTrainer"),
    "train-thinfill": TrainCommand(
        "train the thin-damage filler (feed-forward, refines a Navier-Stokes fill) on any folder of photos",
        "inpaint_kit.train.thinfill.config:ThinFillTrainConfig", "inpaint_kit.train.thinfill.trainer:ThinFillTrainer"),
    "train-controlnet": TrainCommand(
        "Train an inpainting ControlNet (control_v11p_sd15_inpaint convention) over a frozen SD 1.5-family "
        "model, on a folder of images, imgs/ + masks/ pairs, or COCO (--data + --ann_file).",
        "inpaint_kit.train.controlnet.config:ControlNetTrainConfig",
        "inpaint_kit.train.controlnet.trainer:ControlNetTrainer"),
    "train-defect": TrainCommand(
        "DefectFill: learn one defect type of an object from a few MVTec-layout examples (LoRA).",
        "inpaint_kit.train.defect.config:DefectTrainConfig", "inpaint_kit.train.defect.trainer:DefectTrainer"),
    "train-detect": TrainCommand(
        "train the damage detector (a small U-Net) on clean photos with synthetic damage (+ optional labelled "
        "pairs)",
        "inpaint_kit.train.detect.config:DetectTrainConfig", "inpaint_kit.train.detect.trainer:DetectTrainer"),
}


def load_class(path: str):
    """The class named by a ``module:Class`` path."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def command(name: str):
    """``(HELP, add_arguments(parser), run(args))`` of the ``train-*`` command ``name``: what a command
    module of :mod:`inpaint_kit.cli` defines."""
    entry = TRAIN_COMMANDS[name]

    def add(parser: argparse.ArgumentParser) -> None:
        add_arguments(parser, load_class(entry.config))

    def run(args: argparse.Namespace) -> int:
        import logging

        if not args.verbose:  # accelerate's per-checkpoint INFO lines break the progress bar
            logging.getLogger("accelerate").setLevel(logging.WARNING)
        trainer = load_class(entry.trainer)(config_from_args(load_class(entry.config), args))
        trainer.run()  # prints the closing summary, on the main process only
        return 0

    return entry.help, add, run


def _shown(value) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return str(value)


def _add_field(group, f: dataclasses.Field, default) -> None:
    md = f.metadata
    help = md["help"]
    if default not in (None, "") and not isinstance(default, bool):
        help += f" (default: {_shown(default)})"
    kw = {"dest": f.name, "default": argparse.SUPPRESS, "help": help}
    if isinstance(default, bool) and md.get("type") is None:
        kw["action"] = "store_false" if default else "store_true"
    else:
        kw["type"] = md.get("type") or (type(default) if isinstance(default, (int, float, str)) else str)
        for key in ("choices", "nargs", "metavar"):
            if md.get(key) is not None:
                kw[key] = md[key]
        if md.get("flag") and "metavar" not in kw and "choices" not in kw:
            kw["metavar"] = md["flag"].lstrip("-").upper()  # --rank RANK, not the field's name
    group.add_argument(md.get("flag") or f"--{f.name}", **kw)
    for old in md.get("aliases", ()):
        flags.alias(group, old, dest=f.name, **{k: v for k, v in kw.items() if k in ("type", "nargs", "action", "choices")})


def add_arguments(parser: argparse.ArgumentParser, config_cls) -> None:
    """Add a flag for every field of ``config_cls`` (a :class:`~inpaint_kit.train.config.TrainerConfig`
    subclass), in argument groups named by the fields' ``group``."""
    from ..train.config import GROUP_ORDER

    fields = dataclasses.fields(config_cls)
    names = list(dict.fromkeys(f.metadata.get("group", "training") for f in fields))
    rank = {g: i for i, g in enumerate(GROUP_ORDER)}
    names.sort(key=lambda g: rank.get(g, len(GROUP_ORDER) - 1.5))  # the trainer's own groups before the last
    groups = {g: parser.add_argument_group(g) for g in names}
    defaults = config_cls.field_defaults()
    for f in fields:
        group = groups[f.metadata.get("group", "training")]
        if f.name == "output_dir":
            # not argparse-required (that would refuse the --out alias): TrainerConfig.validate asks for it
            flags.add_output_dir(group, defaults["output_dir"] or argparse.SUPPRESS,
                                 f.metadata["help"] + ("" if defaults["output_dir"] else " (required)"))
        elif f.name == "resume":
            flags.add_resume(group)
        elif f.name == "overwrite":
            flags.add_overwrite(group, "the training run already in --output_dir (start a new one there)")
        elif f.name == "device":
            flags.add_device(group)  # --device and --threads
        elif f.name == "progress":
            flags.add_progress(group)  # --no_progress and --verbose
        elif f.name != "threads":
            _add_field(group, f, defaults[f.name])


def config_from_args(config_cls, args: argparse.Namespace):
    """The one place parsed flags become a config: the flags given, the rest from the defaults (or, with
    ``--resume``, from the run being resumed)."""
    names = [f.name for f in dataclasses.fields(config_cls)]
    return config_cls.from_options({n: getattr(args, n) for n in names if hasattr(args, n)})
