"""The DDPM engine: fills a canvas of any size by denoising windows of the model's resolution around
the mask, all windows advanced together at every step.

Why windows: the network was trained on ``resolution``-pixel windows at the photo's own scale, so a
crack only needs local context, and cost grows with the mask, not the image. Overlapping windows are
blended MultiDiffusion-style (Bar-Tal et al. 2023): at every step each window predicts its pixels'
noise (or v, for v-prediction models; converted to noise on the shared canvas), the predictions are averaged with weights that fade towards window edges, and one diffusion
step is taken on the shared canvas, so there are no seams. Windows containing no mask pixel are skipped.

Where the chain starts (``init``): ``noise`` is plain diffusion (large holes first get a coarse pass at a
smaller scale, see ``_coarse_fill``); ``telea`` / ``ns`` start from OpenCV's classical fill noised to
``strength * T`` and run ``strength * steps`` steps (SDEdit, Meng et al. 2022; AUTOMATIC1111's "masked
content: fill" with a denoising strength): the classical fill fixes the hole's colours and layout, the
network adds the texture. A model folder may name its defaults in ``config.json`` under
``extra.inference`` (the builtin model does); explicit options win.

Items (rows, crop windows) each own a ``torch.Generator`` seeded with the item's seed, so an item's noise
never depends on what else is batched with it; all items advance together, each item's windows sharing its
network calls (never another item's: float sums depend on a batch's make-up, so a row is the same alone or
batched, bit for bit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from ..classical import cv2_inpaint
from .base import DTYPES, Canvas, RowsMixin, Sampling, check_items, resolve_device_dtype, to_float, to_uint8
from ..errors import InpaintKitError
from .options import INITS, DDPMOptions, model_defaults
from ..geometry import cover_mask, mask_bbox, resize_image
from ..images import save_png
from ..ddpm.builtin import resolve_model
from ..ddpm.sampling import SAMPLERS, get_sampler
from ..ddpm.schedule import make_schedule, to_eps
from ..ddpm.tensors import image_to_tensor, soften_mask, tensor_to_float
from ..ddpm.unet import load_model

DTYPE_ALIASES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}  # also accepted here


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


class DDPMEngine(RowsMixin):
    """Implements :class:`inpaint_kit.engine.Engine` for a model folder saved by ``train-ddpm``."""

    def __init__(self, net, model_name: str, device, dtype, sampler: str, jump_length: int,
                 jump_n_sample: int, mask_soften: float, save_intermediates: str | None, intermediate_every: int,
                 overlap: int, max_batch: int, coarse_factor_max: float, refine_strength: float,
                 init: str = "noise", strength: float = 1.0):
        self.net, self.model_name = net, model_name
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
    def fill(self, items: Sequence[Canvas], sampling: Sampling = Sampling(), progress: bool = True) -> list[np.ndarray]:
        """Fill every item's mask; returns RGB float32 arrays in [0, 1] of the items' size (known pixels
        ``v / 255`` of the item's image).
        All items advance through the chain together: at every step, the windows of every item go through
        the network in shared batches. Each item's noise comes from its own seed only."""
        try:
            check_items(items, 1)
        except ValueError as e:
            raise InpaintKitError(f"{e}; resize the mask to the image") from None
        results = [to_float(it.image) for it in items]
        todo = [i for i, it in enumerate(items) if it.mask.any()]
        gens = {i: torch.Generator().manual_seed(int(items[i].seed)) for i in todo}  # coarse pass included
        starts: dict[int, tuple[np.ndarray | None, float]] = {}
        classical: dict[tuple[int, int], np.ndarray] = {}  # rows of one image share one OpenCV fill
        for i in todo:
            it = items[i]
            if self.init != "noise" and (~it.mask).any():  # (a classical fill needs something known)
                key = (id(it.image), id(it.mask))
                if key not in classical:
                    classical[key] = cv2_inpaint(it.image, it.mask, self.init)
                starts[i] = (classical[key], self.strength)
        coarse = self._coarse_fill([i for i in todo if i not in starts], items, gens, sampling.steps, progress)
        for i in todo:
            starts.setdefault(i, (coarse.get(i), self.refine_strength if i in coarse else 1.0))
        # One chain per (has a start image, strength) group; items in a group share every network call.
        groups: dict[tuple[bool, float], list[int]] = {}
        for i in todo:
            groups.setdefault((starts[i][0] is not None, starts[i][1]), []).append(i)
        for (has_init, strength), idx in groups.items():
            filled = self._fill_batch([items[i].image for i in idx], [items[i].mask for i in idx], [gens[i] for i in idx],
                                      [items[i].seed for i in idx], sampling.steps, progress,
                                      [starts[i][0] for i in idx] if has_init else None, strength, save=True)
            for i, f in zip(idx, filled):
                results[i] = f
        return results

    def _coarse_fill(self, idx: list[int], items, gens, steps, progress) -> dict[int, np.ndarray]:
        """For holes much wider than half a window: fill a downscaled copy first (hole plus context fit in a
        window there), upscaled as the start of the full-resolution pass. Gives large holes one coherent
        structure instead of independent guesses per window. Items of one small size share a batch."""
        if self.coarse_factor_max < 1.5 or self.sampler_name == "repaint":
            return {}
        plans: dict[tuple[int, int], list[tuple[int, np.ndarray, np.ndarray]]] = {}
        for i in idx:
            image, mask = items[i].image, items[i].mask
            top, left, bottom, right = mask_bbox(mask)
            factor = min(self.coarse_factor_max, max(bottom - top, right - left) / (self.res / 2))
            if factor < 1.5:
                continue
            h, w = mask.shape
            sh, sw = max(2, round(h / factor)), max(2, round(w / factor))
            # Hide the hole's old content before resizing (filters would leak it into neighbouring pixels),
            # and grow the small mask over the resampling filter's reach.
            fill = image[~mask].mean(axis=0) if (~mask).any() else np.full(3, 127.5)
            hidden = np.where(mask[..., None], fill.round().astype(np.uint8), image)
            small_mask = cover_mask(mask, (sh, sw))
            small_mask = cv2.dilate(small_mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
            plans.setdefault((sh, sw), []).append((i, resize_image(hidden, (sh, sw)), small_mask))
        out = {}
        for plan in plans.values():
            coarse = self._fill_batch([p[1] for p in plan], [p[2] for p in plan], [gens[p[0]] for p in plan],
                                      [items[p[0]].seed for p in plan], steps, progress, None, 1.0, save=False)
            for (i, _, _), c in zip(plan, coarse):
                out[i] = resize_image(to_uint8(c), items[i].mask.shape)  # a start, noised again: 8 bits as before
        return out

    def _fill_batch(self, images, masks, gens, seeds, steps, progress, inits: list[np.ndarray] | None,
                    strength: float, save: bool) -> list[np.ndarray]:
        """Sample the windows around each item's mask (from ``inits`` noised to ``strength`` if given), all
        items (of one size) in one chain, and paste each into its image."""
        from ..progress import steps_bar

        # 1. Pad small canvases (reflect) so that a whole window fits.
        h, w = masks[0].shape
        ph, pw = max(0, self.res - h), max(0, self.res - w)
        mode = "reflect" if min(h, w) > 1 and ph < h and pw < w else "edge"
        pad = lambda a: np.pad(a, ((0, ph), (0, pw)) + ((0, 0),) * (a.ndim - 2), mode=mode)  # noqa: E731
        hard_p = [np.pad(m, ((0, ph), (0, pw))) for m in masks]
        soft_p = [soften_mask(m, self.mask_soften) for m in hard_p]
        # 2. Each item's windows around its mask (canvas coordinates).
        wins = [plan_windows(sp > 0, self.res, self.overlap, margin=self.res // 4) for sp in soft_p]
        dev = dict(device=self.device, dtype=self.dtype)
        known = torch.cat([image_to_tensor(pad(im)) for im in images]).to(**dev)  # (B, 3, H, W)
        hard = torch.from_numpy(np.stack(hard_p).astype(np.float32))[:, None].to(**dev)  # (B, 1, H, W)
        soft = torch.from_numpy(np.stack(soft_p))[:, None].to(**dev)
        start = {}
        if inits is not None:
            start = {"init": torch.cat([image_to_tensor(pad(im)) for im in inits]).to(**dev), "strength": strength}
        # 3. Sample every item's chain with its own generator, blending its windows' predictions at every step.
        bar = steps_bar(steps, desc=f"steps (x{len(images)})", enabled=progress)

        def callback(i, n, x):
            if bar.total != n:  # RePaint's jumps make more network calls than --steps
                bar.total = n
                bar.refresh()
            bar.update(1)
            if save:
                for b, image in enumerate(images):
                    self._save_intermediate(image, x[b : b + 1], seeds[b], i, n)

        eps_fn = self._eps_fn(wins, self._weight_canvas(wins, known.shape[-2:]), hard, known * (1 - hard))
        x = self.sampler(eps_fn, self.schedule, known, soft, steps, list(gens), callback, **start)
        bar.close()
        return [self._paste(image, x[b : b + 1], mask) for b, (image, mask) in enumerate(zip(images, masks))]

    # -- helpers -------------------------------------------------------------------------------

    def _weight_canvas(self, wins: list[list[Window]], hw) -> torch.Tensor:
        """(B, 1, H, W): the sum of each item's window blend weights."""
        wt = torch.zeros(len(wins), 1, *hw, dtype=torch.float32)
        bw = blend_weights(self.res, self.overlap)
        for b, item_wins in enumerate(wins):
            for v in item_wins:
                wt[b, :, v.top : v.top + self.res, v.left : v.left + self.res] += bw
        return wt.to(self.device, self.dtype)

    def _eps_fn(self, wins: list[list[Window]], weights, hard, masked):
        """eps_fn(x_t, t) for a batch of items: each item's windows through the network in batches of
        ``max_batch``, each item's predictions blended on its own canvas."""
        res, bw = self.res, blend_weights(self.res, self.overlap).to(self.device, self.dtype)

        def crop(x, b, v):
            return x[b : b + 1, :, v.top : v.top + res, v.left : v.left + res]

        # chunks never mix items: a convolution's float sums may differ in the last bit with the batch's
        # make-up (the CPU kernels pick their blocking by batch size), so an item alone gets exactly the
        # network calls it gets batched with other rows, and its pixels are the same
        chunks = [[(b, v) for v in item_wins[i : i + self.max_batch]]
                  for b, item_wins in enumerate(wins) for i in range(0, len(item_wins), self.max_batch)]

        def eps_fn(xt: torch.Tensor, t: int) -> torch.Tensor:
            eps = torch.zeros_like(xt)
            for chunk in chunks:
                xb = torch.cat([crop(xt, b, v) for b, v in chunk])  # (n, 3, res, res)
                mb = torch.cat([crop(hard, b, v) for b, v in chunk])
                kb = torch.cat([crop(masked, b, v) for b, v in chunk])
                tb = torch.full((len(chunk),), t, dtype=torch.long, device=self.device)
                out = self.net(xb, tb, mb, kb)
                for (b, v), e in zip(chunk, out):
                    crop(eps, b, v).add_(e[None] * bw)
            # blend the raw outputs (linear in eps or v), then convert on the shared canvas
            return to_eps(self.schedule, self.config.prediction, xt, t, eps / weights.clamp(min=1e-8))

        return eps_fn

    def _paste(self, image: np.ndarray, x: torch.Tensor, mask: np.ndarray | None) -> np.ndarray:
        """Put the sampled canvas back into a copy of the image (cropping any padding). Outside ``mask``
        the image's pixels are kept, except the soft blend band with ``mask_soften``; ``mask=None``
        pastes the whole canvas (the raw canvas, for intermediates)."""
        h, w = image.shape[:2]
        region = tensor_to_float(x)[:h, :w]  # (h, w, 3) float32 in [0, 1]
        if mask is None or self.mask_soften:
            return np.ascontiguousarray(region)
        return np.where(mask[..., None], region, to_float(image))

    def _save_intermediate(self, image, x, seed, i, n) -> None:
        """Save the canvas x_t (known region noised to the same level) every ``intermediate_every`` steps."""
        if self.save_intermediates is None:
            return
        every = self.intermediate_every or max(1, n // 10)
        if (i + 1) % every and i + 1 != n:
            return
        save_png(self.save_intermediates / f"seed{seed}_step{i + 1:04d}of{n:04d}.png",
                 to_uint8(self._paste(image, x, None)), {"seed": int(seed), "step": i + 1, "of": n})


def load_ddpm_engine(model: str = "builtin", *, device: str | None = None, dtype: str = "auto",
                     options: DDPMOptions | None = None, **fields) -> DDPMEngine:
    """Load ``builtin`` or a ``train-ddpm`` model folder as an engine, with ``options`` (a
    :class:`~inpaint_kit.engine.options.DDPMOptions`; keyword ``fields`` replace single options of it).

    ``sampler``, ``init`` and ``strength`` default to the model's ``config.json`` ``extra.inference``
    (the builtin model: ddpm, telea, 0.5; see docs/benchmarks.md), else ddpm / noise.
    ``sampler``: ddpm (ancestral over ``Sampling.steps`` strided steps, 1000 = the full chain), ddim, or
    repaint (with ``jump_length`` / ``jump_n_sample``, default 10 each; always starts from noise).
    ``init``: noise, or telea / ns to start from that classical fill noised to ``strength`` (0-1]
    (ddim/ddpm only). ``mask_soften``: Gaussian sigma in pixels for a soft blend band outside the mask.
    ``save_intermediates``: folder receiving the canvas every ``intermediate_every`` steps (default: 10
    snapshots). ``overlap``: window overlap in pixels (default a quarter window). With ``init=noise``,
    holes wider than half a window are first filled at up to ``coarse_factor_max`` times smaller scale
    and refined from noise level ``refine_strength`` at full scale (``coarse_factor_max=1`` turns this
    off). An unknown field is a TypeError: nothing is silently ignored."""
    o = replace(options or DDPMOptions(), **fields)
    sampler, init, strength = o.sampler, o.init, o.strength
    jump_length = 10 if o.jump_length is None else o.jump_length
    jump_n_sample = 10 if o.jump_n_sample is None else o.jump_n_sample
    mask_soften = o.mask_soften or 0.0
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
    ov = res // 4 if o.overlap is None else int(o.overlap)
    if not 0 <= ov < res:
        raise InpaintKitError(f"overlap must be in 0..{res - 1} pixels for {res}-pixel windows (got {ov})")
    return DDPMEngine(net, str(model), dev, dt, sampler, jump_length, jump_n_sample, mask_soften,
                      o.save_intermediates, o.intermediate_every, ov, o.max_batch, o.coarse_factor_max,
                      o.refine_strength, init, float(strength))
