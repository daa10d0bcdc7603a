"""Training the from-scratch inpainter on any folder of images.

Each step: random windows (crop at a random scale, random flip) from the images held in memory, a fresh
random mask per window from :func:`inpaint_kit.masks.create_advanced_mask`, a random timestep, and the
MSE between true and predicted noise (inside the mask only with ``loss_region="masked"``). AdamW with
linear warmup then cosine decay; EMA weights are what gets exported. The output folder is always a
loadable model (``config.json`` + EMA ``model.safetensors``); ``checkpoint.pt`` next to it holds
everything needed to ``resume`` (raw weights, EMA, optimizer, LR schedule, step, RNG states).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import InpaintKitError
from ..images import atomic_write, load_image, save_png
from ..masks import MASK_KINDS, create_advanced_mask
from ..pairing import scan
from .schedule import PREDICTIONS, add_noise, make_schedule, to_eps, v_target
from .unet import PRESETS, InpaintUNet, ModelConfig, count_parameters, load_model, save_model

CHECKPOINT_NAME = "checkpoint.pt"
MASK_CANVASES = (64, 128, 256)  # masks are drawn at these sizes and a window is cut out (inference sees windows)


@dataclass
class TrainConfig:
    """One training run (the CLI builds exactly this)."""

    data: str
    out: str
    size: int = 64
    batch: int = 16
    steps: int = 2000
    lr: float = 2e-4
    warmup: int = 100
    weight_decay: float = 0.0
    loss_region: str = "masked"  # "masked" | "all"
    ema_decay: float = 0.999
    preset: str = "small"
    conditioning: str = "concat"
    schedule: str = "cosine"
    prediction: str = "epsilon"  # what the network outputs: "epsilon" (noise) or "v"
    init_from: str | None = None  # start from this model folder's weights (same architecture)
    mask_kinds: tuple[str, ...] = MASK_KINDS
    min_scale: float = 0.35  # windows are cut at scale in [min_scale, max_scale] of the native image
    max_scale: float = 1.0
    focus_strength: float = 1.0  # with focus_fraction > 0: that share of timesteps is drawn from [0, focus_strength*T)
    focus_fraction: float = 0.0  # (train where the --init/--strength sampling path works; 0 = uniform over [0, T))
    colour_weight: float = 1.0  # colour photos are drawn this many times as often as grey ones
    permute_channels: float = 0.0  # probability of shuffling a window's RGB channels (colour variety)
    save_every: int = 250
    sample_every: int = 0
    log_every: int = 25
    seed: int = 0
    resume: bool = False
    stop_after: int | None = None  # exit after this step (checkpointed) while keeping the LR horizon ``steps``
    threads: int | None = None
    grad_clip: float = 1.0
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.loss_region not in ("masked", "all"):
            raise InpaintKitError(f"--loss_region must be masked or all, got {self.loss_region!r}")
        if self.prediction not in PREDICTIONS:
            raise InpaintKitError(f"--prediction must be one of {', '.join(PREDICTIONS)}, got {self.prediction!r}")
        if self.preset not in PRESETS:
            raise InpaintKitError(f"--preset {self.preset!r} unknown; choose from {', '.join(PRESETS)}")
        bad = [k for k in self.mask_kinds if k not in MASK_KINDS]
        if bad:
            raise InpaintKitError(f"--mask_kinds: unknown {', '.join(bad)}; choose from {', '.join(MASK_KINDS)}")
        if self.steps < 1 or self.batch < 1:
            raise InpaintKitError(f"--steps and --batch must be >= 1 (got {self.steps}, {self.batch})")
        if not 0 < self.focus_strength <= 1 or not 0 <= self.focus_fraction <= 1:
            raise InpaintKitError(f"need 0 < --focus_strength <= 1 and 0 <= --focus_fraction <= 1 "
                                  f"(got {self.focus_strength}, {self.focus_fraction})")
        if not 0 < self.min_scale <= self.max_scale:
            raise InpaintKitError(f"need 0 < min_scale <= max_scale (got {self.min_scale}, {self.max_scale})")

    def model_config(self) -> ModelConfig:
        recipe = {k: v for k, v in asdict(self).items() if k not in ("resume", "stop_after", "threads", "extra")}
        recipe["mask_kinds"] = list(self.mask_kinds)
        return ModelConfig(conditioning=self.conditioning, resolution=self.size, schedule=self.schedule,
                           prediction=self.prediction, extra={"training": recipe}, **PRESETS[self.preset])


# --- data ---------------------------------------------------------------------------------------

class WindowSampler:
    """Random training windows ``(B, 3, S, S)`` in [-1, 1] and masks ``(B, 1, S, S)`` from a folder."""

    def __init__(self, folder: str, size: int, mask_kinds, min_scale: float, max_scale: float,
                 colour_weight: float = 1.0, permute_channels: float = 0.0):
        paths = scan(folder)
        if not paths:
            raise InpaintKitError(f"{folder}: no images found (looked for png/jpg/webp/bmp/tif, recursively)")
        self.images = [Image.fromarray(load_image(p)) for p in paths]
        self.names = [str(p.relative_to(folder)) for p in paths]
        self.size, self.kinds = size, tuple(mask_kinds)
        self.min_scale, self.max_scale = min_scale, max_scale
        colour = [float(np.ptp(np.asarray(im.reduce(4), np.int16), axis=2).mean() > 2) for im in self.images]
        w = np.array([colour_weight if c else 1.0 for c in colour])
        self.p = w / w.sum()
        self.permute = permute_channels

    def window(self, rng: np.random.Generator) -> np.ndarray:
        """One RGB uint8 window: a crop of side ``size/scale`` resized to ``size``, maybe mirrored."""
        im = self.images[int(rng.choice(len(self.images), p=self.p))]
        w, h = im.size
        # log-uniform scale, but never a crop larger than the image
        scale = math.exp(rng.uniform(math.log(self.min_scale), math.log(self.max_scale)))
        side = min(self.size / scale, w, h)
        x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
        crop = im.resize((self.size, self.size), Image.BICUBIC, box=(x0, y0, x0 + side, y0 + side))
        arr = np.asarray(crop)
        if self.permute and rng.random() < self.permute:
            arr = arr[..., rng.permutation(3)]
        return arr[:, ::-1] if rng.random() < 0.5 else arr

    def mask(self, rng: np.random.Generator) -> np.ndarray:
        """A window cut from a mask drawn on a larger canvas, so that mask scales match inference windows."""
        kind = self.kinds[int(rng.integers(len(self.kinds)))]
        canvas = max(self.size, int(MASK_CANVASES[int(rng.integers(len(MASK_CANVASES)))] * self.size / 64))
        for _ in range(8):
            m = create_advanced_mask(kind, canvas, canvas, rng)
            top, left = (int(v) for v in rng.integers(0, canvas - self.size + 1, size=2))
            m = m[top : top + self.size, left : left + self.size]
            if m.any():
                return m
        return create_advanced_mask(kind, self.size, self.size, rng)

    def batch(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = np.stack([self.window(rng) for _ in range(n)]).astype(np.float32) / 127.5 - 1.0
        m = np.stack([self.mask(rng) for _ in range(n)]).astype(np.float32)
        return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(m)[:, None]


# --- one step -----------------------------------------------------------------------------------

def sample_timesteps(n: int, num_timesteps: int, generator: torch.Generator | None = None,
                     focus_strength: float = 1.0, focus_fraction: float = 0.0) -> torch.Tensor:
    """``n`` training timesteps: uniform over [0, T), except that each one is drawn from
    [0, focus_strength * T) with probability ``focus_fraction``."""
    t = torch.randint(0, num_timesteps, (n,), generator=generator)
    if focus_fraction > 0:
        low = torch.randint(0, max(1, round(focus_strength * num_timesteps)), (n,), generator=generator)
        t = torch.where(torch.rand(n, generator=generator) < focus_fraction, low, t)
    return t


def loss_fn(net: InpaintUNet, schedule, x0: torch.Tensor, mask: torch.Tensor, region: str,
            generator: torch.Generator | None = None, focus_strength: float = 1.0,
            focus_fraction: float = 0.0) -> torch.Tensor:
    """MSE on the noise (or on v for a ``v`` network) at random timesteps (:func:`sample_timesteps`);
    ``region="masked"`` averages over each window's hole pixels only, then over the batch."""
    b = x0.shape[0]
    t = sample_timesteps(b, schedule.num_timesteps, generator, focus_strength, focus_fraction)
    noise = torch.randn(x0.shape, generator=generator)
    xt = add_noise(schedule, x0, t, noise)
    out = net(xt, t, mask, x0 * (1 - mask))
    target = noise if net.config.prediction == "epsilon" else v_target(schedule, x0, t, noise)
    err = (out - target) ** 2  # (B, 3, H, W)
    if region == "all":
        return err.mean()
    # Mean over each window's own hole, then over windows: a thin crack counts as much as a big hole
    # (pooling all hole pixels would let the large masks outweigh the cracks by ~50x).
    per_window = (err * mask).sum(dim=(1, 2, 3)) / (mask.sum(dim=(1, 2, 3)) * 3).clamp(min=1.0)
    return per_window.mean()


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup to 1, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@torch.no_grad()
def ema_update(ema: dict, net: torch.nn.Module, step: int, decay: float) -> None:
    """ema <- d * ema + (1 - d) * weights, with d warming up as (1 + step) / (10 + step)."""
    d = min(decay, (1 + step) / (10 + step))
    for k, v in net.state_dict().items():
        if v.dtype.is_floating_point:
            ema[k].mul_(d).add_(v, alpha=1 - d)
        else:
            ema[k].copy_(v)


