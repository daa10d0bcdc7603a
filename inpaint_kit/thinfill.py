"""The thin-damage filler: a small feed-forward U-Net that refines a classical fill of thin damage.

A crack a few pixels wide is almost fully determined by its borders, so a smooth interpolation
(OpenCV's Navier-Stokes fill) is already close to the best fill in PSNR; a diffusion sampler spends many
network passes adding texture that costs fidelity there. This network takes the classical fill and the
mask and predicts a correction inside the mask, in one forward pass, deterministically:

    out = fill + mask * net([fill, mask])          # fill: (B, 3, H, W) in [-1, 1], mask: (B, 1, H, W)

It is fully convolutional (any canvas whose sides are multiples of :attr:`ThinFillConfig.multiple`),
trained with an L1 loss inside thin masks (``inpaint-kit train-thinfill``,
:mod:`inpaint_kit.train.thinfill`). A model folder is ``config.json`` (marked ``"_inpaint_kit":
"thinfill"``) + ``model.safetensors``; the shipped one is package data (``assets/thinfill``, its
``RECIPE.md`` says how it was made). :func:`fill_thin` is what the infer path calls.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import InpaintKitError
from .recipe import folder_mark

MARKER = "thinfill"
WEIGHTS_NAME, CONFIG_NAME = "model.safetensors", "config.json"
SHIPPED_DIR = Path(__file__).resolve().parent / "assets" / "thinfill"
BASES = ("ns", "telea")
THIN_FILLS = ("auto", "model", "telea", "ns", "builtin")  # --thin_fill
CONTEXT = 16  # pixels of context around thin damage in each window (docs/benchmarks.md, "Thin damage")
WINDOW = 1024  # longest window side before tiling


@dataclass
class ThinFillConfig:
    """Everything needed to rebuild the network (saved in ``config.json``)."""

    channels: tuple[int, ...] = (32, 64, 96)  # per level; one 2x downsampling between levels
    base: str = "ns"  # the classical fill it refines (OpenCV telea or ns, radius 3)
    radius: int = 3
    extra: dict = field(default_factory=dict)  # training recipe (provenance)

    def __post_init__(self):
        self.channels = tuple(self.channels)
        if self.base not in BASES:
            raise InpaintKitError(f"thinfill base {self.base!r} is not one of {', '.join(BASES)}")

    @property
    def multiple(self) -> int:
        """Canvas sides must be multiples of this."""
        return 2 ** (len(self.channels) - 1)

    def to_json(self) -> dict:
        return {"_inpaint_kit": MARKER, "format_version": 1, **asdict(self)}

    @classmethod
    def from_json(cls, d: dict) -> "ThinFillConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def build_net(config: ThinFillConfig):
    """The network for ``config`` (random weights)."""
    import torch
    from torch import nn

    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.SiLU(), nn.Conv2d(cout, cout, 3, padding=1), nn.SiLU())

    class ThinFillNet(nn.Module):
        """U-Net: [fill, mask] (4 ch) -> correction (3 ch), applied inside the mask only."""

        def __init__(self, cfg: ThinFillConfig):
            super().__init__()
            self.config = cfg
            ch = cfg.channels
            self.inc = block(4, ch[0])
            self.down = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(ch, ch[1:]))
            self.enc = nn.ModuleList(block(b, b) for b in ch[1:])
            self.up = nn.ModuleList(nn.Conv2d(b, a, 3, padding=1) for a, b in zip(ch, ch[1:]))
            self.dec = nn.ModuleList(block(2 * a, a) for a in ch[:-1])
            self.out = nn.Conv2d(ch[0], 3, 3, padding=1)
            nn.init.zeros_(self.out.weight)  # starts as the classical fill itself
            nn.init.zeros_(self.out.bias)

        def forward(self, fill: "torch.Tensor", mask: "torch.Tensor") -> "torch.Tensor":
            h = self.inc(torch.cat([fill, mask * 2 - 1], dim=1))  # (B, c0, H, W)
            skips = [h]
            for down, enc in zip(self.down, self.enc):
                h = enc(down(torch.nn.functional.silu(h)))  # (B, c_l, H / 2^l, W / 2^l)
                skips.append(h)
            skips.pop()
            for up, dec in zip(reversed(self.up), reversed(self.dec)):
                h = up(torch.nn.functional.interpolate(h, scale_factor=2.0, mode="nearest"))
                h = dec(torch.cat([h, skips.pop()], dim=1))
            return fill + mask * self.out(h)

    return ThinFillNet(config)


def count_parameters(net) -> int:
    return sum(p.numel() for p in net.parameters())


def is_thinfill_model(path: str | Path) -> bool:
    """True for a folder whose ``config.json`` marks a thin-filler network."""
    return folder_mark(path) == MARKER


def save_thinfill(folder: str | Path, net, state: dict | None = None, dtype=None) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (``state`` instead of the net's own weights if given,
    cast to ``dtype`` if given), atomically."""
    from safetensors.torch import save_file

    from .images import atomic_write

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().to("cpu").contiguous() for k, v in (state or net.state_dict()).items()}
    if dtype is not None:
        sd = {k: v.to(dtype) for k, v in sd.items()}
    atomic_write(folder / WEIGHTS_NAME, lambda tmp: save_file(sd, str(tmp)))
    text = json.dumps(net.config.to_json(), indent=2) + "\n"
    atomic_write(folder / CONFIG_NAME, lambda tmp: Path(tmp).write_text(text))
    return folder


