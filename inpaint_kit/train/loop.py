"""The fine-tuning loop on accelerate: build, step, validate, checkpoint, save.

``train(LoraTrainConfig(...))`` is the whole API. The same code runs on one CPU, one GPU, or many GPUs /
nodes under ``accelerate launch`` (each process draws different samples; gradients are averaged).

Reproducibility and resume: every random choice of update ``s`` (samples, crops, masks, VAE sampling,
noise, timesteps) is drawn from generators seeded with ``(seed, micro-batch number, process)``, so a run
resumed from step ``k`` continues exactly like an uninterrupted one; the checkpoint holds the trained
weights, optimizer, LR scheduler (and accelerate's RNG states) and ``trainer_state.json``.

Output folder::

    <out>/lora_unet.safetensors | unet_partial_tuned.safetensors   final (and latest checkpoint's) weights
    <out>/training_config.json     every argument, base model, step reached, NaN skips, ...
    <out>/checkpoints/step_000500/ accelerate state + trainer_state.json (atomic: temp folder + rename)
    <out>/logs/                    TensorBoard (loss, lr, validation images)
    <out>/validation/step_000500.png
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..errors import InpaintKitError
from ..images import atomic_write
from . import data, lora, prior
from .config import CONFIG_NAME, LoraTrainConfig
from .objective import inpaint_loss

STATE_NAME = "trainer_state.json"
TRAINABLE_NAME = "trainable_{}.safetensors"


@dataclass
class TrainResult:
    """What a run did: where it wrote, how far it got, and its loss per update."""

    out: Path
    weights: Path
    step: int
    losses: list[float] = field(default_factory=list)
    nan_skips: int = 0
    trainable_params: int = 0
    seconds: float = 0.0


def load_base_pipeline(model: str):
    """The base ``StableDiffusionInpaintPipeline`` from a hub id, a local folder or a single checkpoint,
    loaded exactly as ``infer`` loads it (same sources, same one-line errors)."""
    from ..engine.sd import load_pipeline

    pipe = load_pipeline(model)
    if pipe.unet.config.in_channels != 9:
        raise InpaintKitError(f"--model {model}: its UNet takes {pipe.unet.config.in_channels} input channels, "
                              "not 9; use an inpainting model (e.g. stabilityai/stable-diffusion-2-inpainting)")
    return pipe


def model_fingerprint(model: str, unet) -> dict:
    """Identity of a base model, recorded in checkpoints so ``--resume`` refuses a different one."""
    path = Path(model)
    name = str(path.resolve()) if path.exists() else model
    cfg = unet.config
    return {"model": name, "unet": {"cross_attention_dim": cfg.cross_attention_dim,
                                    "block_out_channels": list(cfg.block_out_channels),
                                    "sample_size": cfg.sample_size}}


def find_checkpoint(resume: str, out: Path) -> Path:
    """Resolve ``--resume``: a checkpoint folder, an output folder (its newest checkpoint) or ``latest``."""
    where = out if resume == "latest" else Path(resume)
    if (where / STATE_NAME).is_file():
        return where
    ckpts = sorted((where / "checkpoints").glob("step_*")) if (where / "checkpoints").is_dir() else []
    ckpts = [c for c in ckpts if (c / STATE_NAME).is_file()]
    if not ckpts:
        raise InpaintKitError(f"--resume {resume}: no checkpoint found in {where}; pass a checkpoints/step_* folder")
    return ckpts[-1]


def _seed_of(*parts: int) -> int:
    """A 63-bit seed derived from a tuple of ints (independent streams for independent draws)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint64)[0] >> 1)


def _tb_value(v):
    return v if isinstance(v, (int, float, str, bool)) else str(v)


