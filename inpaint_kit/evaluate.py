"""Scoring inpainting methods against ground truth on held-out photos (``inpaint-kit eval``).

For each image (long side scaled to ``size``, the other side rounded, not snapped to a model's multiple:
a photo as a user has it) and each mask kind, one mask is drawn reproducibly from
``(seed, image index, kind)``, every method fills it, and the fill is scored inside the mask only:

- PSNR (dB) over the mask's pixels and channels;
- SSIM: the SSIM map (Wang et al. 2004: Gaussian window sigma 1.5, per RGB channel, averaged over channels)
  averaged over the mask's pixels. Windows near the hole's edge also see known pixels, so thin masks
  score higher than the fill alone would;
- gradient-energy ratio: mean Sobel magnitude (grey) inside the hole, filled / ground truth. 1.0 = as
  much texture as the real photo; blurry fills score well below 1, noisy ones above;
- seconds per image (wall time of the fill, model loading excluded).

Methods: ``telea`` and ``ns`` (OpenCV ``cv2.inpaint``, the classical baselines), ``builtin``, or a path to
any model ``load_engine`` accepts (a ``train-ddpm`` folder or a Stable Diffusion inpainting model). Models
run through the real infer path (:func:`inpaint_kit.inpaint.inpaint_array`: working canvas, engine, paste
back), so what is scored is what ``inpaint-kit infer`` writes.
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
from .geometry import resize_image, work_size
from .images import atomic_write, load_image
from .masks import MASK_KINDS, create_advanced_mask
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


# --- the seam: a band either side of the mask's edge ---------------------------------------------------

BAND = 3  # px either side of the mask edge


def rgb_to_lab(image: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of an sRGB uint8 image, float64 (H, W, 3) (sRGB curve, then XYZ, as scikit-image)."""
    c = image.astype(np.float64) / 255.0
    lin = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference (Sharma, Wu & Dalal 2005; kL = kC = kH = 1) of two Lab arrays (..., 3)."""
    L1, a1, b1 = np.moveaxis(lab1, -1, 0)
    L2, a2, b2 = np.moveaxis(lab2, -1, 0)
    cbar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(cbar**7 / (cbar**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p, h2p = np.degrees(np.arctan2(b1, a1p)) % 360, np.degrees(np.arctan2(b2, a2p)) % 360
    zero = c1p * c2p == 0
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(zero, 0, dh)
    dHp = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh) / 2)
    lbar, cbarp = (L1 + L2) / 2, (c1p + c2p) / 2
    hsum = h1p + h2p
    hbar = np.where(np.abs(h1p - h2p) <= 180, hsum / 2, np.where(hsum < 360, (hsum + 360) / 2, (hsum - 360) / 2))
    hbar = np.where(zero, hsum, hbar)
    t = (1 - 0.17 * np.cos(np.radians(hbar - 30)) + 0.24 * np.cos(np.radians(2 * hbar))
         + 0.32 * np.cos(np.radians(3 * hbar + 6)) - 0.20 * np.cos(np.radians(4 * hbar - 63)))
    dtheta = 30 * np.exp(-(((hbar - 275) / 25) ** 2))
    rc = 2 * np.sqrt(cbarp**7 / (cbarp**7 + 25.0**7))
    sl = 1 + 0.015 * (lbar - 50) ** 2 / np.sqrt(20 + (lbar - 50) ** 2)
    sc, sh = 1 + 0.045 * cbarp, 1 + 0.015 * cbarp * t
    rt = -np.sin(np.radians(2 * dtheta)) * rc
    dl, dc, dhh = (L2 - L1) / sl, (c2p - c1p) / sc, dHp / sh
    return np.sqrt(np.maximum(dl**2 + dc**2 + dhh**2 + rt * dc * dhh, 0))


def boundary_band(mask: np.ndarray, width: int = BAND) -> np.ndarray:
    """Pixels within ``width`` px of the mask's edge, on either side (bool (H, W))."""
    import cv2

    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    outside = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return (mask & (inside <= width)) | (~mask & (outside <= width))


