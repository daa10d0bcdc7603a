"""The one config of a LoRA / partial fine-tuning run, shared by ``inpaint-kit train-lora``, the
``scripts/train_lora_inpaint.py`` front-end and the Python API (:func:`inpaint_kit.train.loop.train`).

Defaults live here once; the CLI reads them from the dataclass fields so the two never disagree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..engine import DEFAULT_MODEL
from ..errors import InpaintKitError

TRAIN_MODES = ("lora", "attn", "text_encoder")
MASK_SOURCES = ("pairs", "random", "mixed")
MIXED_PRECISIONS = ("no", "fp16", "bf16")
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")

LORA_WEIGHTS = "lora_unet.safetensors"  # diffusers LoRA format (pipe.load_lora_weights)
PARTIAL_WEIGHTS = "unet_partial_tuned.safetensors"  # plain UNet state dict of the tuned attention weights
CONFIG_NAME = "training_config.json"


@dataclass
class LoraTrainConfig:
    """Everything a fine-tuning run needs; :meth:`validate` raises :class:`InpaintKitError` on bad values."""

    data_root: str = ""
    out: str = "weights/lora"
    model: str = DEFAULT_MODEL
    size: int = 512
    batch: int = 1
    accum: int = 1
    lr: float = 1e-4
    steps: int = 1000
    rank: int = 16
    alpha: float | None = None  # LoRA alpha; None means alpha = rank (scale 1)
    # lora: UNet attention LoRA; attn: UNet attention projections trained directly (partial UNet);
    # text_encoder: add a LoRA on the text encoder's attention too (with lora only).
    train: list[str] = field(default_factory=lambda: ["lora"])
    mask_mode: str = "black"
    mask_source: str = "mixed"
    mask_loss_weight: float = 1.0  # loss weight inside the repaint mask (outside is 1)
    damage_aware: bool = True  # with random masks, user-marked damage gets loss weight 0
    prompt: str = ""
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    save_every: int = 500
    checkpoints_total_limit: int = 2
    resume: str | None = None  # a checkpoint folder, or the output folder / "latest" for its newest
    seed: int = 1
    lr_scheduler: str = "constant"
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    validate_every: int = 0
    validation_image: str | None = None
    validation_mask: str | None = None
    validation_prompt: str | None = None
    validation_steps: int = 20
    # DreamBooth prior preservation (off unless class_prompt/class_data_dir are given)
    instance_prompt: str | None = None
    class_prompt: str | None = None
    class_data_dir: str | None = None
    num_class_images: int = 100
    prior_loss_weight: float = 1.0
    class_steps: int = 25  # denoising steps when generating missing class images
    device: str | None = None
    progress: bool = True

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
        """File name of the final weights in ``out``."""
        return PARTIAL_WEIGHTS if self.unet_mode == "attn" else LORA_WEIGHTS

    def validate(self) -> "LoraTrainConfig":
        """Check every value; raise a one-line :class:`InpaintKitError` naming the bad one."""
        if not self.data_root:
            raise InpaintKitError("--data_root is required: a folder with imgs/ and masks/ (or masks_inverted/)")
        positive = {"size": self.size, "batch": self.batch, "accum": self.accum, "steps": self.steps,
                    "rank": self.rank, "save_every": self.save_every, "validation_steps": self.validation_steps,
                    "class_steps": self.class_steps}
        for name, value in positive.items():
            if value < 1:
                raise InpaintKitError(f"--{name} {value}: must be at least 1")
        if self.size % 8:
            raise InpaintKitError(f"--size {self.size}: must be a multiple of 8 (the VAE downsamples by 8)")
        if not self.lr > 0:
            raise InpaintKitError(f"--lr {self.lr}: must be positive")
        if self.alpha is not None and not self.alpha > 0:
            raise InpaintKitError(f"--alpha {self.alpha}: must be positive")
        for name, value, allowed in (("mask_source", self.mask_source, MASK_SOURCES),
                                     ("mixed_precision", self.mixed_precision, MIXED_PRECISIONS),
                                     ("lr_scheduler", self.lr_scheduler, LR_SCHEDULERS),
                                     ("mask_mode", self.mask_mode, ("black", "white"))):
            if value not in allowed:
                raise InpaintKitError(f"--{name} {value!r}: choose one of {', '.join(allowed)}")
        bad = [t for t in self.train if t not in TRAIN_MODES]
        if bad or not self.train:
            raise InpaintKitError(f"--train {' '.join(self.train)}: choose from {', '.join(TRAIN_MODES)}")
        if "attn" in self.train and ("lora" in self.train or "text_encoder" in self.train):
            raise InpaintKitError("--train attn trains the UNet attention weights directly; it cannot be combined "
                                  "with lora or text_encoder")
        if self.warmup_steps < 0 or self.mask_loss_weight < 0 or self.prior_loss_weight < 0:
            raise InpaintKitError("--warmup_steps, --mask_loss_weight and --prior_loss_weight must not be negative")
        if self.validate_every and not (self.validation_image and self.validation_mask):
            raise InpaintKitError("--validate_every needs --validation_image and --validation_mask")
        if self.checkpoints_total_limit < 1:
            raise InpaintKitError(f"--checkpoints_total_limit {self.checkpoints_total_limit}: must be at least 1")
        if self.device not in (None, "cpu", "cuda"):
            raise InpaintKitError(f"--device {self.device!r}: use cpu or cuda (pick GPUs with accelerate launch / "
                                  "CUDA_VISIBLE_DEVICES)")
        if self.with_prior and not self.class_prompt:
            raise InpaintKitError("--class_data_dir needs --class_prompt (e.g. 'a mural') for prior preservation")
        if self.with_prior and self.num_class_images < 1:
            raise InpaintKitError(f"--num_class_images {self.num_class_images}: must be at least 1")
        return self

    def to_dict(self) -> dict:
        """A JSON-ready dict of every field (recorded in ``training_config.json`` and checkpoints)."""
        return dataclasses.asdict(self)

    @classmethod
    def field_defaults(cls) -> dict:
        """Field name -> default value, for building the argparse parser from this dataclass."""
        out = {}
        for f in dataclasses.fields(cls):
            out[f.name] = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        return out
