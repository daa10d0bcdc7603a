"""Scoring inpainting methods against ground truth on held-out photos (``inpaint-kit eval``).

For each image (long side scaled to ``size``) and each mask kind, one mask is drawn reproducibly from
``(seed, image index, kind)``, every method fills it, and the fill is scored inside the mask only:

- PSNR (dB) over the mask's pixels and channels;
- SSIM: the SSIM map (Wang et al. 2004: Gaussian window sigma 1.5, per RGB channel, averaged over channels)
  averaged over the mask's pixels. Windows near the hole's edge also see known pixels, so thin masks
  score higher than the fill alone would;
- gradient-energy ratio: mean Sobel magnitude (grey) inside the hole, filled / ground truth. 1.0 = as
  much texture as the real photo; blurry fills score well below 1, noisy ones above;
- seconds per image (wall time of the fill, model loading excluded).

Methods: ``telea`` and ``ns`` (OpenCV ``cv2.inpaint``, the classical baselines), ``builtin``, or a path to
any model ``load_engine`` accepts (a ``train-ddpm`` folder or a Stable Diffusion inpainting model).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .classical import CLASSICAL, cv2_inpaint
from .engine.options import DDPMOptions
from .errors import InpaintKitError
from .geometry import paste_back, resize_image, work_size
from .images import atomic_write, load_image
from .maskgen import GENERATORS, draw, kind_index
from .pairing import scan


@dataclass
class EvalConfig:
    """One evaluation run (the CLI builds exactly this)."""

    data: str  # folder of ground-truth photos (searched recursively)
    mask_kinds: tuple[str, ...] = ("thin", "thick", "center", "stripes", "irregular")
    methods: tuple[str, ...] = ("builtin", "telea", "ns")
    seed: int = 0
    size: int = 256
    steps: int = 20
    radius: int = 3  # OpenCV inpaint radius
    output: str | None = None  # also write the scores here: the table if it ends in .md, else JSON (config + scores)
    device: str | None = None  # for model methods (default: cuda if available)
    ddpm: DDPMOptions = field(default_factory=DDPMOptions)  # DDPM methods only (None fields = the model's)


@dataclass
class Score:
    kind: str
    method: str
    psnr: float
    ssim: float
    grad_ratio: float
    seconds: float
    images: int


# --- metrics ------------------------------------------------------------------------------------

def masked_psnr(truth: np.ndarray, result: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB, peak 255) over the mask's pixels (all channels); inf if identical there."""
    diff = truth[mask].astype(np.float64) - result[mask].astype(np.float64)
    mse = float(np.mean(diff**2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def ssim_map(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """SSIM map (H, W) of two RGB uint8 images: Gaussian-windowed, per channel, averaged over channels."""
    import cv2

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    x, y = a.astype(np.float64), b.astype(np.float64)
    blur = lambda z: cv2.GaussianBlur(z, (11, 11), sigma, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.mean(axis=2)


def masked_ssim(truth: np.ndarray, result: np.ndarray, mask: np.ndarray) -> float:
    """Mean of the SSIM map over the mask's pixels."""
    return float(ssim_map(truth, result)[mask].mean())


def gradient_energy(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean Sobel gradient magnitude of the grey image over the mask's pixels."""
    import cv2

    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    gx, gy = cv2.Sobel(grey, cv2.CV_64F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_64F, 0, 1, ksize=3)
    return float(np.hypot(gx, gy)[mask].mean())


def gradient_energy_ratio(truth: np.ndarray, result: np.ndarray, mask: np.ndarray) -> float:
    """Texture kept in the hole: gradient energy of the fill / that of the ground truth."""
    return gradient_energy(result, mask) / max(gradient_energy(truth, mask), 1e-6)


# --- methods ------------------------------------------------------------------------------------

def make_filler(method: str, cfg: EvalConfig):
    """``fill(image, mask) -> RGB uint8`` for a method name or model path (models load once here)."""
    if method in CLASSICAL:
        return lambda image, mask: cv2_inpaint(image, mask, method, cfg.radius)
    from .engine import Sampling, is_ddpm_model, load_engine

    if method != "builtin" and not Path(method).exists() and "/" not in method:
        raise InpaintKitError(f"--methods: {method!r} is not telea, ns, builtin or a model path")
    engine = load_engine(method, device=cfg.device, options=cfg.ddpm if is_ddpm_model(method) else None)
    sampling = Sampling(steps=cfg.steps)

    def fill(image, mask):
        (result,) = engine.inpaint(image, mask, [cfg.seed], sampling, progress=False)
        return paste_back(image, result, mask)

    return fill


# --- the run ------------------------------------------------------------------------------------

def eval_masks(image: np.ndarray, index: int, kinds, seed: int) -> dict[str, np.ndarray]:
    """The masks for image number ``index``: one per kind (a generator of :mod:`inpaint_kit.maskgen`), from
    ``(seed, index, kind)`` only."""
    h, w = image.shape[:2]
    return {k: draw(k, h, w, np.random.default_rng([seed, index, kind_index(k)])) for k in kinds}


def run_eval(cfg: EvalConfig, progress: bool = True) -> list[Score]:
    """Score every method on every mask kind; returns one :class:`Score` per (kind, method)."""
    from tqdm import tqdm

    from .progress import interactive

    bad = [k for k in cfg.mask_kinds if k not in GENERATORS]
    if bad:
        raise InpaintKitError(f"--mask_kinds: unknown {', '.join(bad)}; choose from {', '.join(GENERATORS)}")
    paths = scan(cfg.data)
    if not paths:
        raise InpaintKitError(f"{cfg.data}: no images found to evaluate on")
    images = []
    for p in paths:
        img = load_image(p)
        images.append(resize_image(img, work_size(*img.shape[:2], size=cfg.size, multiple=8)))
    masks = [eval_masks(img, i, cfg.mask_kinds, cfg.seed) for i, img in enumerate(images)]
    fillers = {m: make_filler(m, cfg) for m in cfg.methods}
    acc: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    jobs = [(m, i, k) for m in cfg.methods for i in range(len(images)) for k in cfg.mask_kinds]
    for method, i, kind in tqdm(jobs, desc="eval", disable=not (progress and interactive())):
        img, mask = images[i], masks[i][kind]
        t0 = time.perf_counter()
        out = fillers[method](img, mask)
        dt = time.perf_counter() - t0
        assert np.array_equal(out[~mask], img[~mask]), f"{method} changed pixels outside the mask"
        acc.setdefault((kind, method), []).append(
            (masked_psnr(img, out, mask), masked_ssim(img, out, mask), gradient_energy_ratio(img, out, mask), dt))
    scores = []
    for kind in cfg.mask_kinds:
        for method in cfg.methods:
            v = np.array(acc[(kind, method)])
            scores.append(Score(kind, method, *(float(x) for x in v.mean(axis=0)), images=len(v)))
    if cfg.output:
        write_report(cfg, scores)
    return scores


def format_table(scores: list[Score]) -> str:
    """A markdown table, one row per (mask kind, method); the best PSNR per kind in bold."""
    lines = ["| mask | method | PSNR in mask (dB) | SSIM in mask | gradient-energy ratio | s / image |",
             "|---|---|---:|---:|---:|---:|"]
    best = {}
    for s in scores:
        best[s.kind] = max(best.get(s.kind, -np.inf), s.psnr)
    for s in scores:
        psnr = f"**{s.psnr:.2f}**" if s.psnr == best[s.kind] else f"{s.psnr:.2f}"
        lines.append(f"| {s.kind} | {s.method} | {psnr} | {s.ssim:.3f} | {s.grad_ratio:.2f} | {s.seconds:.2f} |")
    return "\n".join(lines)


def write_report(cfg: EvalConfig, scores: list[Score]) -> None:
    """Write ``cfg.output`` as markdown (``.md``) or JSON (anything else), atomically."""
    out = Path(cfg.output)
    if out.suffix == ".md":
        text = format_table(scores) + "\n"
    else:
        text = json.dumps({"config": asdict(cfg), "scores": [asdict(s) for s in scores]}, indent=2) + "\n"
    atomic_write(out, lambda tmp: Path(tmp).write_text(text))
