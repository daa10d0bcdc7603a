"""The command line of every trainer, built from its config dataclass (:mod:`inpaint_kit.train.config`):
one flag per field, with the field's default, help, choices and old spellings, so nothing is restated.

Shared flags come from :mod:`inpaint_kit.commands.flags` (``--output_dir``, ``--resume [PATH]``,
``--overwrite``, ``--device``/``--threads``, ``--no_progress``/``--verbose``). Every other flag has no
argparse default: a flag left out is simply absent from the parsed arguments, which is how ``--resume``
knows to take that setting from the run instead of from the defaults (:meth:`TrainerConfig.from_options`).

No torch here: ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import dataclasses

from . import flags


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