# --- checkpoints --------------------------------------------------------------------------------

def save_checkpoint(out: Path, net, ema, opt, sched, step: int, rng: np.random.Generator, torch_gen) -> None:
    """Write the resumable state and export the EMA model, each file atomically."""
    state = {
        "step": step,
        "net": net.state_dict(),
        "ema": ema,
        "opt": opt.state_dict(),
        "sched": sched.state_dict(),
        "torch_rng": torch_gen.get_state(),
        "numpy_rng": json.dumps(rng.bit_generator.state),
    }
    atomic_write(out / CHECKPOINT_NAME, lambda tmp: torch.save(state, tmp))
    save_model(out, net, ema)


def load_checkpoint(out: Path, net, ema, opt, sched, rng: np.random.Generator, torch_gen) -> int:
    """Restore a run saved by :func:`save_checkpoint`; returns the step to continue from."""
    path = out / CHECKPOINT_NAME
    if not path.is_file():
        raise InpaintKitError(f"{path}: nothing to resume; drop --resume to start a new run")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state["net"])
    for k, v in state["ema"].items():
        ema[k].copy_(v)
    opt.load_state_dict(state["opt"])
    sched.load_state_dict(state["sched"])
    torch_gen.set_state(state["torch_rng"])
    rng.bit_generator.state = json.loads(state["numpy_rng"])
    return int(state["step"])


