"""The DDPM engine: fills a canvas of any size by denoising windows of the model's resolution around
the mask, all windows advanced together at every step.

Why windows: the network was trained on ``resolution``-pixel windows at the photo's own scale, so a
crack only needs local context, and cost grows with the mask, not the image. Overlapping windows are
blended MultiDiffusion-style (Bar-Tal et al. 2023): at every step each window predicts noise for its
pixels, the predictions are averaged with weights that fade towards window edges, and one diffusion
step is taken on the shared canvas, so there are no seams. Windows containing no mask pixel are skipped.

Where the chain starts (``init``): ``noise`` is plain diffusion (large holes first get a coarse pass at a
smaller scale, see ``_coarse_fill``); ``telea`` / ``ns`` start from OpenCV's classical fill noised to
``strength * T`` and run ``strength * steps`` steps (SDEdit, Meng et al. 2022; AUTOMATIC1111's "masked
content: fill" with a denoising strength): the classical fill fixes the hole's colours and layout, the
network adds the texture. A model folder may name its defaults in ``config.json`` under
``extra.inference`` (the builtin model does); explicit options win.

Rows (seeds) each own a ``torch.Generator``, and the network runs row by row, so a row's pixels are the
same whether it is rendered alone or with other seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from ..classical import cv2_inpaint
from ..engine import DTYPES, Sampling, resolve_device_dtype, row_images
from ..errors import InpaintKitError
from ..geometry import mask_bbox, resize_image, shrink_mask_any
from ..images import save_png
from .builtin import resolve_model
from .sampling import SAMPLERS, get_sampler
from .schedule import make_schedule, to_eps
from .tensors import image_to_tensor, soften_mask, tensor_to_image
from .unet import load_model

DTYPE_ALIASES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}  # also accepted here
INITS = ("noise", "telea", "ns")
FALLBACK_DEFAULTS = {"sampler": "ddpm", "init": "noise", "strength": 0.3}  # for models that name none


@dataclass(frozen=True)
class Window:
    top: int
    left: int


def _starts(lo: int, hi: int, extent: int, res: int, overlap: int) -> list[int]:
    """Window starts along one axis covering [lo, hi) inside [0, extent), ``res`` long, overlapping."""
    span = hi - lo
    if span <= res:
        c = (lo + hi) // 2 - res // 2
        return [int(np.clip(c, 0, extent - res))]
    n = math.ceil((span - res) / (res - overlap)) + 1
    return sorted({int(np.clip(round(s), 0, extent - res)) for s in np.linspace(lo, hi - res, n)})


def plan_windows(mask: np.ndarray, res: int, overlap: int, margin: int) -> list[Window]:
    """Windows ``res`` x ``res`` covering every True pixel of ``mask`` (canvas at least ``res`` each side),
    with ``margin`` pixels of context around the mask's bounding box where the canvas allows."""
    h, w = mask.shape
    box = mask_bbox(mask)
    if box is None:
        return []
    top, left, bottom, right = box
    top, left = max(0, top - margin), max(0, left - margin)
    bottom, right = min(h, bottom + margin), min(w, right + margin)
    wins = [Window(t, l) for t in _starts(top, bottom, h, res, overlap) for l in _starts(left, right, w, res, overlap)]
    return [win for win in wins if mask[win.top : win.top + res, win.left : win.left + res].any()]


def blend_weights(res: int, overlap: int) -> torch.Tensor:
    """(res, res) weights: 1 in the middle, ramping linearly down towards the edges over ``overlap``
    pixels (never 0, so a pixel covered by one window only still gets that window's prediction)."""
    ramp = max(1, overlap)
    i = torch.arange(res, dtype=torch.float32)
    edge = torch.minimum(i + 1, res - i) / (ramp + 1)
    w1 = edge.clamp(max=1.0)
    return w1[:, None] * w1[None, :]


