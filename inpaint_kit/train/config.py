"""The configs of training runs: :class:`TrainerConfig` (what every trainer shares) and
:class:`LoraTrainConfig` (``inpaint-kit train-lora``). No torch here: the CLI builds its flags from these.

Each field is declared once with :func:`option`: its default, help text, choices, flag group, old flag
spellings, and what ``--resume`` does with it. :mod:`inpaint_kit.commands.training` turns the fields into
argparse flags, so defaults and choice lists are never restated. A trainer's config subclasses
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

from ..engine import DEFAULT_MODEL
from ..errors import InpaintKitError
from .checkpoint import CONFIG_NAME  # noqa: F401  (training_config.json; re-exported)

TRAIN_MODES = ("lora", "attn", "text_encoder")
MASK_SOURCES = ("pairs", "random", "mixed")
MIXED_PRECISIONS = ("no", "fp16", "bf16")
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")
RESUME_KINDS = ("fixed", "change", "fresh")

LORA_WEIGHTS = "lora_unet.safetensors"  # diffusers LoRA format (pipe.load_lora_weights)
PARTIAL_WEIGHTS = "unet_partial_tuned.safetensors"  # plain UNet state dict of the tuned attention weights

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


def flag_text(name: str, value) -> str:
    """How a field's value reads on the command line (``--train lora text_encoder``, ``--prediction v``)."""
    if isinstance(value, bool):
        return f"--{name} {'on' if value else 'off'}"
    if isinstance(value, (list, tuple)):
        return f"--{name} {' '.join(str(v) for v in value)}"
    return f"--{name} {value}"


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

    def validate(self):
        """Check every shared value; subclasses extend this (call ``super().validate()`` first)."""
        for f in dataclasses.fields(self):
            allowed, value = f.metadata.get("choices"), getattr(self, f.name)
            if allowed is None or value is None:
                continue
            values = value if isinstance(value, (list, tuple)) else [value]
            bad = [v for v in values if v not in allowed]
            if bad or not values:
                raise InpaintKitError(f"{flag_text(f.name, value)}: choose from {', '.join(map(str, allowed))}")
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


