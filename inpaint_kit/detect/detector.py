"""Loading a damage detector once and running it on images at native resolution.

    det = load_detector("builtin")                  # or "classical", or a train-detect output folder
    mask = detect_mask(image, det)                  # bool (H, W), True = damage (= repaint)
    prob = det.probability(image)                   # uint16 (H, W), probability x 65535

``builtin`` is package data (``inpaint_kit/assets/detector``: config.json + model.safetensors); a folder is
what ``inpaint-kit train-detect`` writes. The threshold saved with a model was chosen on its validation
split; ``threshold=`` overrides it. A model whose config.json has ``lines`` settings (the builtin does) also
runs the long-line test on its probability map (:mod:`inpaint_kit.detect.scratchlines`): the pixels of long,
dead-straight scratches are raised to probability 1, so every threshold, ``--save_prob`` and every caller
see the same map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InpaintKitError, UsageError
from . import tiling
from .classical import ClassicalSettings, score
from .scratchlines import LineSettings, raise_lines

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "assets" / "detector"
TILE, OVERLAP, CONTEXT = 512, 32, 48  # native-resolution tiles; context > the network's useful reach
# The network's arithmetic: auto = bf16 where the device computes it natively (CPUs with AVX512-BF16 or AMX,
# CUDA GPUs that support it: measured 2.1x faster here, masks within a few pixels of fp32's), else fp32.
DTYPES = ("auto", "fp32", "bf16")


@dataclass
class Detector:
    """A loaded detector: ``name`` (builtin / classical / folder), the per-window function, its
    ``threshold`` and tiling. Build it with :func:`load_detector`."""

    name: str
    threshold: float
    multiple: int = 16
    tile: int = TILE
    overlap: int = OVERLAP
    context: int = CONTEXT
    net: object = None  # the torch network (None for classical)
    device: str = "cpu"
    classical: ClassicalSettings = field(default_factory=ClassicalSettings)
    lines: LineSettings | None = None  # the long-line test after the network (None: network only)
    views: tuple[str, ...] = ("none",)  # test-time views whose probabilities are averaged (network.VIEWS)
    dtype: str = "fp32"  # the network's arithmetic: fp32, or bf16 (autocast; weights stay float32)
    info: dict = field(default_factory=dict)  # what the model folder says about itself (recorded)

    def window_probability(self, win: np.ndarray) -> np.ndarray:
        """Probability ``float32 (h, w)`` of one window (sides multiples of ``multiple``)."""
        if self.net is None:
            return score(win, self.classical)
        import torch

        from .network import probability

        x = torch.from_numpy(win).to(self.device).permute(2, 0, 1)[None].float() / 127.5 - 1.0  # (1, 3, h, w)
        with torch.inference_mode(), torch.autocast(torch.device(self.device).type, torch.bfloat16,
                                                    enabled=self.dtype == "bf16"):
            return probability(self.net, x, self.views)[0].cpu().numpy()

    def probability(self, image: np.ndarray, progress=None) -> np.ndarray:
        """Damage probability of an RGB uint8 image ``(H, W, 3)`` at native resolution: ``uint16 (H, W)``
        (probability x 65535), computed in overlapping tiles (:mod:`inpaint_kit.detect.tiling`), then long
        straight scratches raised to 1 when the model has line settings (:mod:`inpaint_kit.detect.scratchlines`)."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"detector input must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
        prob = tiling.tiled(image, self.window_probability, self.tile, self.overlap, self.context, self.multiple,
                            progress)
        return prob if self.lines is None else raise_lines(prob, self.lines)

    def tiles(self, h: int, w: int) -> int:
        """How many tiles an ``h x w`` image takes (progress bars)."""
        return tiling.tile_count(h, w, self.tile, self.overlap, self.multiple)

    def describe(self) -> dict:
        """What is recorded in outputs: the model, its threshold and the tiling."""
        return {"detector": self.name, "detector_threshold": self.threshold, "tile": self.tile,
                "overlap": self.overlap, **({"classical": vars(self.classical)} if self.net is None else {}),
                **({"lines": self.lines.to_json()} if self.lines is not None else {}),
                **({"views": list(self.views), "detector_dtype": self.dtype} if self.net is not None else {})}


def native_bf16(device: str) -> bool:
    """Whether ``device`` computes bfloat16 natively (CPU: AVX512-BF16 or AMX; CUDA: what torch says; other
    devices: assumed not)."""
    import torch

    kind = torch.device(device).type
    if kind == "cuda":
        return torch.cuda.is_bf16_supported()
    if kind != "cpu":  # mps, xpu, ...: float32 unless asked
        return False
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without these probes: assume not
        return False


