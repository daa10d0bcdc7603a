"""The network: diffusers' ``UNet2DModel`` predicting the noise or v (``ModelConfig.prediction``;
:func:`inpaint_kit.ddpm.schedule.to_eps` converts v to noise for the samplers) (sinusoidal timestep embedding and time MLP at every
level, skip connections, attention at low resolution) wrapped with the inpainting conditioning, plus
the model folder format (``config.json`` + ``model.safetensors``) that rebuilds it.

Conditioning:
- ``concat``: the network sees ``[x_t, mask, masked image]`` stacked on channels (3 + 1 + 3 = 7); it
  learns to use the known pixels directly, which makes it fast to train.
- ``unconditional``: the network sees only ``x_t`` (3 channels); the known region enters through
  re-injection during sampling alone (RePaint's setting).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import InpaintKitError
from ..images import atomic_write

MARKER = "ddpm"  # config.json["_inpaint_kit"]; inpaint_kit.engine.is_ddpm_model looks for it
CONDITIONINGS = ("concat", "unconditional")
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


@dataclass
class ModelConfig:
    """Everything needed to rebuild the network and its noise schedule."""

    conditioning: str = "concat"
    resolution: int = 64  # training window side; the engine tiles larger canvases with it
    block_out_channels: tuple[int, ...] = (32, 64, 128, 192)
    layers_per_block: int = 1
    attention_levels: tuple[bool, ...] = (False, False, False, True)  # attention at the lowest resolution
    norm_num_groups: int = 16
    schedule: str = "cosine"  # "cosine" | "linear"
    num_train_timesteps: int = 1000
    prediction: str = "epsilon"
    extra: dict = field(default_factory=dict)  # training recipe etc., kept for provenance

    def __post_init__(self):
        self.block_out_channels = tuple(self.block_out_channels)
        self.attention_levels = tuple(self.attention_levels)
        if self.conditioning not in CONDITIONINGS:
            raise InpaintKitError(f"conditioning {self.conditioning!r} is not one of {', '.join(CONDITIONINGS)}")
        if len(self.attention_levels) != len(self.block_out_channels):
            raise InpaintKitError("attention_levels needs one entry per block_out_channels entry")
        if self.resolution % self.multiple:
            raise InpaintKitError(
                f"resolution {self.resolution} is not a multiple of the network's downsampling {self.multiple}; "
                f"use e.g. {max(1, round(self.resolution / self.multiple)) * self.multiple}"
            )

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (one 2x downsampling between levels)."""
        return 2 ** (len(self.block_out_channels) - 1)

    @property
    def in_channels(self) -> int:
        return 7 if self.conditioning == "concat" else 3

    def to_json(self) -> dict:
        return {"_inpaint_kit": MARKER, "format_version": 1, **asdict(self)}

    @classmethod
    def from_json(cls, d: dict) -> "ModelConfig":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


PRESETS = {
    # ~0.4 M params: tests only
    "tiny": dict(block_out_channels=(16, 32), layers_per_block=1, attention_levels=(False, True), norm_num_groups=8),
    # ~7.1 M params: the builtin model's network. 64x64 windows down to 8x8 with attention there; the
    # thin 32-channel full-resolution level keeps a batch-16 step ~2.4x cheaper than (48, 96, 192).
    "small": dict(block_out_channels=(32, 64, 128, 192), layers_per_block=1,
                  attention_levels=(False, False, False, True), norm_num_groups=16),
    # ~11 M params: for a GPU or a long CPU run
    "base": dict(block_out_channels=(64, 128, 256, 256), layers_per_block=2,
                 attention_levels=(False, False, True, True), norm_num_groups=32),
}


class InpaintUNet(nn.Module):
    """``eps = net(x_t, t, mask, masked)``. Shapes: x_t (B,3,H,W) in [-1,1] scale, t (B,) long,
    mask (B,1,H,W) float 1 = repaint, masked (B,3,H,W) = known image with the hole zeroed."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        from diffusers import UNet2DModel

        self.config = config
        down = tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in config.attention_levels)
        up = tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(config.attention_levels))
        self.unet = UNet2DModel(
            sample_size=config.resolution,
            in_channels=config.in_channels,
            out_channels=3,
            block_out_channels=config.block_out_channels,
            layers_per_block=config.layers_per_block,
            down_block_types=down,
            up_block_types=up,
            attention_head_dim=32,
            norm_num_groups=config.norm_num_groups,
        )

    def forward(self, xt: torch.Tensor, t: torch.Tensor, mask: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        if self.config.conditioning == "concat":
            xt = torch.cat([xt, mask.to(xt.dtype), masked.to(xt.dtype)], dim=1)  # (B, 7, H, W)
        return self.unet(xt, t).sample


def count_parameters(net: nn.Module) -> int:
    """Number of parameters (for logs and the recipe)."""
    return sum(p.numel() for p in net.parameters())


def save_model(folder: str | Path, net: InpaintUNet, state_dict: dict | None = None, dtype=torch.float32) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (``state_dict`` if given, e.g. EMA weights), atomically."""
    from safetensors.torch import save_file

    folder = Path(folder)
    sd = state_dict if state_dict is not None else net.state_dict()
    sd = {k: v.detach().to("cpu", dtype).contiguous() for k, v in sd.items()}
    atomic_write(folder / WEIGHTS_NAME, lambda tmp: save_file(sd, str(tmp), metadata={"format": "pt"}))
    (folder / WEIGHTS_NAME).chmod(0o644)  # safetensors creates 0600 files; package data must be readable
    text = json.dumps(net.config.to_json(), indent=2)
    atomic_write(folder / CONFIG_NAME, lambda tmp: Path(tmp).write_text(text + "\n"))
    return folder


def read_config(folder: str | Path) -> ModelConfig:
    """Read a model folder's config, with one-line errors for anything that is not a DDPM model."""
    folder = Path(folder)
    cfg = folder / CONFIG_NAME
    if not folder.is_dir() or not cfg.is_file():
        raise InpaintKitError(f"{folder}: not a DDPM model folder (no {CONFIG_NAME}); train one with train-ddpm")
    try:
        d = json.loads(cfg.read_text())
    except ValueError as e:
        raise InpaintKitError(f"{cfg}: not valid JSON ({e}); re-export the model")
    if d.get("_inpaint_kit") != MARKER:
        raise InpaintKitError(f"{cfg}: not an inpaint-kit DDPM config (no \"_inpaint_kit\": \"ddpm\")")
    try:
        return ModelConfig.from_json(d)
    except TypeError as e:
        raise InpaintKitError(f"{cfg}: bad model config ({e})")


def load_model(folder: str | Path, device="cpu", dtype=torch.float32) -> InpaintUNet:
    """Rebuild the network from a model folder and load its weights (eval mode)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    config = read_config(folder)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise InpaintKitError(f"{folder}: no {WEIGHTS_NAME}; the model folder is incomplete")
    net = InpaintUNet(config)
    try:
        sd = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise InpaintKitError(f"{weights}: not a readable safetensors file ({e})")
    try:
        net.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise InpaintKitError(
            f"{weights}: weights do not match {CONFIG_NAME} ({first[1].strip() if len(first) > 1 else first[0]})"
        )
    return net.to(device=device, dtype=dtype).eval()
