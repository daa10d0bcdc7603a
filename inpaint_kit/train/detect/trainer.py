"""Training the damage detector: :class:`DetectTrainer` on the shared
:class:`~inpaint_kit.train.trainer.Trainer` (accelerate: one CPU, one GPU or many processes; exact resume;
atomic checkpoints; one writer). ``train(DetectTrainConfig(...))`` is the whole API.

Each sample draw ``d`` (:meth:`Trainer.draws`) renders synthetic damage on a random crop of a training
photo (:mod:`inpaint_kit.train.detect.data`) from its own generator seeded by ``(seed, d)``. The loss is
BCE plus soft Dice (or Tversky), which keeps thin structures, a few percent of the pixels, from being
drowned by the background. Every checkpoint also evaluates the EMA weights on the fixed validation split
(photos never trained on) and saves, with the model, the threshold with the best F1 among those that
flag at most ``--max_flagged`` of the clean validation pixels.

Output folder (a detector folder: ``--model <output_dir>`` loads it)::

    <output_dir>/config.json + model.safetensors   the network, its threshold and validation scores
    <output_dir>/training_config.json              every setting, step reached, processes, ...
    <output_dir>/checkpoints/step_000250/          raw weights, optimizer, LR schedule, ema.safetensors
    <output_dir>/logs/, validation/                TensorBoard; previews (--validate_every)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import InpaintKitError
from ...images import save_png
from ..ema import Ema
from ..trainer import Trainer, TrainResult, seed_of
from .config import DETECT_WEIGHTS, DetectTrainConfig
from .data import DamageData, Pairs, Photos, split, to_tensors, validation_set

DATA_STREAM = 1  # generator stream of the samples' numpy generators
VAL_SEED = 20240  # the validation split's samples (fixed: scores compare across checkpoints and runs)
BUFFERS_NAME = "buffers.safetensors"  # BatchNorm running statistics (not trainable parameters)


def loss_fn(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None, kind: str = "bce_dice",
            tversky: tuple[float, float] = (0.3, 0.7)) -> torch.Tensor:
    """BCE + soft Dice / Tversky over the batch (``logits``, ``target``, ``weight``: ``(B, 1, H, W)``; weight
    0 = ignored pixel). Dice/Tversky pool the batch's pixels, so a sample without damage adds only to the
    false-positive term."""
    weight = torch.ones_like(target) if weight is None else weight
    bce = (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight).sum() / weight.sum().clamp(min=1)
    if kind == "bce":
        return bce
    p = torch.sigmoid(logits) * weight
    tp = (p * target).sum()
    fp, fn = (p * (1 - target)).sum(), ((1 - p) * target * weight).sum()
    a, b = (0.5, 0.5) if kind == "bce_dice" else tversky
    return bce + 1 - (tp + 1) / (tp + a * fp + b * fn + 1)


@torch.no_grad()
def predict(net, x: torch.Tensor, batch: int = 8) -> np.ndarray:
    """Probabilities ``float32 (B, H, W)`` of a batch ``(B, 3, H, W)`` in [-1, 1] (eval mode), averaged over
    the network's test-time views (``net.config.views``), as ``detect`` computes them."""
    from ...detect.network import probability

    was = net.training
    net.eval()
    out = [probability(net, x[i : i + batch].float(), net.config.views).cpu().numpy() for i in range(0, len(x), batch)]
    net.train(was)
    return np.concatenate(out)