# --- samples ------------------------------------------------------------------------------------

@torch.no_grad()
def sample_grid(path: Path, config: ModelConfig, ema: dict, x0: torch.Tensor, mask: torch.Tensor, steps: int = 20):
    """Rows: masked input | DDIM sample with EMA weights | ground truth, as one PNG."""
    from .sampling import sample_ddim

    net = InpaintUNet(config)
    net.load_state_dict(ema)
    net.eval()
    schedule = make_schedule(config.schedule, config.num_train_timesteps)
    masked = x0 * (1 - mask)

    def eps_fn(xt, t):
        out = net(xt, torch.full((xt.shape[0],), t, dtype=torch.long), mask, masked)
        return to_eps(schedule, config.prediction, xt, t, out)

    gens = [torch.Generator().manual_seed(i) for i in range(x0.shape[0])]
    out = sample_ddim(eps_fn, schedule, x0, mask, steps, gens)
    shown = masked + mask  # the hole painted white
    rows = torch.cat([shown, out, x0], dim=3)  # (B, 3, S, 3S)
    img = torch.cat(list(rows), dim=1)  # (3, B*S, 3S)
    arr = ((img.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    save_png(path, np.ascontiguousarray(arr))


# --- the run ------------------------------------------------------------------------------------

def train(cfg: TrainConfig, progress: bool = True) -> Path:
    """Train (or resume) and return the output model folder."""
    from tqdm import tqdm

    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    model_config = cfg.model_config()  # also validates size against the network's downsampling
    data = WindowSampler(cfg.data, cfg.size, cfg.mask_kinds, cfg.min_scale, cfg.max_scale, cfg.colour_weight,
                         cfg.permute_channels)
    rng = np.random.default_rng(cfg.seed)
    torch_gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # network initialisation

    net = InpaintUNet(model_config)
    if cfg.init_from and not cfg.resume:
        try:
            net.load_state_dict(load_model(cfg.init_from).state_dict())
        except RuntimeError:
            raise InpaintKitError(f"--init_from {cfg.init_from}: its network differs from --preset {cfg.preset}; "
                                  "use the same preset") from None
    ema = {k: v.detach().clone() for k, v in net.state_dict().items()}
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.warmup, cfg.steps))
    schedule = make_schedule(cfg.schedule, model_config.num_train_timesteps)
    start = load_checkpoint(out, net, ema, opt, sched, rng, torch_gen) if cfg.resume else 0
    if not cfg.resume and (out / CHECKPOINT_NAME).exists():
        raise InpaintKitError(f"{out}: already holds a training run; pass --resume or choose another --out")

    preview = data.batch(4, np.random.default_rng(cfg.seed + 12345)) if cfg.sample_every else None
    tqdm.write(f"ddpm: {count_parameters(net) / 1e6:.2f} M params, {len(data.images)} images, "
               f"steps {start}..{cfg.steps}, batch {cfg.batch}, {cfg.size}x{cfg.size}")
    net.train()
    end = min(cfg.steps, cfg.stop_after or cfg.steps)
    bar = tqdm(range(start, end), initial=start, total=cfg.steps, disable=not progress, dynamic_ncols=True)
    smooth, t0 = None, time.time()
    for step in bar:
        x0, mask = data.batch(cfg.batch, rng)
        loss = loss_fn(net, schedule, x0, mask, cfg.loss_region, torch_gen, cfg.focus_strength, cfg.focus_fraction)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        ema_update(ema, net, step, cfg.ema_decay)
        smooth = loss.item() if smooth is None else 0.98 * smooth + 0.02 * loss.item()
        bar.set_postfix(loss=f"{smooth:.4f}", lr=f"{sched.get_last_lr()[0]:.2e}")
        done = step + 1
        if cfg.log_every and done % cfg.log_every == 0:
            tqdm.write(f"step {done} loss {smooth:.5f} lr {sched.get_last_lr()[0]:.2e} "
                       f"{(time.time() - t0) / (done - start):.2f} s/step")
        if done % cfg.save_every == 0 or done == end:
            save_checkpoint(out, net, ema, opt, sched, done, rng, torch_gen)
        if preview is not None and done % cfg.sample_every == 0:
            sample_grid(out / "samples" / f"step_{done:07d}.png", model_config, ema, *preview)
    if start >= end and not (out / "model.safetensors").exists():
        save_checkpoint(out, net, ema, opt, sched, start, rng, torch_gen)
    return out
