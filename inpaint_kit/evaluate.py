"""Scoring inpainting methods against ground truth on held-out photos (``inpaint-kit eval``).

For each image (long side scaled to ``size``, the other side rounded, not snapped to a model's multiple:
a photo as a user has it; ``size 0`` keeps the photos as they are), each mask kind and each of ``seeds``
repetitions, one mask is drawn reproducibly from ``(seed + repetition, image index, kind)``, every method
fills it (repetition r also seeds the model's noise with ``seed + r``), and the fill is scored:

- PSNR (dB) over the mask's pixels and channels;
- SSIM: the SSIM map (Wang et al. 2004: Gaussian window sigma 1.5, per RGB channel, averaged over channels)
  averaged over the mask's pixels. Windows near the hole's edge also see known pixels, so thin masks
  score higher than the fill alone would;
- the seam: the mean CIEDE2000 colour difference over a band :data:`BAND` px either side of the mask's
  edge (:func:`band_delta_e`), and the gradient jump across the edge (:func:`seam_jump`: grey levels above
  the photo's own; positive = a visible edge);
- gradient-energy ratio: mean Sobel magnitude (grey) inside the hole, filled / ground truth. 1.0 = as
  much texture as the real photo; blurry fills score well below 1, noisy ones above;
- seconds per image (wall time of the fill, model loading excluded; methods take turns on each image, so
  a loaded machine slows them alike).

Means come with 95 % confidence intervals over images x repetitions (Student's t); PSNR is also given as
the difference to a reference method (``ns`` when it runs) on the same fills, whose paired interval is far
narrower than the spread between photos.

Methods: ``telea`` and ``ns`` (OpenCV ``cv2.inpaint`` on the whole mask: the classical baselines),
``builtin``, a path to any model ``load_engine`` accepts (a ``train-ddpm`` folder or a Stable Diffusion
inpainting model), each optionally followed by ``+flag=value`` settings of ``infer`` (e.g.
``builtin+thin_width=0+blend=none``, ``ns+thin_width=9``; DDPM options such as ``+strength=0.3`` too).
Every method but the bare baselines runs through the real infer path
(:func:`inpaint_kit.inpaint.inpaint_array`: damage routing, working canvas, engine, seams, paste back) at
the photo's own resolution (``--size`` = its long side), so what is scored is what ``inpaint-kit infer``
writes.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from .classical import CLASSICAL, cv2_inpaint
from .engine.options import DDPMOptions
from .errors import InpaintKitError
from .geometry import resize_image, work_size
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
    size: int = 256  # photos' long side (0 = as they are); infer works on each at its own resolution
    steps: int = 20
    radius: int = 3  # OpenCV inpaint radius of the bare telea / ns baselines
    output: str | None = None  # also write the scores here: the table if it ends in .md, else JSON (config + scores)
    device: str | None = None  # for model methods (default: cuda if available)
    ddpm: DDPMOptions = field(default_factory=DDPMOptions)  # DDPM methods only (None fields = the model's)
    seeds: int = 1  # repetitions: masks and noise drawn again from seed + r
    reference: str | None = "ns"  # PSNR differences to this method on the same fills (paired); None / absent = none


@dataclass
class Score:
    kind: str
    method: str
    psnr: float
    ssim: float
    grad_ratio: float
    seconds: float
    images: int  # fills scored (images x repetitions)
    psnr_ci: float = 0.0  # half-width of the 95 % confidence interval
    band_de: float = 0.0
    band_de_ci: float = 0.0
    jump: float = 0.0
    ssim_ci: float = 0.0
    vs_reference: float | None = None  # mean PSNR difference to the reference method on the same fills
    vs_reference_ci: float = 0.0


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

def parse_method(spec: str) -> tuple[str, dict]:
    """``model+flag=value+...`` -> ``(model, {field: value})`` for :class:`InferConfig` and
    :class:`DDPMOptions` fields (values converted to the field's type). A one-line error names a bad one."""
    from .inpaint import InferConfig

    model, *settings = spec.split("+")
    types = {f.name: type(getattr(InferConfig(), f.name)) for f in fields(InferConfig) if f.name != "ddpm"}
    types.update({f.name: (float if f.name == "strength" else str) for f in fields(DDPMOptions)})
    types["thin_model"] = str
    out = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or key not in types:
            raise InpaintKitError(f"--methods {spec}: {item!r} is not flag=value of an infer flag "
                                  "(e.g. builtin+thin_width=0+blend=none)")
        kind = types[key]
        try:
            out[key] = (value.lower() in ("1", "true", "on", "yes")) if kind is bool else kind(value)
        except ValueError:
            raise InpaintKitError(f"--methods {spec}: {key}={value!r} is not a {kind.__name__}") from None
    return model, out


def make_filler(method: str, cfg: EvalConfig):
    """``fill(image, mask, seed) -> RGB uint8`` for a method spec (see the module docstring); models load
    once here."""
    model, settings = parse_method(method)
    if model in CLASSICAL and not settings:
        return lambda image, mask, seed: cv2_inpaint(image, mask, model, cfg.radius)
    from .engine import is_ddpm_model
    from .inpaint import InferConfig, inpaint_array

    if model not in ("builtin", *CLASSICAL) and not Path(model).exists() and "/" not in model:
        raise InpaintKitError(f"--methods: {model!r} is not telea, ns, builtin or a model path")
    ddpm_keys = {f.name for f in fields(DDPMOptions)}
    ddpm = replace(cfg.ddpm, **{k: v for k, v in settings.items() if k in ddpm_keys}) if is_ddpm_model(model) else DDPMOptions()
    infer = InferConfig(model=model, size=max(cfg.size, 64), steps=cfg.steps, rows=1, device=cfg.device, ddpm=ddpm,
                        **{k: v for k, v in settings.items() if k not in ddpm_keys})
    infer.validate()  # a bad setting fails here, before the model loads
    engine = infer.load_engine()

    def fill(image, mask, seed):
        # infer at the photo's own resolution: --size is its long side (full mode, never resampled)
        this = replace(infer, size=max(image.shape[:2]))
        return inpaint_array(engine, this, image, mask, [seed], progress=False).results[0]

    return fill


# --- the run ------------------------------------------------------------------------------------

def eval_masks(image: np.ndarray, index: int, kinds, seed: int) -> dict[str, np.ndarray]:
    """The masks for image number ``index``: one per kind (a generator of :mod:`inpaint_kit.maskgen`), from
    ``(seed, index, kind)`` only."""
    h, w = image.shape[:2]
    return {k: draw(k, h, w, np.random.default_rng([seed, index, kind_index(k)])) for k in kinds}


T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23, 12: 2.18,
       15: 2.13, 20: 2.09, 30: 2.04, 60: 2.00}


