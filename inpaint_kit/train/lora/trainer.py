"""The LoRA / partial fine-tuning trainer (``inpaint-kit train-lora``) on the shared :class:`Trainer`.

``train(LoraTrainConfig(...))`` is the whole API. The same code runs on one CPU, one GPU, or many
processes under ``torchrun`` / ``accelerate launch`` (see :mod:`inpaint_kit.train.trainer` for what the base
class guarantees: exact resume, one writer, N processes with ``--batch B`` == one process with ``N*B``).

Each sample draw ``d`` (:meth:`Trainer.draws`) picks the image, its crop, flip and mask from ``(seed, d)``
(:mod:`inpaint_kit.train.lora.data`), and its VAE posterior sample, noise and timestep from its own
generator. What trains and how it is saved: :mod:`inpaint_kit.train.adapters`; DreamBooth class images:
:mod:`.prior`.

Output folder::

    <output_dir>/lora_unet.safetensors | unet_partial_tuned.safetensors   final (and latest checkpoint's) weights
    <output_dir>/training_config.json     every setting, base model, step reached, NaN skips, ...
    <output_dir>/checkpoints/step_000500/ trained parameters, optimizer, LR scheduler + trainer_state.json
    <output_dir>/logs/                    TensorBoard (loss, lr, validation images)
    <output_dir>/validation/step_000500.png
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from ...errors import InpaintKitError
from ...masks import read_mask
from .. import adapters, samples
from ..base_model import load_base_pipeline, model_fingerprint
from ..objective import inpaint_loss
from ..trainer import Trainer, TrainResult
from . import data, prior
from .config import LORA_WEIGHTS, PARTIAL_WEIGHTS, LoraTrainConfig


class LoraTrainer(Trainer):
    """One fine-tuning run: ``LoraTrainer(cfg).run()``."""

    name = "train-lora"
    weights_names = (LORA_WEIGHTS, PARTIAL_WEIGHTS)
    cfg: LoraTrainConfig

    def build_data(self):
        cfg = self.cfg
        self.samples = samples.find_samples(cfg.data, cfg.mask_source, cfg.mask_mode, cfg.prompt or
                                            (cfg.instance_prompt or ""), cfg.size)
        if cfg.instance_prompt:  # DreamBooth: the instance prompt replaces the default caption
            self.samples = [s if s.image.with_suffix(".txt").is_file() else
                            samples.Sample(s.image, s.mask, s.mask_mode, cfg.instance_prompt) for s in self.samples]

    def weights_path(self) -> Path:
        return self.out / self.cfg.weights_name

    def model_fingerprint(self) -> dict:
        return model_fingerprint(self.cfg.model, self.unet)

    def trainable_modules(self):
        return [self.unet] + ([self.text_encoder] if self.cfg.train_text_encoder else [])

    def build_models(self):
        cfg = self.cfg
        pipe = load_base_pipeline(cfg.model)
        if cfg.with_prior:
            self._prepare_class_images(pipe)
        unet, text_encoder = pipe.unet, pipe.text_encoder
        if cfg.unet_mode == "lora":
            adapters.check_rank(unet, cfg.rank)
        if cfg.train_text_encoder:
            adapters.check_rank(text_encoder, cfg.rank, adapters.TEXT_TARGETS, "text encoder")
        pipe.vae.requires_grad_(False)
        text_encoder.requires_grad_(False)
        with torch.random.fork_rng(devices=[]):  # seeded LoRA initialisation; the caller's RNG is left alone
            torch.manual_seed(cfg.seed)
            if cfg.unet_mode == "lora":
                adapters.add_lora(unet, cfg.rank, cfg.lora_alpha)
            else:
                adapters.unfreeze_attention(unet)
            if cfg.train_text_encoder:
                adapters.add_lora(text_encoder, cfg.rank, cfg.lora_alpha, adapters.TEXT_TARGETS)
        self.place(frozen=[pipe.vae, unet, text_encoder])  # adapters / attention weights stay fp32
        if cfg.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
            if cfg.train_text_encoder:
                text_encoder.gradient_checkpointing_enable()
        from diffusers import DDPMScheduler

        self.pipe, self.unet, self.text_encoder, self.vae = pipe, unet, text_encoder, pipe.vae
        self.tokenizer = pipe.tokenizer
        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)  # keeps prediction_type

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
            samples.check_size(s.image, cfg.size)

    # --- outputs --------------------------------------------------------------------------------------
    def save_weights(self) -> Path:
        """Write the trained weights in their inference format (main process)."""
        unet = self.acc.unwrap_model(self.models[0])
        path = self.out / self.cfg.weights_name
        if self.cfg.unet_mode == "lora":
            te = self.acc.unwrap_model(self.models[1]) if self.cfg.train_text_encoder else None
            adapters.save_lora(self.out, unet, te, weight_name=self.cfg.weights_name)
        else:
            adapters.save_partial(path, unet, self.cfg.model)
        return path

    def record(self) -> dict:
        return {"base_model": self.cfg.model, "prediction_type": self.noise_scheduler.config.prediction_type}

    # --- step -----------------------------------------------------------------------------------------
    def _batch(self, draws: list[int], pool: list, seed: int) -> dict:
        source = self.cfg.mask_source if pool is self.samples else "random"
        items = [data.load_sample(pool[samples.draw_index(seed, d, len(pool))], self.cfg.size, source, d, seed,
                                  self.cfg.damage_aware) for d in draws]
        return data.collate(items)

    def _embed(self, captions: list[str]) -> torch.Tensor:
        ids = self.tokenizer(captions, padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids.to(self.acc.device)
        encoder = self.models[1] if self.cfg.train_text_encoder else self.text_encoder
        with contextlib.nullcontext() if self.cfg.train_text_encoder else torch.no_grad():
            return encoder(ids)[0]  # (B, 77, D)

    def micro_loss(self, micro: int) -> torch.Tensor:
        """Loss of one micro-batch (instance half + weighted class half with prior preservation)."""
        cfg, device = self.cfg, self.acc.device
        draws = self.draws(micro)
        batch = self._batch(draws, self.samples, cfg.seed)
        gens = self.generators(draws, stream=0)
        if cfg.with_prior:
            cls = self._batch(draws, self.class_samples, cfg.seed + 1)
            batch = {k: (batch[k] + cls[k]) if k == "captions" else torch.cat([batch[k], cls[k]]) for k in batch}
            gens += self.generators(draws, stream=1)
        damage = batch["damage"].to(device) if batch["damage"].any() else None
        per_sample = inpaint_loss(self.models[0], self.vae, self.noise_scheduler, batch["pixels"].to(device),
                                  batch["mask"].to(device), damage, self._embed(batch["captions"]), gens,
                                  cfg.mask_loss_weight)
        if cfg.with_prior:
            inst, cls_loss = per_sample.chunk(2)
            return inst.mean() + cfg.prior_loss_weight * cls_loss.mean()
        return per_sample.mean()

    # --- validate -------------------------------------------------------------------------------------
    def validate(self) -> Path:
        """Inpaint the validation image with the current weights (fixed seed); save and log the result."""
        from ...geometry import paste_back, to_work
        from ...images import load_image

        cfg = self.cfg
        image = load_image(cfg.validation_image)
        mask = read_mask(cfg.validation_mask, cfg.mask_mode)
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
        return self.save_preview(result, {"seed": cfg.seed, "model": cfg.model})


def train(cfg: LoraTrainConfig) -> TrainResult:
    """Fine-tune ``cfg.model`` on ``cfg.data``; see the module docstring for what it writes."""
    return LoraTrainer(cfg).run()
