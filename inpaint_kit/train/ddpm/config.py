"""The config of ``inpaint-kit train-ddpm`` (no torch: the CLI builds its flags from these fields)."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import InpaintKitError
from ...maskgen import GENERATORS, MASK_KINDS
from ..config import DATA, TrainerConfig, option, redefault

DDPM_PRESETS = ("tiny", "small", "base")  # = inpaint_kit.ddpm.unet.PRESETS (kept torch-free here; tested)
DDPM_WEIGHTS = ("model.safetensors", "config.json")  # a DDPM model folder: EMA weights + the network's config
NETWORK = "network and objective"


@dataclass
class DdpmTrainConfig(TrainerConfig):
    """A from-scratch DDPM inpainter run (``inpaint-kit train-ddpm``). The output folder is a model folder
    (``config.json`` + EMA ``model.safetensors``) that ``--model <output_dir>`` loads."""

    data: str = redefault(TrainerConfig, "data", "", help="folder of training images (searched recursively)")
    output_dir: str = redefault(TrainerConfig, "output_dir", "",
                                help="the model folder: config.json + model.safetensors (EMA weights), "
                                     "training_config.json, checkpoints/, logs/, validation/")
    size: int = option(64, group=DATA, help="training window side (a multiple of the network's downsampling)")
    mask_kinds: str = option(",".join(MASK_KINDS), group=DATA,
                             help="comma-separated mask generators to train on (inpaint_kit.maskgen)")
    min_scale: float = option(0.35, group=DATA, help="smallest crop scale relative to the native image")
    max_scale: float = option(1.0, group=DATA, help="largest crop scale relative to the native image")
    colour_weight: float = option(1.0, group=DATA, help="draw colour photos this many times as often as grey ones")
    permute_channels: float = option(0.0, group=DATA, help="probability of shuffling a window's RGB channels")
    augment: float = option(0.0, group=DATA,
                            help="probability of each scan-like change of a window: grey or sepia, film grain, "
                                 "JPEG artefacts (0 = photos as they are)")
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
        super().validate()
        bad = [k for k in self.kinds if k not in GENERATORS]
        if bad or not self.kinds:
            raise InpaintKitError(f"--mask_kinds {self.mask_kinds}: unknown {', '.join(bad) or '(none given)'}; "
                                  f"choose from {', '.join(GENERATORS)}")
        if self.size < 1:
            raise InpaintKitError(f"--size {self.size}: must be at least 1")
        if not 0 < self.focus_strength <= 1 or not 0 <= self.focus_fraction <= 1:
            raise InpaintKitError(f"need 0 < --focus_strength <= 1 and 0 <= --focus_fraction <= 1 "
                                  f"(got {self.focus_strength}, {self.focus_fraction})")
        if not 0 < self.min_scale <= self.max_scale:
            raise InpaintKitError(f"need 0 < --min_scale <= --max_scale (got {self.min_scale}, {self.max_scale})")
        if not 0 <= self.ema_decay < 1:
            raise InpaintKitError(f"--ema_decay {self.ema_decay}: must be in [0, 1)")
        if not 0 <= self.augment <= 1:
            raise InpaintKitError(f"--augment {self.augment}: must be in [0, 1]")
        if not 0 <= self.permute_channels <= 1 or not self.colour_weight > 0:
            raise InpaintKitError(f"--permute_channels {self.permute_channels} must be in [0, 1] and --colour_weight "
                                  f"{self.colour_weight} positive")
        return self
