"""The thin filler's trainer on the shared :class:`~inpaint_kit.train.trainer.Trainer`: L1 between the
refined fill and the clean window inside the mask (each window's own mean, then the batch's, so a one-pixel
crack counts as much as a 15-pixel one), AdamW, an EMA of the weights exported as the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...thinfill import ThinFillConfig, build_net, count_parameters, save_thinfill
from ..ema import Ema
from ..trainer import Trainer, TrainResult, seed_of
from .config import THINFILL_WEIGHTS, ThinFillTrainConfig
from .data import ThinSampler

DATA_STREAM = 1


def to_tensors(samples) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(clean, fill, mask)`` batches: (B, 3, S, S) in [-1, 1] twice and (B, 1, S, S) float."""
    f = lambda arrs: torch.from_numpy(np.stack(arrs).astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2)  # noqa: E731
    clean, fill, mask = zip(*samples)
    return f(clean), f(fill), torch.from_numpy(np.stack(mask).astype(np.float32))[:, None]


def l1_in_mask(out: torch.Tensor, clean: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over each window's mask pixels (and channels), averaged over windows."""
    err = (out - clean).abs() * mask
    return (err.sum(dim=(1, 2, 3)) / (mask.sum(dim=(1, 2, 3)) * 3).clamp(min=1.0)).mean()


class ThinFillTrainer(Trainer):
    """One thin-filler run: ``ThinFillTrainer(cfg).run()``."""

    name = "train-thinfill"
    weights_names = THINFILL_WEIGHTS
    cfg: ThinFillTrainConfig

    def build_data(self):
        cfg = self.cfg
        self.net_config = ThinFillConfig(channels=cfg.channel_list, base=cfg.base_fill, extra={"training": self.recipe()})
        self.data = ThinSampler(cfg.data, cfg.size, cfg.kinds, cfg.max_width, cfg.min_scale, cfg.max_scale,
                                cfg.augment, cfg.base_fill, self.net_config.radius)

    def build_models(self):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.seed)
            self.net = build_net(self.net_config)
        self.place(trained=[self.net])
        self.ema = Ema(self.net, self.cfg.ema_decay)
        self.print(f"train-thinfill: {count_parameters(self.net) / 1e6:.2f} M params, {len(self.data.images)} images, "
                   f"{self.acc.num_processes} process(es) x batch {self.cfg.batch}, {self.cfg.size}x{self.cfg.size}")

    def model_fingerprint(self) -> dict:
        return {"model": "thinfill", "network": {"channels": list(self.net_config.channels), "base": self.net_config.base}}

    def trainable_modules(self):
        return [self.net]

    def micro_loss(self, micro: int) -> torch.Tensor:
        samples = [self.data.sample(np.random.default_rng(seed_of(self.cfg.seed, DATA_STREAM, d)))
                   for d in self.draws(micro)]
        clean, fill, mask = (t.to(self.acc.device) for t in to_tensors(samples))
        return l1_in_mask(self.models[0](fill, mask), clean, mask)

    def after_update(self):
        self.ema.step()

    def save_weights(self) -> Path:
        save_thinfill(self.out, self.net, self.ema.state_dict())
        return self.out / THINFILL_WEIGHTS[0]

    def save_extra(self, folder: Path) -> None:
        self.ema.save(folder)

    def load_extra(self, folder: Path, state: dict) -> None:
        self.ema.load(folder, state["step"])

    def record(self) -> dict:
        return {"parameters": count_parameters(self.net)}

    def summary(self, result: TrainResult) -> str:
        return f"trained {result.step} steps; model folder: {result.out} (--thin_model {result.out})"


def train(cfg: ThinFillTrainConfig) -> TrainResult:
    """Train (or with ``cfg.resume`` continue) a thin filler."""
    return ThinFillTrainer(cfg).run()
