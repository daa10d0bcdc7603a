"""The ControlNet inpainting trainer (``inpaint-kit train-controlnet``) on the shared :class:`Trainer`.

A ControlNet is initialised from the frozen base model's UNet (``ControlNetModel.from_unet``: a copy of its
encoder plus zero convolutions, so the fresh ControlNet changes nothing) and learns to steer that UNet from
a control image in the ``control_v11p_sd15_inpaint`` convention (:func:`inpaint_kit.engine.controlnet.
control_image`: RGB in [0, 1], pixels to repaint = -1). The base UNet, VAE and text encoder stay frozen;
the loss is the base model's own noise-prediction loss (epsilon or v), so the ControlNet learns exactly
what the base model is missing to fill the hole.

Each draw ``d`` (:meth:`Trainer.draws`) picks the image, crop, flip and mask from ``(seed, d)``
(:mod:`inpaint_kit.train.controlnet.data`), and its VAE posterior sample, noise and timestep from its own
generator. Output folder::

    <output_dir>/config.json, diffusion_pytorch_model.safetensors   the ControlNet (ControlNetModel.from_pretrained)
    <output_dir>/training_config.json     every setting, base model, conditioning convention, step, ...
    <output_dir>/checkpoints/step_000500/ ControlNet parameters, optimizer, LR scheduler + trainer_state.json
    <output_dir>/logs/                    TensorBoard
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

from ...engine.controlnet import CONDITIONING, control_image
from .. import samples
from ..base_model import load_base_pipeline, model_fingerprint
from ..objective import block_mask, encode, latent_mask, loss_weights, prediction_target, randint, randn, weighted_mse
from ..trainer import Trainer, TrainResult
from . import data
from .config import ControlNetTrainConfig

WEIGHTS = "diffusion_pytorch_model.safetensors"
CONFIG = "config.json"


def new_controlnet(unet):
    """``ControlNetModel.from_unet(unet)``: the UNet's encoder weights, zero convolutions, 3-channel
    conditioning (the published inpaint convention)."""
    from diffusers import ControlNetModel

    return ControlNetModel.from_unet(unet, conditioning_channels=3)


def control_batch(pixels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Control images ``(B, 3, H, W)`` for training pixels in [-1, 1] and repaint masks ``(B, 1, H, W)``: the
    same as :func:`control_image` at inference (the mask grown to whole latent cells, as the engine does)."""
    hidden = block_mask(mask) > 0.5  # (B, 1, H, W)
    rgb01 = (pixels + 1.0) / 2.0
    return torch.where(hidden.expand_as(rgb01), torch.full_like(rgb01, -1.0), rgb01)


def controlnet_loss(controlnet, unet, vae, scheduler, pixels, mask, text_embeddings, generator,
                    mask_loss_weight: float = 1.0) -> torch.Tensor:
    """Per-sample loss ``(B,)`` of one forward pass: noise the image latents, let the ControlNet read the
    control image, and score the frozen UNet's prediction (with the ControlNet's residuals) against the
    target. All randomness (VAE posterior, noise, timesteps) comes from ``generator`` (CPU, one per sample)."""
    device = pixels.device
    with torch.no_grad():
        latents = encode(vae, pixels, generator).float()  # (B, 4, h, w)
    noise = randn(latents.shape, generator).to(device)
    timesteps = randint(scheduler.config.num_train_timesteps, latents.shape[0], generator).to(device)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    cond = control_batch(pixels.float(), mask.float()).to(device)
    down, mid = controlnet(noisy, timesteps, encoder_hidden_states=text_embeddings, controlnet_cond=cond,
                           return_dict=False)
    dtype = unet.dtype
    pred = unet(noisy.to(dtype), timesteps, encoder_hidden_states=text_embeddings.to(dtype),
                down_block_additional_residuals=[r.to(dtype) for r in down],
                mid_block_additional_residual=mid.to(dtype)).sample
    target = prediction_target(scheduler, latents, noise, timesteps)
    return weighted_mse(pred, target, loss_weights(latent_mask(mask.float()), None, mask_loss_weight))


