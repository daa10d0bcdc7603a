"""Training the from-scratch inpainter on any folder of images: :class:`DdpmTrainer` on the shared
:class:`~inpaint_kit.train.trainer.Trainer` (accelerate: one CPU, one GPU or many processes; mixed
precision; exact resume; atomic checkpoints; one writer). ``train(DdpmTrainConfig(...))`` is the whole API;
the network, the diffusion math and the samplers live in :mod:`inpaint_kit.ddpm`.

Each sample draw ``d`` (:meth:`Trainer.draws`) takes a random window (crop at a random scale, random flip)
of one image held in memory and a fresh random mask (:mod:`inpaint_kit.train.ddpm.data`), both from its own
numpy generator seeded by ``(seed, d)``; its timestep and noise come from its own torch generator. So N
processes with ``--batch B`` train like one process with ``--batch N*B``, and a resumed run continues
exactly like an uninterrupted one. The loss is the MSE between the true and predicted noise (or v), inside
each window's hole with ``--loss_region masked``. AdamW with diffusers' ``get_scheduler``
(default: cosine with ``--warmup_steps``); diffusers' ``EMAModel`` keeps the exported weights.

Output folder (a model folder: ``--model <output_dir>`` loads it)::

    <output_dir>/config.json + model.safetensors   the network's config and its EMA weights
    <output_dir>/training_config.json              every setting, step reached, processes, ...
    <output_dir>/checkpoints/step_000250/          raw weights, optimizer, LR schedule, ema.safetensors,
                                                   trainer_state.json
    <output_dir>/logs/, validation/                TensorBoard; previews (--validate_every)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...ddpm.schedule import add_noise, make_schedule, to_eps, v_target
from ...ddpm.unet import PRESETS, InpaintUNet, ModelConfig, count_parameters, load_model, save_model
from ...errors import InpaintKitError
from ...images import save_png
from ..ema import Ema
from ..trainer import Trainer, TrainResult, seed_of
from .config import DDPM_WEIGHTS, DdpmTrainConfig
from .data import WindowSampler

DATA_STREAM, NOISE_STREAM = 1, 0  # generator streams of a draw: window + mask (numpy), timestep + noise (torch)


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


def draw_noise(x0: torch.Tensor, num_timesteps: int, generators, focus_strength: float = 1.0,
               focus_fraction: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Timesteps ``(B,)`` and noise like ``x0`` ``(B, 3, H, W)``: from one generator for the whole batch, or
    from a list of one generator per sample (then sample ``i`` does not depend on the batch it is in)."""
    if generators is None or isinstance(generators, torch.Generator):
        t = sample_timesteps(x0.shape[0], num_timesteps, generators, focus_strength, focus_fraction)
        return t, torch.randn(x0.shape, generator=generators)
    ts, noises = [], []
    for g in generators:
        ts.append(sample_timesteps(1, num_timesteps, g, focus_strength, focus_fraction))
        noises.append(torch.randn((1, *x0.shape[1:]), generator=g))
    return torch.cat(ts), torch.cat(noises)


def loss_fn(net, schedule, x0: torch.Tensor, mask: torch.Tensor, region: str, generator=None,
            focus_strength: float = 1.0, focus_fraction: float = 0.0, prediction: str | None = None) -> torch.Tensor:
    """MSE on the noise (or on v for a ``v`` network) at random timesteps (:func:`sample_timesteps`);
    ``region="masked"`` averages over each window's hole pixels only, then over the batch. ``generator``: one
    generator or one per sample (:func:`draw_noise`); ``prediction`` defaults to ``net.config.prediction``
    (pass it when ``net`` is wrapped, e.g. by DDP)."""
    prediction = prediction or net.config.prediction
    t, noise = draw_noise(x0, schedule.num_timesteps, generator, focus_strength, focus_fraction)
    noise = noise.to(x0.device)  # t stays on the CPU with the schedule's tables
    xt = add_noise(schedule, x0, t, noise)
    out = net(xt, t.to(x0.device), mask, x0 * (1 - mask)).float()
    target = noise if prediction == "epsilon" else v_target(schedule, x0, t, noise)
    err = (out - target) ** 2  # (B, 3, H, W)
    if region == "all":
        return err.mean()
    # Mean over each window's own hole, then over windows: a thin crack counts as much as a big hole
    # (pooling all hole pixels would let the large masks outweigh the cracks by ~50x).
    per_window = (err * mask).sum(dim=(1, 2, 3)) / (mask.sum(dim=(1, 2, 3)) * 3).clamp(min=1.0)
    return per_window.mean()


# --- samples ------------------------------------------------------------------------------------

@torch.no_grad()
def sample_grid(path: Path, config: ModelConfig, ema: dict, x0: torch.Tensor, mask: torch.Tensor, steps: int = 20):
    """Rows: masked input | DDIM sample with EMA weights | ground truth, as one PNG."""
    from ...ddpm.sampling import sample_ddim

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


