"""The config of ``inpaint-kit train-lora`` (no torch: the CLI builds its flags from these fields)."""

from __future__ import annotations

from dataclasses import dataclass

from ...engine import DEFAULT_MODEL
from ...errors import InpaintKitError
from ..config import CHECKPOINTS, DATA, MASK_MODES, MASK_SOURCES, TRAINS, TrainerConfig, option, redefault

TRAIN_MODES = ("lora", "attn", "text_encoder")
LORA_WEIGHTS = "lora_unet.safetensors"  # diffusers LoRA format (pipe.load_lora_weights)
PARTIAL_WEIGHTS = "unet_partial_tuned.safetensors"  # plain UNet state dict of the tuned attention weights
PRIOR = "DreamBooth prior preservation (on with --class_data_dir)"


@dataclass
class LoraTrainConfig(TrainerConfig):
    """A LoRA / partial fine-tuning run of an SD inpainting model (``inpaint-kit train-lora``)."""

    data: str = redefault(TrainerConfig, "data", "",
                          help="folder with imgs/ and masks/ (black = repair) or masks_inverted/ (white = repair), "
                               "paired by stem")
    output_dir: str = redefault(TrainerConfig, "output_dir", "weights/lora")
    model: str = option(DEFAULT_MODEL, group=DATA, help="base SD inpainting model: hub id, diffusers folder or single file")
    size: int = option(512, group=DATA, help="training crop side in pixels (multiple of 8)")
    mask_mode: str = option("black", group=DATA, choices=MASK_MODES, help="which colour marks repair in masks/")
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
    instance_prompt: str | None = option(None, group=PRIOR,
                                         help="caption of your images, e.g. 'a mural of sks cave'")
    class_prompt: str | None = option(None, group=PRIOR,
                                      help="caption of the class, e.g. 'a mural'")
    class_data_dir: str | None = option(None, group=PRIOR,
                                        resume="change", help="class images; missing ones are generated first")
    num_class_images: int = option(100, group=PRIOR,
                                   help="class images wanted")
    prior_loss_weight: float = option(1.0, group=PRIOR,
                                      help="weight of the class loss")
    class_steps: int = option(25, group=PRIOR, resume="change",
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