def band_delta_e(truth: np.ndarray, result: np.ndarray, mask: np.ndarray, width: int = BAND) -> float:
    """Mean CIEDE2000 difference between result and truth over the :func:`boundary_band` (both sides: the
    outer half is exact after paste-back, so this is half the inner band's mean when the band is even)."""
    band = boundary_band(mask, width)
    return float(ciede2000(rgb_to_lab(truth[band]), rgb_to_lab(result[band])).mean())


def seam_jump(truth: np.ndarray, result: np.ndarray, mask: np.ndarray) -> float:
    """Gradient jump at the edge: mean |grey step| across the mask's edge (4-neighbour pairs with one
    pixel in the mask) of the result minus that of the truth, in grey levels. 0 = as smooth as the photo;
    positive = a visible edge (a seam); negative = smoother than the photo."""
    import cv2

    g_r = cv2.cvtColor(result, cv2.COLOR_RGB2GRAY).astype(np.float64)
    g_t = cv2.cvtColor(truth, cv2.COLOR_RGB2GRAY).astype(np.float64)
    steps_r, steps_t = [], []
    for axis in (0, 1):
        m0, m1 = (mask[1:], mask[:-1]) if axis == 0 else (mask[:, 1:], mask[:, :-1])
        edge = m0 != m1
        for g, acc in ((g_r, steps_r), (g_t, steps_t)):
            diff = np.abs(np.diff(g, axis=axis))
            acc.append(diff[edge])
    r, t = np.concatenate(steps_r), np.concatenate(steps_t)
    return float(r.mean() - t.mean()) if r.size else 0.0


# --- methods ------------------------------------------------------------------------------------

def make_filler(method: str, cfg: EvalConfig):
    """``fill(image, mask) -> RGB uint8`` for a method name or model path (models load once here)."""
    if method in CLASSICAL:
        return lambda image, mask: cv2_inpaint(image, mask, method, cfg.radius)
    from .engine import is_ddpm_model
    from .inpaint import InferConfig, inpaint_array

    if method != "builtin" and not Path(method).exists() and "/" not in method:
        raise InpaintKitError(f"--methods: {method!r} is not telea, ns, builtin or a model path")
    infer = InferConfig(model=method, size=cfg.size, steps=cfg.steps, rows=1, device=cfg.device,
                        ddpm=cfg.ddpm if is_ddpm_model(method) else DDPMOptions())
    # (not validate()d: eval allows tiny test sizes below infer's 64; the engine checks its own options)
    engine = infer.load_engine()

    def fill(image, mask):
        return inpaint_array(engine, infer, image, mask, [cfg.seed], progress=False).results[0]

    return fill


# --- the run ------------------------------------------------------------------------------------

def eval_masks(image: np.ndarray, index: int, kinds, seed: int) -> dict[str, np.ndarray]:
    """The masks for image number ``index``: one per kind, from ``(seed, index, kind)`` only."""
    h, w = image.shape[:2]
    return {k: create_advanced_mask(k, h, w, np.random.default_rng([seed, index, MASK_KINDS.index(k)])) for k in kinds}


def run_eval(cfg: EvalConfig, progress: bool = True) -> list[Score]:
    """Score every method on every mask kind; returns one :class:`Score` per (kind, method)."""
    from tqdm import tqdm

    from .progress import interactive

    bad = [k for k in cfg.mask_kinds if k not in MASK_KINDS]
    if bad:
        raise InpaintKitError(f"--mask_kinds: unknown {', '.join(bad)}; choose from {', '.join(MASK_KINDS)}")
    paths = scan(cfg.data)
    if not paths:
        raise InpaintKitError(f"{cfg.data}: no images found to evaluate on")
    images = []
    for p in paths:
        img = load_image(p)
        images.append(resize_image(img, work_size(*img.shape[:2], size=cfg.size, multiple=1)))
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