@dataclass
class LoraTrainConfig(TrainerConfig):
    """A LoRA / partial fine-tuning run of an SD inpainting model (``inpaint-kit train-lora``)."""

    data: str = redefault(TrainerConfig, "data", "",
                          help="folder with imgs/ and masks/ (black = repair) or masks_inverted/ (white = repair), "
                               "paired by stem")
    output_dir: str = redefault(TrainerConfig, "output_dir", "weights/lora")
    model: str = option(DEFAULT_MODEL, group=DATA, help="base SD inpainting model: hub id, diffusers folder or single file")
    size: int = option(512, group=DATA, help="training crop side in pixels (multiple of 8)")
    mask_mode: str = option("black", group=DATA, choices=("black", "white"), help="which colour marks repair in masks/")
    mask_source: str = option("mixed", group=DATA, choices=MASK_SOURCES,
                              help="pairs: given masks are the holes; random: generated holes, given masks = damage "
                                   "excluded from the loss; mixed: alternate")
    damage_aware: bool = option(True, group=DATA, flag="--no_damage_aware",
                                help="with random masks, do NOT exclude the given masks' damage from the loss")
    mask_loss_weight: float = option(1.0, group=DATA, help="loss weight inside the hole (outside is 1)")
    prompt: str = option("", group=DATA, help="caption for images without a <stem>.txt beside them")
    # lora: UNet attention LoRA; attn: UNet attention projections trained directly (partial UNet);
    # text_encoder: add a LoRA on the text encoder's attention too (with lora only).
    train: list[str] = option(group=TRAINS, choices=TRAIN_MODES, nargs="+", factory=lambda: ["lora"],
                              help="lora: LoRA on UNet attention; attn: the UNet attention projections themselves; "
                                   "text_encoder: add a text-encoder LoRA")
    rank: int = option(16, group=TRAINS, help="LoRA rank")
    alpha: float | None = option(None, group=TRAINS, type=float, help="LoRA alpha (default: = rank)")
    gradient_checkpointing: bool = option(False, resume="change", help="trade compute for memory")
    validation_image: str | None = option(None, group=CHECKPOINTS, resume="change",
                                          help="image inpainted at each validation")
    validation_mask: str | None = option(None, group=CHECKPOINTS, resume="change",
                                         help="its mask (--mask_mode convention)")
    validation_prompt: str | None = option(None, group=CHECKPOINTS, resume="change",
                                           help="prompt (default: --instance_prompt or --prompt)")
    validation_steps: int = option(20, group=CHECKPOINTS, resume="change", help="denoising steps for validation")
    # DreamBooth prior preservation (off unless class_data_dir is given)
    instance_prompt: str | None = option(None, group="DreamBooth prior preservation (on with --class_data_dir)",
                                         help="caption of your images, e.g. 'a mural of sks cave'")
    class_prompt: str | None = option(None, group="DreamBooth prior preservation (on with --class_data_dir)",
                                      help="caption of the class, e.g. 'a mural'")
    class_data_dir: str | None = option(None, group="DreamBooth prior preservation (on with --class_data_dir)",
                                        resume="change", help="class images; missing ones are generated first")
    num_class_images: int = option(100, group="DreamBooth prior preservation (on with --class_data_dir)",
                                   help="class images wanted")
    prior_loss_weight: float = option(1.0, group="DreamBooth prior preservation (on with --class_data_dir)",
                                      help="weight of the class loss")
    class_steps: int = option(25, group="DreamBooth prior preservation (on with --class_data_dir)", resume="change",
                              help="denoising steps per generated class image")

    @property
    def with_prior(self) -> bool:
        """True when DreamBooth prior preservation is on."""
        return bool(self.class_data_dir)

    @property
    def lora_alpha(self) -> float:
        """The effective LoRA alpha (``alpha`` or, when unset, ``rank``)."""
        return float(self.rank if self.alpha is None else self.alpha)

    @property
    def unet_mode(self) -> str:
        """``lora`` or ``attn``: how the UNet is trained."""
        return "attn" if "attn" in self.train else "lora"

    @property
    def train_text_encoder(self) -> bool:
        """True when a text-encoder LoRA is trained as well."""
        return "text_encoder" in self.train

    @property
    def weights_name(self) -> str:
        """File name of the final weights in ``output_dir``."""
        return PARTIAL_WEIGHTS if self.unet_mode == "attn" else LORA_WEIGHTS

    def validate(self) -> "LoraTrainConfig":
        """Check every value; raise a one-line :class:`InpaintKitError` naming the bad one."""
        super().validate()
        for name in ("size", "rank", "validation_steps", "class_steps"):
            if getattr(self, name) < 1:
                raise InpaintKitError(f"--{name} {getattr(self, name)}: must be at least 1")
        if self.size % 8:
            raise InpaintKitError(f"--size {self.size}: must be a multiple of 8 (the VAE downsamples by 8)")
        if self.alpha is not None and not self.alpha > 0:
            raise InpaintKitError(f"--alpha {self.alpha}: must be positive")
        if "attn" in self.train and ("lora" in self.train or "text_encoder" in self.train):
            raise InpaintKitError("--train attn trains the UNet attention weights directly; it cannot be combined "
                                  "with lora or text_encoder")
        if self.mask_loss_weight < 0 or self.prior_loss_weight < 0:
            raise InpaintKitError("--mask_loss_weight and --prior_loss_weight must not be negative")
        if self.validate_every and not (self.validation_image and self.validation_mask):
            raise InpaintKitError("--validate_every needs --validation_image and --validation_mask")
        if self.with_prior and not self.class_prompt:
            raise InpaintKitError("--class_data_dir needs --class_prompt (e.g. 'a mural') for prior preservation")
        if self.with_prior and self.num_class_images < 1:
            raise InpaintKitError(f"--num_class_images {self.num_class_images}: must be at least 1")
        return self


# --- train-ddpm ---------------------------------------------------------------------------------------
DDPM_PRESETS = ("tiny", "small", "base")  # = inpaint_kit.ddpm.unet.PRESETS (kept torch-free here; tested)
DDPM_WEIGHTS = ("model.safetensors", "config.json")  # a DDPM model folder: EMA weights + the network's config
NETWORK = "network and objective"


def _mask_kinds() -> str:
    from ..masks import MASK_KINDS

    return ",".join(MASK_KINDS)