class LoraTrainer:
    """One fine-tuning run: ``LoraTrainer(cfg).run()``. Split into build / step / validate / save."""

    def __init__(self, cfg: LoraTrainConfig):
        from accelerate import Accelerator
        from accelerate.state import AcceleratorState, GradientState
        from accelerate.utils import ProjectConfiguration

        self.cfg = cfg.validate()
        self.out = Path(cfg.out)
        self.samples = data.find_samples(cfg.data_root, cfg.mask_source, cfg.mask_mode, cfg.prompt or
                                         (cfg.instance_prompt or ""), cfg.size)
        if cfg.instance_prompt:  # DreamBooth: the instance prompt replaces the default caption
            self.samples = [s if s.image.with_suffix(".txt").is_file() else
                            data.Sample(s.image, s.mask, s.mask_mode, cfg.instance_prompt) for s in self.samples]
        # The accelerate state is a per-process singleton; a second run in one Python process (tests, notebooks)
        # may ask for another precision, so start it afresh (the distributed PartialState is kept).
        AcceleratorState._reset_state()
        GradientState._reset_state()
        self.acc = Accelerator(
            mixed_precision=cfg.mixed_precision,
            log_with="tensorboard",
            project_config=ProjectConfiguration(project_dir=str(self.out), logging_dir=str(self.out / "logs")),
            cpu=cfg.device == "cpu",
        )
        if cfg.mixed_precision == "fp16" and self.acc.device.type == "cpu":
            raise InpaintKitError("--mixed_precision fp16 needs a GPU (CPU autocast is bf16 only); use bf16 or no")
        self.weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.acc.mixed_precision, torch.float32)
        self.step, self.nan_skips, self.losses = 0, 0, []
        self._resume_from = find_checkpoint(cfg.resume, self.out) if cfg.resume else None
        self._build_models()
        if self._resume_from is not None:
            self._check_resumable(self._resume_from)
        self._build_optimizer()

    # --- build ---------------------------------------------------------------------------------------
    def _build_models(self):
        cfg, device = self.cfg, self.acc.device
        pipe = load_base_pipeline(cfg.model)
        self.fingerprint = model_fingerprint(cfg.model, pipe.unet)
        if cfg.with_prior:
            self._prepare_class_images(pipe)
        unet, text_encoder = pipe.unet, pipe.text_encoder
        if cfg.unet_mode == "lora":
            lora.check_rank(unet, cfg.rank)
        if cfg.train_text_encoder:
            lora.check_rank(text_encoder, cfg.rank, lora.TEXT_TARGETS, "text encoder")
        pipe.vae.requires_grad_(False)
        text_encoder.requires_grad_(False)
        with torch.random.fork_rng(devices=[]):  # seeded LoRA initialisation; the caller's RNG is left alone
            torch.manual_seed(cfg.seed)
            if cfg.unet_mode == "lora":
                lora.add_lora(unet, cfg.rank, cfg.lora_alpha)
            else:
                lora.unfreeze_attention(unet)
            if cfg.train_text_encoder:
                lora.add_lora(text_encoder, cfg.rank, cfg.lora_alpha, lora.TEXT_TARGETS)
        # Frozen weights in the training dtype; the trained ones stay fp32 (mixed precision runs the maths).
        pipe.vae.to(device)
        if self.weight_dtype != torch.float32:
            pipe.vae.to(dtype=self.weight_dtype)
        for m in (unet, text_encoder):
            m.to(device)
            if self.weight_dtype != torch.float32:
                m.to(dtype=self.weight_dtype)
            for p in m.parameters():
                if p.requires_grad:
                    p.data = p.data.float()
        if cfg.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
            if cfg.train_text_encoder:
                text_encoder.gradient_checkpointing_enable()
        from diffusers import DDPMScheduler

        self.pipe, self.unet, self.text_encoder, self.vae = pipe, unet, text_encoder, pipe.vae
        self.tokenizer = pipe.tokenizer
        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)  # keeps prediction_type
        self.trainable_params = lora.count_trainable(unet, text_encoder)

    def _prepare_class_images(self, pipe):
        cfg = self.cfg
        if prior.missing_class_images(cfg.class_data_dir, cfg.num_class_images) and self.acc.is_main_process:
            pipe.to(self.acc.device)
            prior.generate_class_images(pipe, cfg.class_data_dir, cfg.class_prompt, cfg.num_class_images, cfg.size,
                                        cfg.seed, cfg.class_steps, progress=cfg.progress)
        self.acc.wait_for_everyone()
        self.class_samples = data.find_class_samples(cfg.class_data_dir, cfg.class_prompt)[: cfg.num_class_images]
        if not self.class_samples:
            raise InpaintKitError(f"--class_data_dir {cfg.class_data_dir}: no class images; check the folder")
        for s in self.class_samples:
            data.check_size(s.image, cfg.size)

    def _build_optimizer(self):
        from diffusers.optimization import get_scheduler

        cfg, acc = self.cfg, self.acc
        models = [self.unet] + ([self.text_encoder] if cfg.train_text_encoder else [])
        self.params = [p for m in models for p in m.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=1e-2)
        # accelerate steps the scheduler once per process per update, hence the factor.
        scheduler = get_scheduler(cfg.lr_scheduler, optimizer, num_warmup_steps=cfg.warmup_steps * acc.num_processes,
                                  num_training_steps=cfg.steps * acc.num_processes)
        prepared = acc.prepare(*models, optimizer, scheduler)
        self.models = list(prepared[: len(models)])
        self.optimizer, self.lr_scheduler = prepared[len(models):]
        acc.register_save_state_pre_hook(self._save_hook)
        acc.register_load_state_pre_hook(self._load_hook)

    # --- checkpoints ----------------------------------------------------------------------------------
    def _save_hook(self, models, weights, output_dir):
        """Checkpoint only the trained parameters (not the whole frozen UNet) of each model."""
        from safetensors.torch import save_file

        for i, model in enumerate(models):
            if self.acc.is_main_process:
                save_file(lora.trainable_state_dict(self.acc.unwrap_model(model)),
                          os.path.join(output_dir, TRAINABLE_NAME.format(i)))
        weights.clear()

    def _load_hook(self, models, input_dir):
        from safetensors.torch import load_file

        for i, model in enumerate(list(models)):
            model = self.acc.unwrap_model(model)
            state = load_file(os.path.join(input_dir, TRAINABLE_NAME.format(i)))
            expected = lora.trainable_state_dict(model)
            if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in state):
                raise InpaintKitError(f"--resume {input_dir}: its trained weights do not match this run's "
                                      "--train/--rank; resume with the settings it was started with")
            with torch.no_grad():
                params = dict(model.named_parameters())
                for k, v in state.items():
                    params[k].copy_(v)
        models.clear()

    def _trainer_state(self) -> dict:
        c = self.cfg
        return {"step": self.step, "nan_skips": self.nan_skips, "base": self.fingerprint, "train": c.train,
                "rank": c.rank, "alpha": c.lora_alpha, "inpaint_kit": __version__}

    def save_checkpoint(self) -> Path:
        """Write ``checkpoints/step_NNNNNN`` atomically (temp folder + rename), then the current weights and
        ``training_config.json``; keep the newest ``checkpoints_total_limit`` checkpoints."""
        acc, root = self.acc, self.out / "checkpoints"
        final = root / f"step_{self.step:06d}"
        tmp = root / f".tmp_step_{self.step:06d}"
        if acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        acc.wait_for_everyone()
        acc.save_state(str(tmp))
        if acc.is_main_process:
            atomic_write(tmp / STATE_NAME, lambda p: Path(p).write_text(json.dumps(self._trainer_state(), indent=2)))
            if final.exists():  # re-saving the same step (e.g. Ctrl-C right after a scheduled save)
                shutil.rmtree(final)
            os.replace(tmp, final)
            for old in sorted(root.glob("step_*"))[: -self.cfg.checkpoints_total_limit]:
                shutil.rmtree(old, ignore_errors=True)
            self.save_weights()
        acc.wait_for_everyone()
        return final

    def _check_resumable(self, ckpt: Path) -> dict:
        """Refuse a checkpoint made from another base model or with another ``--train``/``--rank``."""
        state = json.loads((ckpt / STATE_NAME).read_text())
        if state.get("base") != self.fingerprint:
            was = state.get("base", {}).get("model", "?")
            raise InpaintKitError(f"--resume {ckpt}: it was trained from base model {was}, not {self.fingerprint['model']}; "
                                  "pass the same --model or start a new --out")
        if state.get("train") != self.cfg.train or state.get("rank") != self.cfg.rank:
            raise InpaintKitError(f"--resume {ckpt}: it was trained with --train {' '.join(state.get('train', []))} "
                                  f"--rank {state.get('rank')}; resume with the same settings")
        return state

    def resume(self, ckpt: Path) -> None:
        """Restore weights, optimizer, LR scheduler and step count from ``ckpt`` (checked first)."""
        state = self._check_resumable(ckpt)
        self.acc.load_state(str(ckpt))
        self.step, self.nan_skips = int(state["step"]), int(state.get("nan_skips", 0))
        # The optimizer comes back with the learning rate of the old schedule; when --steps or the schedule
        # changed on resume, the new schedule must decide the rate from here on.
        sched = getattr(self.lr_scheduler, "scheduler", self.lr_scheduler)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # get_lr() outside step() warns; the closed form is what we want
            for group, lr in zip(self.optimizer.param_groups, sched.get_lr()):
                group["lr"] = lr
        sched._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def save_weights(self) -> Path:
        """Write the trained weights in their inference format and ``training_config.json`` (main process)."""
        unet = self.acc.unwrap_model(self.models[0])
        path = self.out / self.cfg.weights_name
        if self.cfg.unet_mode == "lora":
            te = self.acc.unwrap_model(self.models[1]) if self.cfg.train_text_encoder else None
            lora.save_lora(self.out, unet, te, weight_name=self.cfg.weights_name)
        else:
            lora.save_partial(path, unet, self.cfg.model)
        record = {
            "config": self.cfg.to_dict(),
            "base_model": self.cfg.model,
            "base": self.fingerprint,
            "weights": self.cfg.weights_name,
            "step": self.step,
            "steps": self.cfg.steps,
            "nan_skips": self.nan_skips,
            "trainable_params": self.trainable_params,
            "last_loss": self.losses[-1] if self.losses else None,
            "prediction_type": self.noise_scheduler.config.prediction_type,
            "inpaint_kit": __version__,
        }
        atomic_write(self.out / CONFIG_NAME, lambda p: Path(p).write_text(json.dumps(record, indent=2)))
        return path

    # --- step -----------------------------------------------------------------------------------------
    def _batch(self, micro: int, samples: list, seed: int) -> dict:
        cfg, acc = self.cfg, self.acc
        items = []
        for i in range(cfg.batch):
            draw = (micro * acc.num_processes + acc.process_index) * cfg.batch + i
            s = samples[data.draw_index(seed, draw, len(samples))]
            source = cfg.mask_source if samples is self.samples else "random"
            items.append(data.load_sample(s, cfg.size, source, draw, seed, cfg.damage_aware))
        return data.collate(items)

    def _embed(self, captions: list[str]) -> torch.Tensor:
        ids = self.tokenizer(captions, padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids.to(self.acc.device)
        encoder = self.models[1] if self.cfg.train_text_encoder else self.text_encoder
        with contextlib.nullcontext() if self.cfg.train_text_encoder else torch.no_grad():
            return encoder(ids)[0]  # (B, 77, D)

    def _micro_loss(self, micro: int) -> torch.Tensor:
        """Loss of one micro-batch (instance half + weighted class half with prior preservation)."""
        cfg, device = self.cfg, self.acc.device
        batch = self._batch(micro, self.samples, cfg.seed)
        if cfg.with_prior:
            cls = self._batch(micro, self.class_samples, cfg.seed + 1)
            batch = {k: (batch[k] + cls[k]) if k == "captions" else torch.cat([batch[k], cls[k]]) for k in batch}
        gen = torch.Generator("cpu").manual_seed(_seed_of(cfg.seed, micro, self.acc.process_index))
        damage = batch["damage"].to(device) if batch["damage"].any() else None
        per_sample = inpaint_loss(self.models[0], self.vae, self.noise_scheduler, batch["pixels"].to(device),
                                  batch["mask"].to(device), damage, self._embed(batch["captions"]), gen,
                                  cfg.mask_loss_weight)
        if cfg.with_prior:
            inst, cls_loss = per_sample.chunk(2)
            return inst.mean() + cfg.prior_loss_weight * cls_loss.mean()
        return per_sample.mean()

    def train_step(self) -> float:
        """One update: ``accum`` micro-batches, then an optimizer step unless a loss or gradient is NaN/inf
        (then the update is skipped and counted). Returns the mean micro-batch loss."""
        cfg, acc = self.cfg, self.acc
        for m in self.models:
            m.train()
        total = 0.0
        for k in range(cfg.accum):
            micro = self.step * cfg.accum + k
            with contextlib.ExitStack() as stack:
                if k < cfg.accum - 1:  # gradients are only all-reduced on the last micro-batch
                    for m in self.models:
                        stack.enter_context(acc.no_sync(m))
                with acc.autocast():
                    loss = self._micro_loss(micro)
                acc.backward(loss / cfg.accum)
            total += float(loss.detach()) / cfg.accum
        # Gradients are synced now, so every process takes the same decision.
        if acc.scaler is not None:
            # fp16: the grad scaler already skips a step with inf/NaN gradients and lowers its scale;
            # it must see them, or the scale would never come down.
            acc.clip_grad_norm_(self.params, cfg.max_grad_norm)
            self.optimizer.step()
            self.nan_skips += int(self.optimizer.step_was_skipped)
        elif math.isfinite(total) and all(torch.isfinite(p.grad).all() for p in self.params if p.grad is not None):
            acc.clip_grad_norm_(self.params, cfg.max_grad_norm)
            self.optimizer.step()
        else:
            self.nan_skips += 1
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return total

    # --- validate -------------------------------------------------------------------------------------
    def validate(self) -> Path:
        """Inpaint the validation image with the current weights (fixed seed); save and log the result."""
        from ..geometry import paste_back, to_work
        from ..images import load_grey, load_image, save_png
        from ..masks import to_repair

        cfg = self.cfg
        image = load_image(cfg.validation_image)
        mask = to_repair(load_grey(cfg.validation_mask), cfg.mask_mode)
        if mask.shape != image.shape[:2]:
            raise InpaintKitError(f"--validation_mask {cfg.validation_mask}: {mask.shape[1]}x{mask.shape[0]} differs "
                                  f"from the image's {image.shape[1]}x{image.shape[0]}")
        work_image, work_mask = to_work(image, mask, cfg.size, 8)
        from PIL import Image

        for m in self.models:
            m.eval()
        self.pipe.set_progress_bar_config(disable=True)
        with torch.no_grad(), self.acc.autocast():
            out = self.pipe(prompt=cfg.validation_prompt if cfg.validation_prompt is not None else
                            (cfg.instance_prompt or cfg.prompt), image=Image.fromarray(work_image),
                            mask_image=Image.fromarray(work_mask.astype(np.uint8) * 255),
                            height=work_image.shape[0], width=work_image.shape[1],
                            num_inference_steps=cfg.validation_steps, output_type="np",
                            generator=torch.Generator("cpu").manual_seed(cfg.seed)).images[0]
        result = paste_back(image, np.clip(np.rint(out * 255), 0, 255).astype(np.uint8), mask)
        path = save_png(self.out / "validation" / f"step_{self.step:06d}.png", result,
                        {"step": self.step, "seed": cfg.seed, "model": cfg.model})
        tracker = self.acc.get_tracker("tensorboard")
        if hasattr(tracker, "log_images"):
            tracker.log_images({"validation": result[None]}, step=self.step, dataformats="NHWC")
        return path

    # --- run ------------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Train to ``cfg.steps`` updates, checkpointing, validating and logging; Ctrl-C checkpoints first."""
        from tqdm.auto import tqdm

        cfg, acc = self.cfg, self.acc
        if self._resume_from is not None:
            self.resume(self._resume_from)
        acc.init_trackers("train_lora", config={k: _tb_value(v) for k, v in cfg.to_dict().items()})
        start, t0 = self.step, time.perf_counter()
        bar = tqdm(total=cfg.steps, initial=self.step, desc="train-lora", disable=not (cfg.progress and acc.is_main_process))
        last_saved = self.step if self._resume_from is not None else -1
        try:
            while self.step < cfg.steps:
                loss = self.train_step()
                self.losses.append(loss)
                lr = self.lr_scheduler.get_last_lr()[0]
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", nan_skips=self.nan_skips)
                acc.log({"loss": loss, "lr": lr, "nan_skips": self.nan_skips}, step=self.step)
                if self.step % cfg.save_every == 0 or self.step == cfg.steps:
                    self.save_checkpoint()
                    last_saved = self.step
                if cfg.validate_every and self.step % cfg.validate_every == 0 and acc.is_main_process:
                    self.validate()
        except KeyboardInterrupt:
            if self.step != last_saved:
                bar.write(f"interrupted at step {self.step}: saving a checkpoint")
                self.save_checkpoint()
            raise
        finally:
            bar.close()
            acc.end_training()
        if self.step == start and self.step != last_saved:  # nothing to do (already at --steps)
            self.save_checkpoint()
        if self.nan_skips and acc.is_main_process:
            print(f"warning: {self.nan_skips} update(s) skipped because the loss or a gradient was NaN/inf")
        return TrainResult(self.out, self.out / cfg.weights_name, self.step, self.losses, self.nan_skips,
                           self.trainable_params, time.perf_counter() - t0)


def train(cfg: LoraTrainConfig) -> TrainResult:
    """Fine-tune ``cfg.model`` on ``cfg.data_root``; see :mod:`inpaint_kit.train.loop` for what it writes."""
    return LoraTrainer(cfg).run()