def ci95(values) -> float:
    """Half-width of the 95 % confidence interval of the mean (Student's t; 0 for one value)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return 0.0
    dof = v.size - 1
    t = next((T95[k] for k in sorted(T95) if k >= dof), 1.96)
    return float(t * v.std(ddof=1) / math.sqrt(v.size))


def load_photos(cfg: EvalConfig) -> list[np.ndarray]:
    """The ground-truth photos, long side scaled to ``cfg.size`` (0 = as they are)."""
    paths = scan(cfg.data)
    if not paths:
        raise InpaintKitError(f"{cfg.data}: no images found to evaluate on")
    images = []
    for p in paths:
        img = load_image(p)
        images.append(img if cfg.size <= 0 else resize_image(img, work_size(*img.shape[:2], size=cfg.size, multiple=1)))
    return images


def run_eval(cfg: EvalConfig, progress: bool = True) -> list[Score]:
    """Score every method on every mask kind; returns one :class:`Score` per (kind, method)."""
    from tqdm import tqdm

    from .progress import interactive

    bad = [k for k in cfg.mask_kinds if k not in GENERATORS]
    if bad:
        raise InpaintKitError(f"--mask_kinds: unknown {', '.join(bad)}; choose from {', '.join(GENERATORS)}")
    if cfg.seeds < 1:
        raise InpaintKitError(f"--seeds {cfg.seeds} must be at least 1")
    images = load_photos(cfg)
    fillers = {m: make_filler(m, cfg) for m in cfg.methods}
    acc: dict[tuple[str, str], list[tuple[float, ...]]] = {}
    # methods take turns on each (image, repetition, kind): under load they are slowed alike
    jobs = [(i, r, k) for i in range(len(images)) for r in range(cfg.seeds) for k in cfg.mask_kinds]
    for i, r, kind in tqdm(jobs, desc="eval", disable=not (progress and interactive())):
        img = images[i]
        mask = eval_masks(img, i, (kind,), cfg.seed + r)[kind]
        for method in cfg.methods:
            t0 = time.perf_counter()
            out = fillers[method](img, mask, cfg.seed + r)
            dt = time.perf_counter() - t0
            if not np.array_equal(out[~mask], img[~mask]):
                raise InpaintKitError(f"{method} changed pixels outside the mask")
            acc.setdefault((kind, method), []).append(
                (masked_psnr(img, out, mask), masked_ssim(img, out, mask), gradient_energy_ratio(img, out, mask), dt,
                 band_delta_e(img, out, mask), seam_jump(img, out, mask)))
    scores = []
    ref = cfg.reference if cfg.reference in cfg.methods else None
    for kind in cfg.mask_kinds:
        for method in cfg.methods:
            v = np.array(acc[(kind, method)])
            psnr, ssim, ratio, dt, de, jump = (float(x) for x in v.mean(axis=0))
            diff = v[:, 0] - np.array(acc[(kind, ref)])[:, 0] if ref else None
            scores.append(Score(kind, method, psnr, ssim, ratio, dt, images=len(v), psnr_ci=ci95(v[:, 0]),
                                band_de=de, band_de_ci=ci95(v[:, 4]), jump=jump, ssim_ci=ci95(v[:, 1]),
                                vs_reference=float(diff.mean()) if ref else None,
                                vs_reference_ci=ci95(diff) if ref else 0.0))
    if cfg.output:
        write_report(cfg, scores)
    return scores


def format_table(scores: list[Score]) -> str:
    """A markdown table, one row per (mask kind, method); the best PSNR per kind in bold."""
    paired = any(s.vs_reference is not None for s in scores)
    lines = ["| mask | method | PSNR in mask (dB) |" + (" vs ns, paired (dB) |" if paired else "") +
             " SSIM in mask | band CIEDE2000 | gradient jump | gradient-energy ratio | s / image |",
             "|---|---|---:|" + ("---:|" if paired else "") + "---:|---:|---:|---:|---:|"]
    best = {}
    for s in scores:
        best[s.kind] = max(best.get(s.kind, -np.inf), s.psnr)
    for s in scores:
        psnr = f"{s.psnr:.2f} ± {s.psnr_ci:.2f}" if s.images > 1 else f"{s.psnr:.2f}"
        psnr = f"**{psnr}**" if s.psnr == best[s.kind] else psnr
        de = f"{s.band_de:.2f} ± {s.band_de_ci:.2f}" if s.images > 1 else f"{s.band_de:.2f}"
        vs = ""
        if paired:
            vs = f" {s.vs_reference:+.2f} ± {s.vs_reference_ci:.2f} |" if s.images > 1 else f" {s.vs_reference:+.2f} |"
        lines.append(f"| {s.kind} | {s.method} | {psnr} |{vs} {s.ssim:.3f} | {de} | {s.jump:+.2f} | {s.grad_ratio:.2f} | "
                     f"{s.seconds:.2f} |")
    return "\n".join(lines)


def write_report(cfg: EvalConfig, scores: list[Score]) -> None:
    """Write ``cfg.output`` as markdown (``.md``) or JSON (anything else), atomically."""
    out = Path(cfg.output)
    if out.suffix == ".md":
        text = format_table(scores) + "\n"
    else:
        text = json.dumps({"config": asdict(cfg), "scores": [asdict(s) for s in scores]}, indent=2) + "\n"
    atomic_write(out, lambda tmp: Path(tmp).write_text(text))