def load_thinfill(path: str | Path = "shipped", device: str = "cpu"):
    """Load a thin-filler folder (``shipped`` = the package's) as a float32 network in eval mode."""
    from safetensors.torch import load_file

    folder = SHIPPED_DIR if str(path) == "shipped" else Path(path)
    if not is_thinfill_model(folder) or not (folder / WEIGHTS_NAME).is_file():
        raise InpaintKitError(f"{folder}: not a thin-filler model folder (config.json marked thinfill + "
                              f"{WEIGHTS_NAME}); train one with inpaint-kit train-thinfill")
    net = build_net(ThinFillConfig.from_json(json.loads((folder / CONFIG_NAME).read_text())))
    try:
        net.load_state_dict({k: v.float() for k, v in load_file(str(folder / WEIGHTS_NAME)).items()})
    except RuntimeError:
        raise InpaintKitError(f"{folder}/{WEIGHTS_NAME}: weights do not match its config.json") from None
    return net.to(device).eval().requires_grad_(False)


# --- inference ------------------------------------------------------------------------------------

_LOADED: dict = {}


def thin_filler(path: str | None = None):
    """The thin-filler network of ``path`` (None = the shipped one), loaded once per process; None when
    no path is given and the package ships none."""
    key = str(path or "shipped")
    if key not in _LOADED:
        if path is None and not is_thinfill_model(SHIPPED_DIR):
            return None
        _LOADED[key] = load_thinfill(key)
    return _LOADED[key]


def refine(net, fills: list[np.ndarray], masks: list[np.ndarray]) -> list[np.ndarray]:
    """The network on canvases of one size (sides multiples of ``net.config.multiple``): each classical fill
    (RGB uint8) refined inside its mask; outside the mask the fill comes back unchanged."""
    import torch

    from .ddpm.tensors import image_to_tensor, tensor_to_image

    x = torch.cat([image_to_tensor(f) for f in fills])  # (B, 3, H, W) in [-1, 1]
    m = torch.from_numpy(np.stack(masks).astype(np.float32))[:, None]  # (B, 1, H, W)
    with torch.no_grad():
        y = net(x, m)
    return [np.where(mk[..., None], tensor_to_image(y[b]), f) for b, (f, mk) in enumerate(zip(fills, masks))]


def fill_thin(image: np.ndarray, thin: np.ndarray, unknown: np.ndarray, method: str = "net", net=None,
              radius: int = 3, context: int = CONTEXT, window: int = WINDOW) -> np.ndarray:
    """Fill the ``thin`` pixels of ``image`` at native resolution; ``unknown`` (a superset of ``thin``: all
    the damage) is never used as context by the classical fill. ``method``: ``net`` (the classical fill
    ``net.config.base`` refined by ``net``), ``ns`` or ``telea``. Works in windows fitted to the thin damage
    (:func:`inpaint_kit.geometry.plan_crops` with ``context`` pixels around it, tiles of at most ``window``
    px), equal-size windows in one network call. Deterministic; pixels outside ``thin`` are ``image``'s."""
    from .classical import cv2_inpaint
    from .geometry import compose, crop_to_work, plan_crops

    if not thin.any():
        return image.copy()
    base = net.config.base if method == "net" else method
    radius = net.config.radius if method == "net" else radius
    multiple = net.config.multiple if method == "net" else 1
    regions = plan_crops(thin, size=window, padding=context, multiple=multiple)
    results: list[np.ndarray | None] = [None] * len(regions)
    groups: dict[tuple[int, int], list[int]] = {}
    for k, region in enumerate(regions):
        groups.setdefault(region.work_hw, []).append(k)
    for ks in groups.values():
        fills, masks = [], []
        for k in ks:
            crop, crop_unknown = crop_to_work(image, unknown, regions[k])
            _, crop_thin = crop_to_work(image, thin, regions[k])
            fills.append(cv2_inpaint(crop, crop_unknown, base, radius))
            masks.append(crop_thin)
        out = refine(net, fills, masks) if method == "net" else fills
        for k, o in zip(ks, out):
            results[k] = o
    return np.where(thin[..., None], compose(image, thin, regions, results), image)


def export_thinfill(run_folder: str | Path, dst: str | Path = SHIPPED_DIR) -> Path:
    """Copy a ``train-thinfill`` run's EMA weights (float32) and config into ``dst`` (the package's shipped
    filler by default), checking that they load back."""
    import os

    net = load_thinfill(run_folder)
    save_thinfill(dst, net)
    for name in (WEIGHTS_NAME, CONFIG_NAME):  # package data: readable by every user
        os.chmod(Path(dst) / name, 0o644)
    load_thinfill(dst)
    return Path(dst)
