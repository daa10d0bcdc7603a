"""The damage detector's network: a small U-Net sized for CPU speed, and its model folder format
(``config.json`` + ``model.safetensors``) that rebuilds it.

Shape: ``(B, 3, H, W)`` RGB in [-1, 1] -> ``(B, 1, H, W)`` logits (damage where > 0), H and W multiples
of :attr:`DetectorConfig.multiple`. Every level has two 3x3 conv + BatchNorm + ReLU layers; levels are
joined by 2x max-pooling down and 2x bilinear upsampling + concatenation up. The full-resolution level is
narrow (thin scratches need full-resolution features, but most of the cost is there); context comes from
the deeper, wider levels (receptive field about 140 px for 5 levels).

BatchNorm, not GroupNorm/InstanceNorm: in eval mode it is a per-channel affine map, so a pixel's output
depends only on its neighbourhood, never on the tile it was computed in (tiled inference equals whole-image
inference away from tile borders; :mod:`inpaint_kit.detect.tiling`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InpaintKitError
from ..images import atomic_write
from .folder import CONFIG_NAME, MARKER, WEIGHTS_NAME, is_detector_folder  # noqa: F401 (part of this interface)

PRESETS = {
    # tests only (~7 k parameters)
    "tiny": (4, 8, 16),
    # the builtin detector's network; chosen by measured speed (docs/benchmarks.md, "Damage detection")
    "small": (8, 16, 32, 64, 96),
    "base": (16, 32, 64, 96, 128),
    # six levels: a view about twice as long (receptive field ~300 px), 4x the parameters of small
    "wide": (12, 24, 48, 96, 128, 160),
}
# Test-time views: the dims of a (B, C, H, W) batch each view flips. The probabilities of all a model's views
# are averaged (each flipped back): a flip is as likely a picture as the original, so a false alarm the
# network makes in one view only is halved, while damage seen in both stays (docs/benchmarks.md).
VIEWS = {"none": (), "hflip": (3,), "vflip": (2,), "hvflip": (2, 3)}
TRAINED_VIEWS = ("none", "hflip")  # what train-detect saves (its threshold is chosen with them)


@dataclass
class DetectorConfig:
    """Everything needed to rebuild the network, plus the threshold chosen on validation data."""

    channels: tuple[int, ...] = PRESETS["small"]  # per level, full resolution first
    threshold: float = 0.5  # probability threshold (chosen on the validation split at training time)
    lines: dict | None = None  # the long-line test's settings (scratchlines.LineSettings); None = network only
    views: tuple[str, ...] = ("none",)  # test-time views averaged (VIEWS); the threshold was chosen with them
    extra: dict = field(default_factory=dict)  # training recipe, validation metrics: provenance

    def __post_init__(self):
        self.channels = tuple(int(c) for c in self.channels)
        if len(self.channels) < 2 or min(self.channels) < 1:
            raise InpaintKitError(f"detector channels {self.channels}: need at least 2 levels of >= 1 channel")
        if not 0.0 < self.threshold < 1.0:
            raise InpaintKitError(f"detector threshold {self.threshold}: must be in (0, 1)")
        self.views = tuple(self.views)
        if not self.views or any(v not in VIEWS for v in self.views):
            raise InpaintKitError(f"detector views {list(self.views)}: need one or more of {', '.join(VIEWS)}")

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (one 2x pooling between levels)."""
        return 2 ** (len(self.channels) - 1)

    def to_json(self) -> dict:
        """The ``config.json`` content (marked as a detector)."""
        return {"_inpaint_kit": MARKER, "format_version": 1, **asdict(self)}

    @classmethod
    def from_json(cls, d: dict) -> "DetectorConfig":
        """Rebuild from ``config.json`` content (unknown keys ignored)."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def _block(cin: int, cout: int) -> nn.Sequential:
    """Two 3x3 conv + BN + ReLU (bias-free convs: BN has the bias)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class DetectorNet(nn.Module):
    """The U-Net: ``forward(x (B, 3, H, W) in [-1, 1]) -> logits (B, 1, H, W)``."""

    def __init__(self, config: DetectorConfig):
        super().__init__()
        self.config = config
        ch = config.channels
        self.down = nn.ModuleList([_block(3, ch[0])] + [_block(ch[i - 1], ch[i]) for i in range(1, len(ch))])
        self.up = nn.ModuleList([_block(ch[i + 1] + ch[i], ch[i]) for i in range(len(ch) - 1)])
        self.head = nn.Conv2d(ch[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))  # (B, ch[i], H / 2^i, W / 2^i)
            skips.append(x)
        for i in range(len(self.up) - 1, -1, -1):
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = self.up[i](torch.cat([x, skips[i]], dim=1))  # (B, ch[i], H / 2^i, W / 2^i)
        return self.head(x)


