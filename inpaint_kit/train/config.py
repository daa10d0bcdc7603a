""":class:`TrainerConfig`, the settings every trainer shares, and :func:`option` / :func:`redefault`, with
which every trainer's config (``inpaint_kit.train.<trainer>.config``) declares its own. No torch here: the
CLI builds its flags from these.

Each field is declared once with :func:`option`: its default, help text, choices, flag group, flag name
and old flag spellings, and what ``--resume`` does with it. :mod:`inpaint_kit.commands.training` turns the
fields into argparse flags, so defaults and choice lists are never restated. A trainer's config subclasses
:class:`TrainerConfig`, adds its own fields and changes shared defaults with :func:`redefault`.

On ``--resume`` a field is one of (``option(resume=...)``):

* ``"fixed"`` (default): defines the run (model, objective, optimiser, seed). Left out on the command line,
  it is taken from the run; given with another value, it is a one-line error.
* ``"change"``: may change when a run continues (``--steps``, checkpoint cadence, ``--data`` if the folder
  moved, ...). Left out, it is taken from the run; a new value is reported in one line.
* ``"fresh"``: belongs to this invocation only (``--output_dir``, ``--resume``, ``--device``, ...).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..errors import InpaintKitError
from .checkpoint import CONFIG_NAME  # noqa: F401  (training_config.json; re-exported)

MASK_MODES = ("black", "white")  # = inpaint_kit.masks.MASK_MODES
MASK_SOURCES = ("pairs", "random", "mixed")
MIXED_PRECISIONS = ("no", "fp16", "bf16")
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")
RESUME_KINDS = ("fixed", "change", "fresh")

# Flag groups of ``--help``, in this order (a trainer's own groups go before the last one).
GROUP_ORDER = DATA, TRAINS, OPTIMISATION, CHECKPOINTS, DEVICE = (
    "data and output", "what trains", "optimisation", "checkpoints, resume and validation", "device and progress")


def option(default=dataclasses.MISSING, *, help: str, group: str = OPTIMISATION, choices=None, resume: str = "fixed",
           aliases: tuple[str, ...] = (), flag: str | None = None, type=None, nargs=None, metavar=None,
           factory=None):
    """A config field with its command-line description.

    ``choices``: allowed values (checked by :meth:`TrainerConfig.validate` and argparse); ``resume``: see the
    module docstring; ``aliases``: old flag spellings, accepted but hidden; ``flag``: the flag's name when it
    is not ``--<field>`` (e.g. ``--no_damage_aware`` for a field that defaults to True); ``type``/``nargs``/
    ``metavar``: as in argparse (``type`` defaults to the default value's type); ``factory``: a default
    factory for list values."""
    if resume not in RESUME_KINDS:
        raise ValueError(f"resume={resume!r}: one of {RESUME_KINDS}")
    meta = {"help": help, "group": group, "choices": choices, "resume": resume, "aliases": tuple(aliases),
            "flag": flag, "type": type, "nargs": nargs, "metavar": metavar}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def redefault(base: type, name: str, default, **changes):
    """Redeclare field ``name`` of the config class ``base`` with a new default (and optionally other
    :func:`option` settings, e.g. ``help``), keeping everything else it declares."""
    meta = {**base.__dataclass_fields__[name].metadata, **changes}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def flag_text(name: str, value, flag: str | None = None) -> str:
    """How a field's value reads on the command line (``--train lora text_encoder``, ``--prediction v``);
    ``flag``: the field's flag when it is not ``--<name>`` (:meth:`TrainerConfig.flag_of`)."""
    if isinstance(value, bool):
        return f"--{name} {'on' if value else 'off'}"
    flag = flag or f"--{name}"
    if isinstance(value, (list, tuple)):
        return f"{flag} {' '.join(str(v) for v in value)}"
    return f"{flag} {value}"


@dataclass
class TrainerConfig:
    """The settings every trainer shares. Subclasses add their own fields; :meth:`validate` raises a one-line
    :class:`InpaintKitError` naming the bad value and never rewrites one."""

    data: str = option("", group=DATA, resume="change", aliases=("--data_root",),
                       help="training data folder (required)")
    output_dir: str = option("", group=DATA, resume="fresh",
                             help="folder of the run: weights, training_config.json, checkpoints/, logs/")
    steps: int = option(1000, resume="change", help="optimizer updates of the whole run (a resumed run counts on)")
    stop_after: int | None = option(None, type=int, resume="fresh",
                                    help="checkpoint and exit after this update, keeping the LR schedule of --steps "
                                         "(continue later with --resume)")
    batch: int = option(1, resume="change",
                        help="samples per micro-batch PER PROCESS: N processes train like one process with N x --batch")
    accum: int = option(1, help="gradient accumulation: micro-batches per update")
    lr: float = option(1e-4, help="learning rate (AdamW)")
    lr_scheduler: str = option("constant", choices=LR_SCHEDULERS, help="learning-rate schedule after the warm-up")
    warmup_steps: int = option(0, aliases=("--warmup",), help="linear learning-rate warm-up updates")
    weight_decay: float = option(1e-2, help="AdamW weight decay")
    max_grad_norm: float = option(1.0, help="gradient clipping norm")
    mixed_precision: str = option("no", choices=MIXED_PRECISIONS, resume="change",
                                  help="bf16 runs on CPUs and GPUs, fp16 on GPUs only (trained weights stay fp32)")
    seed: int = option(1, help="seed of every random draw (samples, masks, noise, timesteps)")
    save_every: int = option(500, group=CHECKPOINTS, resume="change", help="checkpoint every N updates")
    checkpoints_total_limit: int = option(2, group=CHECKPOINTS, resume="change", help="newest checkpoints kept")
    resume: str | None = option(None, group=CHECKPOINTS, resume="fresh",
                                help="continue a run: bare/'latest' = newest checkpoint in --output_dir, or a "
                                     "checkpoint / output folder")
    overwrite: bool = option(False, group=CHECKPOINTS, resume="fresh",
                             help="replace the training run already in --output_dir")
    validate_every: int = option(0, group=CHECKPOINTS, resume="change", aliases=("--sample_every",),
                                 help="write a validation preview every N updates (0 = never)")
    log_every: int = option(0, group=CHECKPOINTS, resume="change",
                            help="print a loss line every N updates (0 = never; TensorBoard gets every update)")
    device: str | None = option(None, group=DEVICE, resume="fresh", help="cpu or cuda (default: accelerate's choice)")
    threads: int | None = option(None, type=int, group=DEVICE, resume="fresh", help="torch CPU threads")
    progress: bool = option(True, group=DEVICE, resume="fresh", help="progress bar")

    @classmethod
    def flag_of(cls, name: str) -> str:
        """The command-line flag of field ``name`` (``--<name>`` unless the field declares another)."""
        return cls.__dataclass_fields__[name].metadata.get("flag") or f"--{name}"

    def flag_text(self, name: str, value) -> str:
        """How field ``name`` with ``value`` reads on this config's command line."""
        return flag_text(name, value, None if isinstance(value, bool) else self.flag_of(name))

    def validate(self):
        """Check every shared value; subclasses extend this (call ``super().validate()`` first)."""
        for f in dataclasses.fields(self):
            allowed, value = f.metadata.get("choices"), getattr(self, f.name)
            if allowed is None or value is None:
                continue
            values = value if isinstance(value, (list, tuple)) else [value]
            bad = [v for v in values if v not in allowed]
            if bad or not values:
                raise InpaintKitError(f"{self.flag_text(f.name, value)}: choose from {', '.join(map(str, allowed))}")
        if not self.data:
            raise InpaintKitError(f"--data is required: {self.__dataclass_fields__['data'].metadata['help']}")
        if not self.output_dir:
            raise InpaintKitError("--output_dir is required: the folder the run writes into")
        for name in ("steps", "batch", "accum", "save_every", "checkpoints_total_limit"):
            if getattr(self, name) < 1:
                raise InpaintKitError(f"--{name} {getattr(self, name)}: must be at least 1")
        for name in ("warmup_steps", "validate_every", "log_every", "weight_decay"):
            if getattr(self, name) < 0:
                raise InpaintKitError(f"--{name} {getattr(self, name)}: must not be negative")
        if not self.lr > 0 or not self.max_grad_norm > 0:
            raise InpaintKitError(f"--lr {self.lr} and --max_grad_norm {self.max_grad_norm}: must be positive")
        if self.warmup_steps and self.lr_scheduler == "constant":
            raise InpaintKitError(f"--warmup_steps {self.warmup_steps} has no effect with --lr_scheduler constant; "
                                  "use constant_with_warmup (or another schedule)")
        if self.stop_after is not None and not 1 <= self.stop_after <= self.steps:
            raise InpaintKitError(f"--stop_after {self.stop_after}: must be between 1 and --steps {self.steps}")
        if self.threads is not None and self.threads < 1:
            raise InpaintKitError(f"--threads {self.threads}: must be at least 1")
        if self.device not in (None, "cpu", "cuda"):
            raise InpaintKitError(f"--device {self.device!r}: use cpu or cuda for training (pick GPUs with "
                                  "accelerate launch / CUDA_VISIBLE_DEVICES)")
        if self.resume and self.overwrite:
            raise InpaintKitError("--resume continues the run in --output_dir and --overwrite replaces it; pass one")
        return self

    def to_dict(self) -> dict:
        """A JSON-ready dict of every field (recorded in ``training_config.json`` and checkpoints)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def field_defaults(cls) -> dict:
        """Field name -> default value (what a new run uses for a setting left out)."""
        out = {}
        for f in dataclasses.fields(cls):
            out[f.name] = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        return out

    @classmethod
    def from_options(cls, values: dict):
        """The config of the settings in ``values`` (only those the user chose). A new run takes the defaults
        for the others; a run with ``resume`` takes them from the checkpoint's record, so that leaving a flag
        out never changes a resumed run (the trainer then checks the ones given)."""
        values = dict(values)
        if values.get("resume"):
            from .checkpoint import find_checkpoint, read_state

            out = values.get("output_dir") or cls.field_defaults()["output_dir"]
            saved = read_state(find_checkpoint(values["resume"], out))["config"]
            for f in dataclasses.fields(cls):
                if f.metadata.get("resume", "fixed") != "fresh" and f.name not in values and f.name in saved:
                    values[f.name] = saved[f.name]
        return cls(**values).validate()

    @classmethod
    def from_run(cls, output_dir: str, **changes):
        """Continue the run in ``output_dir`` from its newest checkpoint with its own settings, changing only
        ``changes`` (e.g. ``steps=20000``): the Python form of ``--resume``."""
        return cls.from_options({"output_dir": output_dir, "resume": "latest", **changes})
