"""The config of a thin-filler run (``inpaint-kit train-thinfill``); no torch here."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import InpaintKitError
from ...maskgen import GENERATORS
from ..config import DATA, TrainerConfig, option, redefault

THINFILL_WEIGHTS = ("model.safetensors", "config.json")  # a thin-filler model folder (inpaint_kit.thinfill)
NETWORK = "network"
THIN_KINDS = "thin,cracks,stripes,lama_thin"


@dataclass
class ThinFillTrainConfig(TrainerConfig):
    """A thin-filler run. The output folder is a model folder (``config.json`` + EMA ``model.safetensors``)
    that ``--thin_model <output_dir>`` loads."""

    data: str = redefault(TrainerConfig, "data", "", help="folder of training photos (searched recursively)")
    output_dir: str = redefault(TrainerConfig, "output_dir", "",
                                help="the model folder: config.json + model.safetensors (EMA weights), "
                                     "training_config.json, checkpoints/, logs/")
    size: int = option(96, group=DATA, help="training window side (a multiple of the network's downsampling)")
    mask_kinds: str = option(THIN_KINDS, group=DATA,
                             help="comma-separated mask generators (inpaint_kit.maskgen)")
    max_width: float = option(15.0, group=DATA,
                              help="mask components wider than this (px, geometry.component_widths) are dropped: "
                                   "the filler only ever sees thin damage")
    min_scale: float = option(0.35, group=DATA, help="smallest crop scale relative to the native photo")
    max_scale: float = option(1.0, group=DATA, help="largest crop scale relative to the native photo")
    augment: float = option(0.5, group=DATA,
                            help="probability of each scan-like change of a window: grey or sepia, film grain, "
                                 "JPEG artefacts (0 = photos as they are)")
    channels: str = option("32,64,96", group=NETWORK, help="U-Net channels per level (one 2x downsampling between)")
    base_fill: str = option("ns", group=NETWORK, choices=("ns", "telea"), help="the classical fill the network refines")
    ema_decay: float = option(0.999, help="EMA decay of the exported weights")
    steps: int = redefault(TrainerConfig, "steps", 20000)
    batch: int = redefault(TrainerConfig, "batch", 16)
    lr: float = redefault(TrainerConfig, "lr", 1e-3)
    lr_scheduler: str = redefault(TrainerConfig, "lr_scheduler", "cosine")
    warmup_steps: int = redefault(TrainerConfig, "warmup_steps", 200)
    weight_decay: float = redefault(TrainerConfig, "weight_decay", 0.0)
    seed: int = redefault(TrainerConfig, "seed", 0)
    save_every: int = redefault(TrainerConfig, "save_every", 500)
    log_every: int = redefault(TrainerConfig, "log_every", 50)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k.strip() for k in self.mask_kinds.split(",") if k.strip())

    @property
    def channel_list(self) -> tuple[int, ...]:
        return tuple(int(c) for c in self.channels.split(",") if c.strip())

    def validate(self) -> "ThinFillTrainConfig":
        """Check every value; raise a one-line :class:`InpaintKitError` naming the bad one."""
        super().validate()
        bad = [k for k in self.kinds if k not in GENERATORS]
        if bad or not self.kinds:
            raise InpaintKitError(f"--mask_kinds {self.mask_kinds}: unknown {', '.join(bad) or '(none given)'}; "
                                  f"choose from {', '.join(GENERATORS)}")
        try:
            channels = self.channel_list
        except ValueError:
            channels = ()
        if not channels or min(channels) < 1:
            raise InpaintKitError(f"--channels {self.channels}: comma-separated positive integers, e.g. 32,64,96")
        if self.size < 8 or self.size % 2 ** (len(channels) - 1):
            raise InpaintKitError(f"--size {self.size}: must be at least 8 and a multiple of "
                                  f"{2 ** (len(channels) - 1)} (the network's downsampling)")
        if not self.max_width >= 1:
            raise InpaintKitError(f"--max_width {self.max_width}: must be at least 1 pixel")
        if not 0 < self.min_scale <= self.max_scale:
            raise InpaintKitError(f"need 0 < --min_scale <= --max_scale (got {self.min_scale}, {self.max_scale})")
        if not 0 <= self.augment <= 1 or not 0 <= self.ema_decay < 1:
            raise InpaintKitError(f"--augment {self.augment} must be in [0, 1] and --ema_decay {self.ema_decay} "
                                  "in [0, 1)")
        return self