def check_dtype(model: str, dtype: str) -> None:
    """One-line error for a ``dtype`` that is not one of :data:`DTYPES`, or ``bf16`` for the classical
    detector (a float32 filter); no torch, so configs check it before anything loads."""
    if dtype not in DTYPES:
        raise UsageError(f"--dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    if model == "classical" and dtype == "bf16":
        raise UsageError("--dtype bf16 does not apply to --model classical (a float32 filter); leave it out")


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto`` -> ``bf16`` where :func:`native_bf16`, else ``fp32``; ``fp32`` / ``bf16`` as given."""
    if dtype != "auto":
        return dtype
    return "bf16" if native_bf16(device) else "fp32"


def resolve(model: str) -> Path | None:
    """``builtin`` -> the package's detector folder; ``classical`` -> None; else the folder given."""
    if model == "classical":
        return None
    if model == "builtin":
        if not (BUILTIN_DIR / "model.safetensors").is_file():
            raise InpaintKitError(f"{BUILTIN_DIR}: the builtin detector's files are missing; reinstall inpaint-kit")
        return BUILTIN_DIR
    return Path(model)


def model_checksum(model: str) -> str | None:
    """sha256 of the detector folder's ``config.json`` and weights' sha256s (None for classical): a retrained
    model in the same folder, or the same weights with another threshold, views or line test (a new builtin),
    is another model. Cached per process by file (:func:`inpaint_kit.record.cached_sha256`): ``infer`` records
    it with every output."""
    folder = resolve(model)
    if folder is None:
        return None
    import hashlib

    from ..record import cached_sha256
    from .folder import CONFIG_NAME, WEIGHTS_NAME

    return hashlib.sha256(" ".join(cached_sha256(folder / n) for n in (CONFIG_NAME, WEIGHTS_NAME)).encode()).hexdigest()


def check_model(model: str, flag: str = "--model") -> None:
    """One-line error for a ``flag`` (``--model``, ``--detect_model``) that is not builtin, classical or a
    detector folder (no torch)."""
    from .folder import is_detector_folder

    folder = resolve(model)
    if folder is not None and model != "builtin" and not is_detector_folder(folder):
        if not folder.exists():
            raise InpaintKitError(f"{flag} {model}: no such folder; pass builtin, classical or a train-detect "
                                  "output folder")
        raise InpaintKitError(f"{flag} {model}: not a damage detector (no detector config.json); pass builtin, "
                              "classical or a train-detect output folder")


def load_detector(model: str = "builtin", device: str | None = None, threshold: float | None = None,
                  tile: int = TILE, overlap: int = OVERLAP, context: int = CONTEXT, dtype: str = "auto") -> Detector:
    """Load ``builtin``, ``classical`` or a detector folder once; reuse the returned :class:`Detector` for
    every image. ``threshold`` overrides the model's own (0 < t < 1); ``dtype`` (:data:`DTYPES`) is the
    network's arithmetic (the classical detector works in float32 and takes only ``auto`` / ``fp32``)."""
    check_dtype(model, dtype)
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise InpaintKitError(f"--threshold {threshold}: must be between 0 and 1 (exclusive)")
    if tile < 64 or not 0 <= overlap < tile or context < 0:
        raise InpaintKitError(f"tile {tile} / overlap {overlap} / context {context}: need tile >= 64, "
                              "0 <= overlap < tile and context >= 0")
    folder = resolve(model)
    if folder is None:
        return Detector("classical", 0.5 if threshold is None else threshold, 1, tile, overlap,
                        max(context, ClassicalSettings().size))
    check_model(model)
    import torch

    from .network import load_net

    from ..engine import check_device

    dev = check_device(device)
    net = load_net(folder).to(dev).to(memory_format=torch.channels_last)
    try:
        lines = LineSettings(**net.config.lines) if net.config.lines else None
    except (TypeError, ValueError) as e:
        raise InpaintKitError(f"{folder / 'config.json'}: bad 'lines' settings ({e}); re-export the detector")
    return Detector(model, net.config.threshold if threshold is None else threshold, net.config.multiple, tile,
                    overlap, context, net, dev, lines=lines, views=net.config.views, dtype=resolve_dtype(dtype, dev),
                    info={k: v for k, v in net.config.extra.items() if k != "training"})


def to_mask(prob: np.ndarray, threshold: float, min_area: int = 0, dilate: int = 0) -> np.ndarray:
    """Binarise a ``uint16`` probability map: ``>= threshold``, components smaller than ``min_area`` px
    dropped (:func:`drop_small`), then grown by ``dilate`` px. Returns bool ``(H, W)``."""
    mask = prob >= np.uint16(min(tiling.PROB_SCALE, round(threshold * tiling.PROB_SCALE)))
    if min_area > 1:
        mask = drop_small(mask, min_area)
    if dilate > 0:
        from ..geometry import dilate_mask

        mask = dilate_mask(mask, dilate)
    return mask


def drop_small(mask: np.ndarray, min_area: int, band: int = 2048) -> np.ndarray:
    """``mask`` without 8-connected components of fewer than ``min_area`` px, in horizontal bands so that a
    100-MP mask never needs a full-size label image.

    Why bands are exact: each band is labelled with ``min_area`` extra rows above and below, and only its
    core rows are written. A component with pixels in the core that is cut off by the extended band's edge
    spans more than ``min_area`` rows inside it, so even its cut-off part has ``min_area`` px or more and it
    is kept, as it should be; every other component with pixels in the core lies wholly inside the
    extended band, so its area is exact."""
    import cv2

    h = mask.shape[0]
    out = mask.copy()
    for y0 in range(0, h, band):
        y1 = min(h, y0 + band)
        a, b = max(0, y0 - min_area), min(h, y1 + min_area)
        part = np.ascontiguousarray(mask[a:b]).view(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(part, connectivity=8)
        small = stats[:, cv2.CC_STAT_AREA] < min_area  # a cut-off component still counts >= min_area px here
        small[0] = False  # background
        if small.any():
            core = labels[y0 - a : y1 - a]
            out[y0:y1][small[core]] = False
    return out


def detect_mask(image: np.ndarray, detector: Detector, threshold: float | None = None, min_area: int = 0,
                dilate: int = 0) -> np.ndarray:
    """The damage mask of an RGB uint8 image: bool ``(H, W)``, True = damage (repaint), at native size.
    ``threshold`` defaults to the detector's; see :func:`to_mask` for ``min_area`` and ``dilate``."""
    prob = detector.probability(image)
    return to_mask(prob, detector.threshold if threshold is None else threshold, min_area, dilate)
