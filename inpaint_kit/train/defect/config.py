"""The config of a DefectFill run (``inpaint-kit train-defect``), declared with :func:`option` so the CLI
builds its flags from it (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass

from ...engine import DEFAULT_MODEL
from ...errors import InpaintKitError
from ..config import DATA, TRAINS, TrainerConfig, option, redefault
from .data import LAYOUTS

DEFECT_WEIGHTS = "lora_unet.safetensors"  # diffusers LoRA format: unet.* and text_encoder.* keys
TOKEN_FROM_TYPE = "defect_type"  # --token value meaning "the defect type's name" (the source system's variant)
LOSSES = "DefectFill losses (L = lambda_def*L_def + lambda_obj*L_obj + lambda_attn*L_attn)"


@dataclass
class DefectTrainConfig(TrainerConfig):
    """A DefectFill run: LoRA on the UNet attention and the text encoder of an SD inpainting model, trained
    on a few reference defects with the defect, object and attention losses."""

    data: str = redefault(TrainerConfig, "data", "",
                          help="dataset root holding <object_class>/ in the MVTec AD layout "
                               "(test/<defect>/, ground_truth/<defect>/) or the source layout "
                               "(train/defective/<defect>/, train/defective_masks/<defect>/)")
    output_dir: str = redefault(TrainerConfig, "output_dir", "weights/defect")
    steps: int = redefault(TrainerConfig, "steps", 1000)
    lr: float = redefault(TrainerConfig, "lr", 2e-4)
    object_class: str = option("", group=DATA, help="object folder under --data, e.g. bottle (required)")
    defect_type: str = option("", group=DATA, help="the defect to learn, e.g. broken_large (required)")
    layout: str = option("auto", group=DATA, choices=LAYOUTS, help="data layout: mvtec, source, or auto (the one present)")
    num_refs: int = option(0, group=DATA, help="few-shot: train on N reference pairs chosen reproducibly by --seed (0 = all)")
    size: int = option(512, group=DATA, help="references are resized to --size x --size (512 for SD2-inpainting)")
    model: str = option(DEFAULT_MODEL, group=DATA, help="base SD inpainting model: hub id, diffusers folder or single file")
    token: str = option("sks", group=TRAINS,
                        help=f"the defect's word in the prompts; '{TOKEN_FROM_TYPE}' uses the defect type's name "
                             "(the source system's variant)")
    object_name: str | None = option(None, type=str, group=TRAINS,
                                     help="the object's word in 'A <object> with <token>' (default: --object_class "
                                          "with _ as spaces)")
    # The same flags as train-lora's --rank/--alpha (train-defect's old spellings stay accepted); a smaller
    # default rank: one defect learned from a few references.
    lora_rank: int = option(8, group=TRAINS, flag="--rank", aliases=("--lora_rank",),
                            help="LoRA rank (UNet attention and text encoder)")
    lora_alpha: float | None = option(None, type=float, group=TRAINS, flag="--alpha", aliases=("--lora_alpha",),
                                      help="LoRA alpha (default: = rank)")
    lambda_def: float = option(0.5, group=LOSSES, help="weight of the defect loss (noise error inside the defect mask)")
    lambda_obj: float = option(0.2, group=LOSSES, help="weight of the object loss (whole image, adjusted mask)")
    lambda_attn: float = option(0.05, group=LOSSES,
                                help="weight of the attention loss (token's cross-attention vs the defect mask); "
                                     "lower it to 0.02 if it does not converge; 0 = off (no attention capture)")
    attn_res: int = option(0, group=LOSSES,
                           help="side of the attention maps compared with the mask: every cross-attention layer's map "
                                "is area-resized to it, then averaged (0 = size/32, i.e. 16 at 512)")

    @property
    def alpha(self) -> float:
        """The effective LoRA alpha (``lora_alpha`` or, when unset, the rank)."""
        return float(self.lora_rank if self.lora_alpha is None else self.lora_alpha)

    @property
    def attention_side(self) -> int:
        """The attention maps' side in latent-grid cells (``attn_res`` or ``size // 32``)."""
        return self.attn_res or max(1, self.size // 32)

    @property
    def token_word(self) -> str:
        """The word standing for the defect in prompts."""
        return self.defect_type if self.token == TOKEN_FROM_TYPE else self.token

    @property
    def object_word(self) -> str:
        """The word standing for the object in prompts."""
        return self.object_name or self.object_class.replace("_", " ")

    @property
    def defect_prompt(self) -> str:
        """The defect loss's prompt, ``A photo of <token>``."""
        return f"A photo of {self.token_word}"

    @property
    def object_prompt(self) -> str:
        """The object loss's prompt, ``A <object> with <token>``; also the generation prompt."""
        return f"A {self.object_word} with {self.token_word}"

    def validate(self) -> "DefectTrainConfig":
        """Check every value; raise a one-line :class:`InpaintKitError` naming the bad one."""
        super().validate()
        for name in ("object_class", "defect_type"):
            if not getattr(self, name):
                raise InpaintKitError(f"--{name} is required: {self.__dataclass_fields__[name].metadata['help']}")
        if not self.token.strip() or len(self.token.split()) != 1:
            raise InpaintKitError(f"--token {self.token!r}: one word, e.g. sks (or {TOKEN_FROM_TYPE})")
        if self.size < 8 or self.size % 8:
            raise InpaintKitError(f"--size {self.size}: must be a multiple of 8 (the VAE downsamples by 8)")
        if self.lora_rank < 1:
            raise InpaintKitError(f"--rank {self.lora_rank}: must be at least 1")
        if self.lora_alpha is not None and not self.lora_alpha > 0:
            raise InpaintKitError(f"--alpha {self.lora_alpha}: must be positive")
        for name in ("lambda_def", "lambda_obj", "lambda_attn"):
            if getattr(self, name) < 0:
                raise InpaintKitError(f"--{name} {getattr(self, name)}: must not be negative")
        if self.lambda_def + self.lambda_obj + self.lambda_attn == 0:
            raise InpaintKitError("--lambda_def, --lambda_obj and --lambda_attn are all 0: nothing to train")
        if self.attn_res < 0 or self.attention_side > self.size // 8:
            raise InpaintKitError(f"--attn_res {self.attn_res}: must be between 1 and --size/8 ({self.size // 8}), "
                                  "or 0 for size/32")
        if self.num_refs < 0:
            raise InpaintKitError(f"--num_refs {self.num_refs}: must be 0 (all) or more")
        return self