class DDPMEngine:
    """Implements :class:`inpaint_kit.engine.Engine` for a model folder saved by ``train-ddpm``."""

    def __init__(self, net, folder: Path, model_name: str, device, dtype, sampler: str, jump_length: int,
                 jump_n_sample: int, mask_soften: float, save_intermediates: str | None, intermediate_every: int,
                 overlap: int, max_batch: int, coarse_factor_max: float, refine_strength: float,
                 init: str = "noise", strength: float = 1.0):
        self.net, self.folder, self.model_name = net, folder, model_name
        self.config = net.config
        self.device, self.dtype = device, dtype
        self.schedule = make_schedule(self.config.schedule, self.config.num_train_timesteps)
        self.sampler_name, self.jump_length, self.jump_n_sample = sampler, jump_length, jump_n_sample
        self.sampler = get_sampler(sampler, jump_length, jump_n_sample)
        self.mask_soften = mask_soften
        self.save_intermediates = Path(save_intermediates) if save_intermediates else None
        self.intermediate_every = intermediate_every
        self.res = self.config.resolution
        self.overlap = overlap
        self.max_batch = max_batch
        self.coarse_factor_max, self.refine_strength = coarse_factor_max, refine_strength
        self.init, self.strength = init, strength
        self.multiple = self.config.multiple

    def describe(self) -> dict:
        """Provenance for output metadata."""
        d = {"model": self.model_name, "engine": "ddpm", "sampler": self.sampler_name, "dtype": str(self.dtype).split(".")[-1],
             "device": str(self.device), "conditioning": self.config.conditioning, "prediction": self.config.prediction, "window": self.res}
        if self.sampler_name == "repaint":
            d.update(jump_length=self.jump_length, jump_n_sample=self.jump_n_sample)
        elif self.init != "noise":
            d.update(init=self.init, strength=self.strength)
        elif self.coarse_factor_max >= 1.5:
            d.update(coarse_factor_max=self.coarse_factor_max, refine_strength=self.refine_strength)
        if self.mask_soften:
            d["mask_soften"] = self.mask_soften
        return d

    # -- the call ------------------------------------------------------------------------------

    @torch.no_grad()
    def inpaint(self, image, mask: np.ndarray, seeds: Sequence[int], sampling: Sampling = Sampling(),
                progress: bool = True) -> list[np.ndarray]:
        """Fill ``mask`` once per seed; returns RGB uint8 arrays of ``image``'s size (known pixels unchanged).
        ``image`` may also be a list with one image per seed (rows that have diverged)."""
        images = row_images(image, len(seeds))
        if images[0].shape[:2] != mask.shape or images[0].ndim != 3:
            raise InpaintKitError(f"image {images[0].shape} and mask {mask.shape} sizes differ; resize the mask to the image")
        images = images * len(seeds) if len(images) == 1 else images
        if not mask.any():
            return [im.copy() for im in images]
        results = []
        for seed, image in zip(seeds, images):
            gen = torch.Generator().manual_seed(int(seed))  # this row's noise, coarse pass included
            if self.init != "noise" and (~mask).any():  # (a classical fill needs something known)
                init, strength = cv2_inpaint(image, mask, self.init), self.strength
            else:
                init, strength = self._coarse_fill(image, mask, gen, sampling.steps, progress, seed), self.refine_strength
            results.append(self._fill(image, mask, gen, sampling.steps, progress, seed, init, strength, save=True))
        return results

    def _coarse_fill(self, image, mask, gen, steps, progress, seed) -> np.ndarray | None:
        """For holes much wider than half a window: fill a downscaled copy first (hole plus context fit in a
        window there), upscaled as the start of the full-resolution pass. Gives large holes one coherent
        structure instead of independent guesses per window."""
        if self.coarse_factor_max < 1.5 or self.sampler_name == "repaint":
            return None
        top, left, bottom, right = mask_bbox(mask)
        factor = min(self.coarse_factor_max, max(bottom - top, right - left) / (self.res / 2))
        if factor < 1.5:
            return None
        h, w = mask.shape
        sh, sw = max(2, round(h / factor)), max(2, round(w / factor))
        # Hide the hole's old content before resizing (filters would leak it into neighbouring pixels),
        # and grow the small mask over the resampling filter's reach.
        fill = image[~mask].mean(axis=0) if (~mask).any() else np.full(3, 127.5)
        hidden = np.where(mask[..., None], fill.round().astype(np.uint8), image)
        small = resize_image(hidden, (sh, sw))
        small_mask = shrink_mask_any(mask, (sh, sw))
        small_mask = cv2.dilate(small_mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        coarse = self._fill(small, small_mask, gen, steps, progress, seed, None, 1.0, save=False)
        return resize_image(coarse, (h, w))

    def _fill(self, image, mask, gen, steps, progress, seed, init: np.ndarray | None, strength: float,
              save: bool) -> np.ndarray:
        """One row: sample the windows around ``mask`` (from ``init`` noised to ``strength`` if given) and
        paste into the image."""
        from tqdm import tqdm

        # 1. Pad small canvases (reflect) so that a whole window fits.
        h, w = mask.shape
        ph, pw = max(0, self.res - h), max(0, self.res - w)
        pad = "reflect" if min(h, w) > 1 and ph < h and pw < w else "edge"
        img_p = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=pad)
        hard_p = np.pad(mask, ((0, ph), (0, pw)))
        soft_p = soften_mask(hard_p, self.mask_soften)
        # 2. Windows around the mask; work only on the region they span.
        wins = plan_windows(soft_p > 0, self.res, self.overlap, margin=self.res // 4)
        r0, c0 = min(v.top for v in wins), min(v.left for v in wins)
        r1, c1 = max(v.top for v in wins) + self.res, max(v.left for v in wins) + self.res
        wins = [Window(v.top - r0, v.left - c0) for v in wins]
        known = image_to_tensor(img_p[r0:r1, c0:c1]).to(self.device, self.dtype)  # (1, 3, H, W)
        hard = torch.from_numpy(hard_p[r0:r1, c0:c1].astype(np.float32))[None, None].to(self.device, self.dtype)
        soft = torch.from_numpy(soft_p[r0:r1, c0:c1])[None, None].to(self.device, self.dtype)
        start = {}
        if init is not None:
            init_p = np.pad(init, ((0, ph), (0, pw), (0, 0)), mode=pad)[r0:r1, c0:c1]
            start = {"init": image_to_tensor(init_p).to(self.device, self.dtype), "strength": strength}
        # 3. Sample with this row's generator, blending the windows' predictions at every step.
        bar = tqdm(total=None, desc=f"ddpm seed {seed}", disable=not progress, leave=False)

        def callback(i, n, x):
            bar.total = n
            bar.update(1)
            if save:
                self._save_intermediate(image, x, (r0, c0), seed, i, n)

        eps_fn = self._eps_fn(wins, self._weight_canvas(wins, known.shape[-2:]), hard, known * (1 - hard))
        x = self.sampler(eps_fn, self.schedule, known, soft, steps, [gen], callback, **start)
        bar.close()
        return self._paste(image, x, (r0, c0), mask)

    # -- helpers -------------------------------------------------------------------------------

    def _weight_canvas(self, wins: list[Window], hw) -> torch.Tensor:
        wt = torch.zeros(1, 1, *hw, dtype=torch.float32)
        bw = blend_weights(self.res, self.overlap)
        for v in wins:
            wt[..., v.top : v.top + self.res, v.left : v.left + self.res] += bw
        return wt.to(self.device, self.dtype)

    def _eps_fn(self, wins: list[Window], weights, hard, masked):
        """eps_fn(x_t, t) for one row: run the network on every window and blend the predictions."""
        res, bw = self.res, blend_weights(self.res, self.overlap).to(self.device, self.dtype)

        def crop(x, v):
            return x[..., v.top : v.top + res, v.left : v.left + res]

        def eps_fn(xt: torch.Tensor, t: int) -> torch.Tensor:
            eps = torch.zeros_like(xt)
            for i in range(0, len(wins), self.max_batch):
                chunk = wins[i : i + self.max_batch]
                xb = torch.cat([crop(xt, v) for v in chunk])  # (n, 3, res, res)
                mb = torch.cat([crop(hard, v) for v in chunk])
                kb = torch.cat([crop(masked, v) for v in chunk])
                tb = torch.full((len(chunk),), t, dtype=torch.long, device=self.device)
                out = self.net(xb, tb, mb, kb)
                for v, e in zip(chunk, out):
                    crop(eps, v).add_(e[None] * bw)
            # blend the raw outputs (linear in eps or v), then convert on the shared canvas
            return to_eps(self.schedule, self.config.prediction, xt, t, eps / weights.clamp(min=1e-8))

        return eps_fn

    def _paste(self, image: np.ndarray, x: torch.Tensor, origin, mask: np.ndarray | None) -> np.ndarray:
        """Put the sampled region back into a copy of the image (cropping any padding). Outside ``mask``
        the image's pixels are kept, except the soft blend band with ``mask_soften``; ``mask=None``
        pastes the whole region (the raw canvas, for intermediates)."""
        r0, c0 = origin
        h, w = image.shape[:2]
        out = image.copy()
        region = tensor_to_image(x)
        rh, rw = min(region.shape[0], h - r0), min(region.shape[1], w - c0)
        sub = out[r0 : r0 + rh, c0 : c0 + rw]
        if mask is None or self.mask_soften:
            sub[...] = region[:rh, :rw]
        else:
            keep = ~mask[r0 : r0 + rh, c0 : c0 + rw]
            sub[...] = np.where(keep[..., None], sub, region[:rh, :rw])
        return out

    def _save_intermediate(self, image, x, origin, seed, i, n) -> None:
        """Save the canvas x_t (known region noised to the same level) every ``intermediate_every`` steps."""
        if self.save_intermediates is None:
            return
        every = self.intermediate_every or max(1, n // 10)
        if (i + 1) % every and i + 1 != n:
            return
        save_png(self.save_intermediates / f"seed{seed}_step{i + 1:04d}of{n:04d}.png",
                 self._paste(image, x, origin, None), {"seed": int(seed), "step": i + 1, "of": n})


def load_ddpm_engine(model: str = "builtin", *, device: str | None = None, dtype: str = "auto",
                     sampler: str | None = None, init: str | None = None, strength: float | None = None,
                     jump_length: int = 10, jump_n_sample: int = 10,
                     mask_soften: float = 0.0, save_intermediates: str | None = None, intermediate_every: int = 0,
                     overlap: int | None = None, max_batch: int = 32, coarse_factor_max: float = 4.0,
                     refine_strength: float = 0.6, **ignored) -> DDPMEngine:
    """Load ``builtin`` or a ``train-ddpm`` model folder as an engine.

    ``sampler``, ``init`` and ``strength`` default to the model's ``config.json`` ``extra.inference``
    (the builtin model: ddpm, telea, 0.5; see docs/benchmarks.md), else ddpm / noise.
    ``sampler``: ddpm (ancestral over ``Sampling.steps`` strided steps, 1000 = the full chain), ddim, or
    repaint (with ``jump_length`` / ``jump_n_sample``; always starts from noise). ``init``: noise, or
    telea / ns to start from that classical fill noised to ``strength`` (0-1] (ddim/ddpm only).
    ``mask_soften``: Gaussian sigma in pixels for a soft blend band outside the mask.
    ``save_intermediates``: folder receiving the canvas every ``intermediate_every`` steps (default: 10
    snapshots). ``overlap``: window overlap in pixels (default a quarter window). With ``init=noise``,
    holes wider than half a window are first filled at up to ``coarse_factor_max`` times smaller scale
    and refined from noise level ``refine_strength`` at full scale (``coarse_factor_max=1`` turns this
    off). Unknown keyword options (SD-only ones) are ignored."""
    if sampler is not None and sampler not in SAMPLERS:
        raise InpaintKitError(f"--sampler {sampler!r} unknown; choose from {', '.join(SAMPLERS)}")
    if init is not None and init not in INITS:
        raise InpaintKitError(f"--init {init!r} unknown; choose from {', '.join(INITS)}")
    if strength is not None and not 0 < strength <= 1:
        raise InpaintKitError(f"--strength must be in (0, 1] (got {strength})")
    if sampler == "repaint" and init not in (None, "noise"):
        raise InpaintKitError(f"--init {init} needs --sampler ddim or ddpm (RePaint always starts from noise)")
    if jump_length < 1 or jump_n_sample < 1:
        raise InpaintKitError(f"--jump_length and --jump_n_sample must be >= 1 (got {jump_length}, {jump_n_sample})")
    if mask_soften < 0:
        raise InpaintKitError(f"--mask_soften must be >= 0 (got {mask_soften})")
    folder = resolve_model(model)
    try:
        device, _, dt = resolve_device_dtype(device, DTYPE_ALIASES.get(dtype, dtype))
    except ValueError:
        raise InpaintKitError(f"--dtype {dtype!r} unknown; choose from {', '.join((*DTYPES, *DTYPE_ALIASES))}")
    dev = torch.device(device)
    net = load_model(folder, device=dev, dtype=dt)
    defaults = model_defaults(net.config, folder)
    sampler = sampler or defaults["sampler"]
    init = "noise" if sampler == "repaint" else (init or defaults["init"])
    strength = defaults["strength"] if strength is None else strength
    res = net.config.resolution
    ov = res // 4 if overlap is None else int(overlap)
    if not 0 <= ov < res:
        raise InpaintKitError(f"overlap must be in 0..{res - 1} pixels for {res}-pixel windows (got {ov})")
    return DDPMEngine(net, folder, str(model), dev, dt, sampler, jump_length, jump_n_sample, mask_soften,
                      save_intermediates, intermediate_every, ov, max_batch, coarse_factor_max, refine_strength,
                      init, float(strength))


def model_defaults(config, folder) -> dict:
    """The sampling defaults a model folder names in ``config.json`` ``extra.inference``, checked, over
    :data:`FALLBACK_DEFAULTS`."""
    named = config.extra.get("inference", {}) if isinstance(config.extra, dict) else {}
    d = {**FALLBACK_DEFAULTS, **{k: v for k, v in named.items() if k in FALLBACK_DEFAULTS}}
    if d["sampler"] not in SAMPLERS or d["init"] not in INITS or not 0 < float(d["strength"]) <= 1:
        raise InpaintKitError(f"{folder}/config.json: bad extra.inference {named}; sampler in {', '.join(SAMPLERS)}, "
                              f"init in {', '.join(INITS)}, 0 < strength <= 1")
    return d
