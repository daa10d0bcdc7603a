"""The config of a damage-detector training run (``inpaint-kit train-detect``); no torch here."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import InpaintKitError
from ..config import DATA, TrainerConfig, option, redefault

DETECT_PRESETS = ("tiny", "small", "base", "wide")  # = inpaint_kit.detect.network.PRESETS (kept torch-free; tested)
DETECT_WEIGHTS = ("model.safetensors", "config.json")  # a detector folder: --model <output_dir> loads it
LOSSES = ("bce_dice", "bce_tversky", "bce")
NETWORK = "network and loss"
DAMAGE = "synthetic damage"


def _kinds() -> str:
    from ...detect.damage import KINDS

    return ",".join(KINDS)


@dataclass
class DetectTrainConfig(TrainerConfig):
    """A damage-detector run: a U-Net trained on clean photos with synthetic damage (and optionally labelled
    pairs); the output folder is a detector (``config.json`` + ``model.safetensors``, threshold included)."""

    data: str = redefault(TrainerConfig, "data", "",
                          help="folder of clean photographs (searched recursively); synthetic damage is drawn on them")
    output_dir: str = redefault(TrainerConfig, "output_dir", "",
                                help="the detector folder: config.json + model.safetensors, training_config.json, "
                                     "checkpoints/, logs/, validation/")
    val_images: str = option("", group=DATA,
                             help="comma-separated file names under --data kept out of training for the validation "
                                  "split (default: every 8th image in sorted order)")
    pairs: str | None = option(None, group=DATA, type=str, resume="change",
                               help="optional folder with imgs/ + masks/ of real, labelled damage mixed in")
    pairs_fraction: float = option(0.25, group=DATA, help="share of samples taken from --pairs when given")
    mask_mode: str = option("black", group=DATA, choices=("black", "white"),
                            help="which colour marks damage in --pairs masks/")
    size: int = option(192, group=DATA, help="training crop side in pixels (a multiple of the network's 2^levels)")
    photo_scale: list[float] = option(group=DATA, type=float, nargs=2, metavar=("MIN", "MAX"),
                                      factory=lambda: [0.4, 3.0],
                                      help="crop scale range vs the photo's native resolution (log-uniform; 3 = "
                                           "the photo upscaled 3x, as a scan finer than its detail)")
    kinds: str = option(_kinds(), group=DAMAGE, help="comma-separated damage kinds to draw")
    hold_out: str | None = option(None, group=DAMAGE, type=str,
                                  help="keep one setting out of training, reported separately by eval-detect: "
                                       "kind:<kind>, tone:<colour|grey|sepia> or crease")
    clean_fraction: float = option(0.25, group=DAMAGE, help="share of samples with no damage (hard negatives only)")
    damage_scale: list[float] = option(group=DAMAGE, type=float, nargs=2, metavar=("MIN", "MAX"),
                                       factory=lambda: [0.5, 2.5], help="damage size factor range (log-uniform)")
    preset: str = option("small", group=NETWORK, choices=DETECT_PRESETS,
                         help="network size: tiny (tests), small (the builtin's), base, wide (six levels)")
    init_from: str | None = option(None, group=NETWORK, type=str,
                                   help="start from this detector folder's weights (same --preset), e.g. to continue "
                                        "with new damage settings")
    loss: str = option("bce_dice", group=NETWORK, choices=LOSSES,
                       help="BCE plus soft Dice or Tversky (thin structures), or BCE alone")
    tversky: list[float] = option(group=NETWORK, type=float, nargs=2, metavar=("ALPHA", "BETA"),
                                  factory=lambda: [0.3, 0.7],
                                  help="Tversky weights of false positives and false negatives (bce_tversky)")
    ema_decay: float = option(0.995, group=NETWORK, help="EMA decay of the exported weights (0 = no EMA)")
    val_samples: int = option(48, group=NETWORK, resume="change",
                              help="damaged validation samples (plus half as many clean ones) for the threshold")
    max_flagged: float = option(0.005, group=NETWORK, resume="change",
                                help="the threshold is the best-F1 one flagging at most this share of clean pixels")
    steps: int = redefault(TrainerConfig, "steps", 6000)
    batch: int = redefault(TrainerConfig, "batch", 8)
    lr: float = redefault(TrainerConfig, "lr", 2e-3)
    lr_scheduler: str = redefault(TrainerConfig, "lr_scheduler", "cosine")
    warmup_steps: int = redefault(TrainerConfig, "warmup_steps", 200)
    weight_decay: float = redefault(TrainerConfig, "weight_decay", 1e-4)
    seed: int = redefault(TrainerConfig, "seed", 0)
    save_every: int = redefault(TrainerConfig, "save_every", 250)
    log_every: int = redefault(TrainerConfig, "log_every", 25)

    @property
    def kind_list(self) -> tuple[str, ...]:
        """The damage kinds of ``--kinds``."""
        return tuple(k.strip() for k in self.kinds.split(",") if k.strip())

    def damage_settings(self):
        """The generator settings of this run (held-out setting included: ``.training()`` removes it)."""
        from ...detect.damage import DamageSettings

        return DamageSettings(kinds=self.kind_list, clean_fraction=self.clean_fraction,
                              scale=tuple(self.damage_scale), hold_out=self.hold_out)

    def validate(self) -> "DetectTrainConfig":
        """Check every value; raise a one-line :class:`InpaintKitError` naming the bad one."""
        from ...detect.damage import HOLD_OUT_KINDS, KINDS

        super().validate()
        bad = [k for k in self.kind_list if k not in KINDS]
        if bad or not self.kind_list:
            raise InpaintKitError(f"--kinds {self.kinds}: unknown {', '.join(bad) or '(none given)'}; choose from "
                                  f"{', '.join(KINDS)}")
        if self.hold_out is not None:
            if self.hold_out not in HOLD_OUT_KINDS:
                raise InpaintKitError(f"--hold_out {self.hold_out}: use kind:<kind>, tone:<colour|grey|sepia> or "
                                      "crease")
            if self.hold_out.startswith("kind:") and self.kind_list == (self.hold_out[5:],):
                raise InpaintKitError(f"--hold_out {self.hold_out} leaves no damage kind to train on; add --kinds")
        if self.size < 16 or self.size % 16:
            raise InpaintKitError(f"--size {self.size}: must be a positive multiple of 16")
        for name, (lo, hi) in (("photo_scale", self.photo_scale), ("damage_scale", self.damage_scale)):
            if not 0 < lo <= hi:
                raise InpaintKitError(f"--{name} {lo} {hi}: need 0 < MIN <= MAX")
        for name in ("pairs_fraction", "clean_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise InpaintKitError(f"--{name} {getattr(self, name)}: must be in [0, 1]")
        if not 0 <= self.ema_decay < 1:
            raise InpaintKitError(f"--ema_decay {self.ema_decay}: must be in [0, 1)")
        if self.val_samples < 1 or not 0 < self.max_flagged < 1:
            raise InpaintKitError(f"--val_samples {self.val_samples} must be >= 1 and --max_flagged "
                                  f"{self.max_flagged} in (0, 1)")
        if min(self.tversky) < 0 or sum(self.tversky) <= 0:
            raise InpaintKitError(f"--tversky {self.tversky}: weights must be >= 0, not both 0")
        return self