# --- the trainer ----------------------------------------------------------------------------------

def network_fingerprint(config: ModelConfig) -> dict:
    """Identity of a DDPM network (recorded in checkpoints; ``--resume`` refuses another one)."""
    d = config.to_json()
    return {"model": "ddpm", "network": {k: d[k] for k in ("conditioning", "resolution", "block_out_channels",
                                                           "layers_per_block", "attention_levels", "norm_num_groups",
                                                           "schedule", "num_train_timesteps", "prediction")}}


class DdpmTrainer(Trainer):
    """One from-scratch DDPM run: ``DdpmTrainer(cfg).run()`` (see the module docstring)."""

    name = "train-ddpm"
    weights_names = DDPM_WEIGHTS
    cfg: DdpmTrainConfig

    def build_data(self):
        cfg = self.cfg
        self.model_config = ModelConfig(conditioning=cfg.conditioning, resolution=cfg.size, schedule=cfg.schedule,
                                        prediction=cfg.prediction, extra={"training": self.recipe()},
                                        **PRESETS[cfg.preset])  # checks --size against the downsampling first
        self.data = WindowSampler(cfg.data, cfg.size, cfg.kinds, cfg.min_scale, cfg.max_scale, cfg.colour_weight,
                                  cfg.permute_channels, cfg.augment)

    def build_models(self):
        cfg = self.cfg
        with torch.random.fork_rng(devices=[]):  # seeded initialisation; the caller's RNG is left alone
            torch.manual_seed(cfg.seed)
            self.net = InpaintUNet(self.model_config)
        if cfg.init_from and self.resume_from is None:  # on resume the checkpoint's weights replace them anyway
            try:
                self.net.load_state_dict(load_model(cfg.init_from).state_dict())
            except RuntimeError:
                raise InpaintKitError(f"--init_from {cfg.init_from}: its network differs from --preset {cfg.preset}; "
                                      "use the same preset") from None
        self.place(trained=[self.net])
        self.ema = Ema(self.net, cfg.ema_decay)
        self.schedule = make_schedule(cfg.schedule, self.model_config.num_train_timesteps)
        self.print(f"train-ddpm: {count_parameters(self.net) / 1e6:.2f} M params, {len(self.data.images)} images, "
                   f"{self.acc.num_processes} process(es) x batch {cfg.batch}, {cfg.size}x{cfg.size}")

    def model_fingerprint(self) -> dict:
        return network_fingerprint(self.model_config)

    def trainable_modules(self):
        return [self.net]

    def micro_loss(self, micro: int) -> torch.Tensor:
        cfg, device = self.cfg, self.acc.device
        draws = self.draws(micro)
        pairs = [self.data.sample(np.random.default_rng(seed_of(cfg.seed, DATA_STREAM, d))) for d in draws]
        x0 = torch.stack([x for x, _ in pairs]).to(device)  # (B, 3, S, S)
        mask = torch.stack([m for _, m in pairs]).to(device)  # (B, 1, S, S)
        return loss_fn(self.models[0], self.schedule, x0, mask, cfg.loss_region,
                       self.generators(draws, NOISE_STREAM), cfg.focus_strength, cfg.focus_fraction,
                       prediction=cfg.prediction)

    def after_update(self):
        self.ema.step()

    # --- outputs and checkpoints ------------------------------------------------------------------------
    def save_weights(self) -> Path:
        """``config.json`` + ``model.safetensors`` (EMA weights): a model folder ``--model`` loads."""
        save_model(self.out, self.net, self.ema.state_dict())
        return self.out / DDPM_WEIGHTS[0]

    def save_extra(self, folder: Path) -> None:
        self.ema.save(folder)

    def load_extra(self, folder: Path, state: dict) -> None:
        self.ema.load(folder, state["step"])

    def validate(self) -> Path:
        """Rows of masked input | DDIM sample with the EMA weights | ground truth (fixed preview windows)."""
        if not hasattr(self, "preview"):
            rng = np.random.default_rng(seed_of(self.cfg.seed, 12345))
            self.preview = self.data.batch(4, rng)
        path = self.out / "validation" / f"step_{self.step:06d}.png"
        sample_grid(path, self.model_config, self.ema.state_dict(), *self.preview)
        return path

    def record(self) -> dict:
        return {"network": network_fingerprint(self.model_config)["network"],
                "parameters": count_parameters(self.net)}

    def summary(self, result: TrainResult) -> str:
        return f"trained {result.step} steps; model folder: {result.out} (--model {result.out})"


def train(cfg: DdpmTrainConfig) -> TrainResult:
    """Train (or with ``cfg.resume`` continue) a DDPM inpainter; see the module docstring for the folder."""
    return DdpmTrainer(cfg).run()