def probability(net: "DetectorNet", x: torch.Tensor, views=("none",)) -> torch.Tensor:
    """Damage probability ``(B, H, W)`` of a batch ``x (B, 3, H, W)`` in [-1, 1]: the mean over ``views``
    (:data:`VIEWS`) of the network's sigmoid, each view flipped back; all views go through one call."""
    flipped = [x.flip(VIEWS[v]) if VIEWS[v] else x for v in views]
    p = torch.sigmoid(net(torch.cat(flipped).contiguous(memory_format=torch.channels_last)).float())[:, 0]
    parts = p.split(len(x))
    return sum(q.flip([d - 1 for d in VIEWS[v]]) if VIEWS[v] else q for q, v in zip(parts, views)) / len(views)


def count_parameters(net: nn.Module) -> int:
    """Number of parameters of ``net``."""
    return sum(p.numel() for p in net.parameters())


def build(preset_or_channels, threshold: float = 0.5, seed: int | None = None) -> DetectorNet:
    """A fresh network of a preset name (``tiny``, ``small``, ``base``) or a channel tuple."""
    channels = PRESETS[preset_or_channels] if isinstance(preset_or_channels, str) else preset_or_channels
    if seed is None:
        return DetectorNet(DetectorConfig(channels, threshold))
    with torch.random.fork_rng(devices=[]):  # seeded initialisation; the caller's RNG is left alone
        torch.manual_seed(seed)
        return DetectorNet(DetectorConfig(channels, threshold))


def save_detector(folder: str | Path, net: DetectorNet, state_dict: dict | None = None,
                  dtype: torch.dtype = torch.float32) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (``state_dict``: e.g. EMA weights; default the net's)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sd = state_dict if state_dict is not None else net.state_dict()
    tensors = {k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous() for k, v in sd.items()}
    atomic_write(folder / WEIGHTS_NAME, lambda p: save_file(tensors, str(p)))
    text = json.dumps(net.config.to_json(), indent=2)
    atomic_write(folder / CONFIG_NAME, lambda p: Path(p).write_text(text))
    return folder


def load_net(folder: str | Path, flag: str = "--model") -> DetectorNet:
    """Rebuild a detector network from its folder (float32, eval mode); one-line errors naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg_path, w_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if not folder.is_dir():
        raise InpaintKitError(f"{flag} {folder}: no such folder; pass builtin, classical or a train-detect output folder")
    if not cfg_path.is_file() or not w_path.is_file():
        raise InpaintKitError(f"{flag} {folder}: needs {CONFIG_NAME} and {WEIGHTS_NAME} (a train-detect output folder)")
    try:
        raw = json.loads(cfg_path.read_text())
    except ValueError as e:
        raise InpaintKitError(f"{cfg_path}: not valid JSON ({e}); re-export the detector")
    if raw.get("_inpaint_kit") != MARKER:
        raise InpaintKitError(f"{flag} {folder}: {cfg_path.name} is not a damage detector's (train one with "
                              "train-detect, or use --model builtin / classical)")
    try:
        config = DetectorConfig.from_json(raw)
    except (InpaintKitError, TypeError, ValueError) as e:
        raise InpaintKitError(f"{cfg_path}: {e}; re-export the detector")
    net = DetectorNet(config)
    try:
        state = load_file(str(w_path))
    except (SafetensorError, OSError) as e:
        raise InpaintKitError(f"{w_path}: not a readable safetensors file ({e}); re-export the detector")
    try:
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise InpaintKitError(f"{w_path}: weights do not fit {cfg_path.name} ({first[:160]}); re-export the detector")
    return net.eval()


def export(run_folder: str | Path, dst: str | Path, lines: bool = True) -> Path:
    """Copy a train-detect run's detector (weights, threshold, validation scores, recipe) into ``dst`` (the
    package's ``assets/detector`` for the builtin), checking that it loads back. ``lines``: give it the
    long-line test (:mod:`inpaint_kit.detect.scratchlines`, default settings) if the run has none."""
    import os

    from .scratchlines import LineSettings

    net = load_net(run_folder, flag="export")
    if lines and net.config.lines is None:
        net.config.lines = LineSettings().to_json()
    save_detector(dst, net)
    for name in (WEIGHTS_NAME, CONFIG_NAME):
        os.chmod(Path(dst) / name, 0o644)  # package data: readable by everyone
    load_net(dst, flag="export")  # fails loudly now rather than on a user's machine
    return Path(dst)