@dataclass
class DdpmTrainConfig(TrainerConfig):
    """A from-scratch DDPM inpainter run (``inpaint-kit train-ddpm``). The output folder is a model folder
    (``config.json`` + EMA ``model.safetensors``) that ``--model <output_dir>`` loads."""

    data: str = redefault(TrainerConfig, "data", "", help="folder of training images (searched recursively)")
    output_dir: str = redefault(TrainerConfig, "output_dir", "",
                                help="the model folder: config.json + model.safetensors (EMA weights), "
                                     "training_config.json, checkpoints/, logs/, validation/")
    size: int = option(64, group=DATA, help="training window side (a multiple of the network's downsampling)")
    mask_kinds: str = option(_mask_kinds(), group=DATA, help="comma-separated mask generators to train on")
    min_scale: float = option(0.35, group=DATA, help="smallest crop scale relative to the native image")
    max_scale: float = option(1.0, group=DATA, help="largest crop scale relative to the native image")
    colour_weight: float = option(1.0, group=DATA, help="draw colour photos this many times as often as grey ones")
    permute_channels: float = option(0.0, group=DATA, help="probability of shuffling a window's RGB channels")
    preset: str = option("small", group=NETWORK, choices=DDPM_PRESETS,
                         help="network size: tiny (tests, ~0.4 M), small (the builtin's, ~7 M), base (~11 M)")
    conditioning: str = option("concat", group=NETWORK, choices=("concat", "unconditional"),
                               help="concat: the network sees mask + masked image; unconditional: x_t only "
                                    "(RePaint's setting)")
    schedule: str = option("cosine", group=NETWORK, choices=("cosine", "linear"), help="noise schedule")
    prediction: str = option("epsilon", group=NETWORK, choices=("epsilon", "v"),
                             help="network target: the noise (epsilon) or v = sqrt(ab) noise - sqrt(1-ab) x0")
    init_from: str | None = option(None, group=NETWORK, type=str,
                                   help="start from this model folder's weights (same --preset)")
    loss_region: str = option("masked", group=NETWORK, choices=("masked", "all"),
                              help="where the MSE is averaged: each window's hole, or every pixel")
    focus_strength: float = option(1.0, group=NETWORK,
                                   help="with --focus_fraction: draw that share of timesteps below this noise "
                                        "level (0-1]")
    focus_fraction: float = option(0.0, group=NETWORK,
                                   help="share of timesteps drawn below --focus_strength (train where --init/"
                                        "--strength sampling works)")
    ema_decay: float = option(0.999, help="EMA decay of the exported weights (diffusers EMAModel, warm-up "
                                          "(1+s)/(10+s))")
    steps: int = redefault(TrainerConfig, "steps", 2000)
    batch: int = redefault(TrainerConfig, "batch", 16)
    lr: float = redefault(TrainerConfig, "lr", 2e-4)
    lr_scheduler: str = redefault(TrainerConfig, "lr_scheduler", "cosine")
    warmup_steps: int = redefault(TrainerConfig, "warmup_steps", 100)
    weight_decay: float = redefault(TrainerConfig, "weight_decay", 0.0)
    seed: int = redefault(TrainerConfig, "seed", 0)
    save_every: int = redefault(TrainerConfig, "save_every", 250)
    log_every: int = redefault(TrainerConfig, "log_every", 25)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The mask generators of ``mask_kinds``."""
        return tuple(k.strip() for k in self.mask_kinds.split(",") if k.strip())

    def validate(self) -> "DdpmTrainConfig":
        """Check every value; raise a one-line :class:`InpaintKitError` naming the bad one."""
        from ..masks import MASK_KINDS

        super().validate()
        bad = [k for k in self.kinds if k not in MASK_KINDS]
        if bad or not self.kinds:
            raise InpaintKitError(f"--mask_kinds {self.mask_kinds}: unknown {', '.join(bad) or '(none given)'}; "
                                  f"choose from {', '.join(MASK_KINDS)}")
        if self.size < 1:
            raise InpaintKitError(f"--size {self.size}: must be at least 1")
        if not 0 < self.focus_strength <= 1 or not 0 <= self.focus_fraction <= 1:
            raise InpaintKitError(f"need 0 < --focus_strength <= 1 and 0 <= --focus_fraction <= 1 "
                                  f"(got {self.focus_strength}, {self.focus_fraction})")
        if not 0 < self.min_scale <= self.max_scale:
            raise InpaintKitError(f"need 0 < --min_scale <= --max_scale (got {self.min_scale}, {self.max_scale})")
        if not 0 <= self.ema_decay < 1:
            raise InpaintKitError(f"--ema_decay {self.ema_decay}: must be in [0, 1)")
        if not 0 <= self.permute_channels <= 1 or not self.colour_weight > 0:
            raise InpaintKitError(f"--permute_channels {self.permute_channels} must be in [0, 1] and --colour_weight "
                                  f"{self.colour_weight} positive")
        return self