class DetectTrainer(Trainer):
    """One detector run: ``DetectTrainer(cfg).run()`` (see the module docstring)."""

    name = "train-detect"
    weights_names = DETECT_WEIGHTS
    cfg: DetectTrainConfig

    def build_data(self):
        cfg = self.cfg
        from ...detect.network import PRESETS, TRAINED_VIEWS, DetectorConfig

        self.net_config = DetectorConfig(PRESETS[cfg.preset], views=TRAINED_VIEWS)
        if cfg.size % self.net_config.multiple:
            raise InpaintKitError(f"--size {cfg.size}: must be a multiple of {self.net_config.multiple} for --preset "
                                  f"{cfg.preset}")
        train_paths, val_paths = split(cfg.data, cfg.val_images)
        self.settings = cfg.damage_settings()
        pairs = Pairs(cfg.pairs, cfg.mask_mode) if cfg.pairs else None
        self.data = DamageData(Photos(train_paths), cfg.size, self.settings, cfg.photo_scale, pairs,
                               cfg.pairs_fraction)
        self.val_photos = Photos(val_paths)
        self.val = None  # rendered on first use (main process only)

    def build_models(self):
        from ...detect.network import DetectorNet, count_parameters

        with torch.random.fork_rng(devices=[]):  # seeded initialisation; the caller's RNG is left alone
            torch.manual_seed(self.cfg.seed)
            self.net = DetectorNet(self.net_config)
        if self.cfg.init_from and self.resume_from is None:  # on resume the checkpoint's weights replace them
            from ...detect.network import load_net

            other = load_net(self.cfg.init_from, flag="--init_from")
            if other.config.channels != self.net_config.channels:
                raise InpaintKitError(f"--init_from {self.cfg.init_from}: its network ({other.config.channels}) is "
                                      f"not --preset {self.cfg.preset}'s {self.net_config.channels}")
            self.net.load_state_dict(other.state_dict())
        self.net.to(self.acc.device, memory_format=torch.channels_last)  # measured ~1.7x faster convs on CPU
        self.ema = Ema(self.net, self.cfg.ema_decay) if self.cfg.ema_decay > 0 else None
        if self.acc.is_main_process:
            print(f"train-detect: {count_parameters(self.net) / 1e3:.0f} k params, {len(self.data.photos.images)} "
                  f"training / {len(self.val_photos.images)} validation photos "
                  f"({', '.join(p.name for p in self.val_photos.paths)}), {self.acc.num_processes} process(es) x "
                  f"batch {self.cfg.batch}, {self.cfg.size}x{self.cfg.size}")

    def model_fingerprint(self) -> dict:
        return {"model": "detector", "channels": list(self.net_config.channels)}

    def trainable_modules(self):
        return [self.net]

    def micro_loss(self, micro: int) -> torch.Tensor:
        cfg = self.cfg
        samples = [self.data.sample(np.random.default_rng(seed_of(cfg.seed, DATA_STREAM, d)))
                   for d in self.draws(micro)]
        x, y, w = to_tensors(samples)
        logits = self.models[0](x.to(self.acc.device).contiguous(memory_format=torch.channels_last))
        return loss_fn(logits.float(), y.to(self.acc.device), w.to(self.acc.device), cfg.loss, tuple(cfg.tversky))

    def after_update(self):
        if self.ema is not None:
            self.ema.step()

    # --- weights and validation ---------------------------------------------------------------------
    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """The network's state dict with the EMA weights in place of the trained ones (BN statistics are
        the live network's)."""
        return self.ema.state_dict() if self.ema is not None else dict(self.net.state_dict())

    def export_net(self):
        """A CPU copy of the network with the exported (EMA) weights, in eval mode."""
        from ...detect.network import DetectorNet

        net = DetectorNet(self.net_config)
        net.load_state_dict({k: v.detach().cpu() for k, v in self.export_state_dict().items()})
        return net.eval()

    def validation(self) -> dict:
        """Scores of the exported weights on the validation split, and the chosen threshold."""
        from ...detect.metrics import best_threshold

        if self.val is None:
            damaged, clean = validation_set(self.val_photos, self.cfg.size, self.settings, self.cfg.val_samples,
                                            VAL_SEED, self.cfg.photo_scale)
            self.val = (damaged, clean, to_tensors(damaged)[0], to_tensors(clean)[0])
        damaged, clean, xd, xc = self.val
        net = self.export_net()
        pd, pc = predict(net, xd), predict(net, xc)
        t, c, cc = best_threshold(list(pd), [s.mask for s in damaged], list(pc), self.cfg.max_flagged,
                                  ignores=[s.ignore for s in damaged])
        return {"threshold": t, "step": self.step, "precision": round(c.precision, 4), "recall": round(c.recall, 4),
                "f1": round(c.f1, 4), "iou": round(c.iou, 4), "clean_flagged": round(cc.flagged, 5),
                "photos": [p.name for p in self.val_photos.paths]}

    def save_weights(self) -> Path:
        """``config.json`` + ``model.safetensors`` (EMA weights) with the threshold chosen on validation."""
        from ...detect.network import save_detector
        from ...detect.scratchlines import LineSettings

        scores = self.validation()
        net = self.export_net()
        net.config.threshold = scores["threshold"]
        net.config.lines = LineSettings().to_json()  # the long-line test runs after it (detect/scratchlines.py)
        net.config.extra = {"validation": scores, "hold_out": self.cfg.hold_out, "training": self.recipe()}
        save_detector(self.out, net)
        self.last_validation = scores
        print(f"step {self.step}: validation F1 {scores['f1']:.3f} (P {scores['precision']:.3f} R "
              f"{scores['recall']:.3f}) at threshold {scores['threshold']}, clean pixels flagged "
              f"{100 * scores['clean_flagged']:.3f} %")
        return self.out / DETECT_WEIGHTS[0]

    def validate(self) -> Path:
        """A preview: rows of validation input | truth | prediction (EMA weights)."""
        if self.val is None:
            self.validation()
        damaged, _, xd, _ = self.val
        p = predict(self.export_net(), xd[:4])
        rows = []
        for s, prob in zip(damaged[:4], p):
            truth = np.repeat(s.mask[..., None] * 255, 3, axis=2).astype(np.uint8)
            pred = np.repeat((prob * 255).round()[..., None], 3, axis=2).astype(np.uint8)
            rows.append(np.concatenate([s.image, truth, pred], axis=1))
        path = self.out / "validation" / f"step_{self.step:06d}.png"
        save_png(path, np.ascontiguousarray(np.concatenate(rows, axis=0)))
        return path

    def save_extra(self, folder: Path) -> None:
        """The EMA weights and the BatchNorm statistics (buffers, which the base checkpoints do not hold)."""
        from safetensors.torch import save_file

        save_file({n: b.detach().cpu().contiguous() for n, b in self.net.named_buffers()}, str(folder / BUFFERS_NAME))
        if self.ema is not None:
            self.ema.save(folder)

    def load_extra(self, folder: Path, state: dict) -> None:
        from safetensors import safe_open

        path = Path(folder) / BUFFERS_NAME
        if not path.is_file():
            raise InpaintKitError(f"--resume {path}: missing; the checkpoint is incomplete, resume an older one")
        with safe_open(str(path), framework="pt") as f:
            buffers = dict(self.net.named_buffers())
            if set(f.keys()) != set(buffers):
                raise InpaintKitError(f"--resume {path}: holds another network's statistics; start a new --output_dir")
            with torch.no_grad():
                for k in f.keys():
                    buffers[k].copy_(f.get_tensor(k))
        if self.ema is not None:
            self.ema.load(folder, state["step"])

    def record(self) -> dict:
        from ...detect.network import count_parameters

        return {"parameters": count_parameters(self.net), "validation": getattr(self, "last_validation", None)}

    def summary(self, result: TrainResult) -> str:
        return f"trained {result.step} steps; detector folder: {result.out} (detect --model {result.out})"


def train(cfg: DetectTrainConfig) -> TrainResult:
    """Train (or with ``cfg.resume`` continue) a damage detector; see the module docstring for the folder."""
    return DetectTrainer(cfg).run()