class ControlNetTrainer(Trainer):
    """One ControlNet inpainting run: ``ControlNetTrainer(cfg).run()``."""

    name = "train-controlnet"
    weights_names = (WEIGHTS, CONFIG)
    cfg: ControlNetTrainConfig

    def build_data(self):
        self.items = data.find_items(self.cfg)

    def build_models(self):
        from diffusers import DDPMScheduler

        cfg = self.cfg
        pipe = load_base_pipeline(cfg.model, in_channels=4)
        unet, vae, text_encoder = pipe.unet, pipe.vae, pipe.text_encoder
        with torch.random.fork_rng(devices=[]):  # from_unet draws nothing today; keep it seeded regardless
            torch.manual_seed(cfg.seed)
            self.controlnet = new_controlnet(unet)  # from the fp32 weights; trained in fp32
        for m in (unet, vae, text_encoder):
            m.requires_grad_(False)
        self.place(frozen=[unet, vae, text_encoder], trained=[self.controlnet])
        self.controlnet.train()
        if cfg.gradient_checkpointing:
            self.controlnet.enable_gradient_checkpointing()
            unet.enable_gradient_checkpointing()
        self.pipe, self.unet, self.vae, self.text_encoder, self.tokenizer = pipe, unet, vae, text_encoder, pipe.tokenizer
        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)  # keeps prediction_type
        self._captions: dict[str, torch.Tensor] = {}

    def trainable_modules(self):
        return [self.controlnet]

    def model_fingerprint(self) -> dict:
        return model_fingerprint(self.cfg.model, self.unet)

    def _embed(self, captions: list[str]) -> torch.Tensor:
        """Frozen text embeddings ``(B, 77, D)``, cached per caption."""
        for c in set(captions) - set(self._captions):
            ids = self.tokenizer([c], padding="max_length", max_length=self.tokenizer.model_max_length,
                                 truncation=True, return_tensors="pt").input_ids.to(self.acc.device)
            with torch.no_grad():
                self._captions[c] = self.text_encoder(ids)[0]
        return torch.cat([self._captions[c] for c in captions])

    def micro_loss(self, micro: int) -> torch.Tensor:
        cfg, device = self.cfg, self.acc.device
        draws = self.draws(micro)
        batch = data.collate([data.load_item(self.items[samples.draw_index(cfg.seed, d, len(self.items))], cfg, d)
                              for d in draws])
        pixels = batch["pixels"].to(device)
        per_sample = controlnet_loss(self.models[0], self.unet, self.vae, self.noise_scheduler, pixels,
                                     batch["mask"].to(device), self._embed(batch["captions"]),
                                     self.generators(draws), cfg.mask_loss_weight)
        return per_sample.mean()

    def save_weights(self) -> Path:
        """``save_pretrained`` into a temp folder inside ``output_dir``, then rename the files into place
        (weights first, config last: a folder with config.json is complete)."""
        net = self.acc.unwrap_model(self.models[0])
        tmp = Path(tempfile.mkdtemp(prefix=".controlnet.", dir=self.out))
        try:
            net.save_pretrained(tmp, safe_serialization=True)
            for name in (WEIGHTS, CONFIG):
                os.replace(tmp / name, self.out / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self.out / WEIGHTS

    def validate(self) -> Path:
        """Inpaint ``--validation_image`` with the current ControlNet through the same engine as ``infer
        --controlnet`` (fixed seed); save ``validation/step_N.png`` and log it to TensorBoard."""
        from ...engine import Sampling
        from ...engine.controlnet import ControlNetEngine, build_controlnet_pipeline
        from ...geometry import paste_back, resize_image, to_work
        from ...images import load_image
        from ...masks import read_mask

        cfg = self.cfg
        image = load_image(cfg.validation_image)
        mask = read_mask(cfg.validation_mask, cfg.mask_mode, image.shape[:2])
        work_image, work_mask = to_work(image, mask, cfg.size, 8)
        net = self.acc.unwrap_model(self.models[0]).eval()
        engine = ControlNetEngine(build_controlnet_pipeline(self.pipe, net), cfg.model, str(self.out), 1.0,
                                  str(self.acc.device), "fp32")
        prompt = cfg.validation_prompt if cfg.validation_prompt is not None else cfg.prompt
        try:
            with torch.no_grad(), self.acc.autocast():
                out = engine.inpaint(work_image, work_mask, [cfg.seed], Sampling(prompt, steps=cfg.validation_steps),
                                     progress=False)[0]
        finally:
            engine.hook.remove()
            net.train()
        result = paste_back(image, resize_image(out, image.shape[:2]), mask)
        return self.save_preview(result, {"seed": cfg.seed, "model": cfg.model, "controlnet": str(self.out)})

    def record(self) -> dict:
        return {"base_model": self.cfg.model, "conditioning": CONDITIONING,
                "conditioning_help": "3-channel control image: RGB in [0, 1], pixels to repaint set to -1",
                "prediction_type": self.noise_scheduler.config.prediction_type, "images": len(self.items)}

    def summary(self, result: TrainResult) -> str:
        return (f"trained {result.step} steps ({result.trainable_params:,} trainable parameters); "
                f"ControlNet: {result.out}")


def train(cfg: ControlNetTrainConfig) -> TrainResult:
    """Train an inpaint ControlNet for ``cfg.model`` on ``cfg.data``; see the module docstring for the output."""
    return ControlNetTrainer(cfg).run()


__all__ = ["ControlNetTrainer", "ControlNetTrainConfig", "train", "control_batch", "control_image", "new_controlnet"]
