"""DefectFill training (Song et al., CVPR 2025, arXiv 2503.13985) on the shared :class:`Trainer`:
``DefectTrainer(DefectTrainConfig(...)).run()`` (``inpaint-kit train-defect``).

Model: an SD inpainting base loaded as ``infer`` loads it; peft LoRA on the UNet attention projections
(``to_q/k/v/out``) and on the text encoder's (``q/k/v/out_proj``), rank ``--rank``; everything else
frozen. Each reference draw is used twice per step, in one batched UNet call of ``2B`` rows sharing the
clean latents, noise and timestep:

* defect rows: the real defect mask, prompt ``A photo of <token>``; ``L_def`` = noise-prediction MSE over the
  latent cells the defect touches only (a cell touched by any defect pixel counts, as at inference);
* object rows: the adjusted mask (random boxes + the defect's bounding box), prompt ``A <object> with
  <token>``; ``L_obj`` = MSE over the whole latent image;
* ``L_attn``: during the object rows, the cross-attention map of ``<token>`` (every ``attn2`` layer, averaged
  over heads, resized to ``--attn_res`` and averaged over layers; :mod:`inpaint_kit.train.defect.attention`)
  against the defect's share of each cell at that size, MSE.

``L = lambda_def * L_def + lambda_obj * L_obj + lambda_attn * L_attn`` (defaults 0.5, 0.2, 0.05; with
``--lambda_attn 0`` no attention is captured at all). Output: ``lora_unet.safetensors`` (diffusers LoRA with
``unet.*`` and ``text_encoder.*`` keys; ``infer --lora`` and ``pipe.load_lora_weights`` read it) and
``training_config.json`` (object, defect type, token, prompts, loss weights, references used).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...errors import InpaintKitError
from ..base_model import load_base_pipeline, model_fingerprint
from .. import adapters
from ..objective import block_mask, encode, latent_mask, prediction_target, randint, randn, unet_input, weighted_mse
from ..trainer import Trainer, TrainResult
from . import attention, data
from .config import DEFECT_WEIGHTS, DefectTrainConfig


def defect_loss(pred: torch.Tensor, target: torch.Tensor, mask_lat: torch.Tensor) -> torch.Tensor:
    """Per-sample MSE ``(B,)`` over the latent cells of the defect mask ``(B, 1, h, w)`` only."""
    return weighted_mse(pred, target, mask_lat)


def object_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample MSE ``(B,)`` over the whole latent image."""
    return ((pred.float() - target.float()) ** 2).mean(dim=(1, 2, 3))


class DefectTrainer(Trainer):
    """One DefectFill run (see the module docstring)."""

    name = "train-defect"
    weights_names = (DEFECT_WEIGHTS,)
    cfg: DefectTrainConfig

    def build_data(self):
        cfg = self.cfg
        self.layout, refs = data.find_references(cfg.data, cfg.object_class, cfg.defect_type, cfg.layout)
        self.refs = data.choose_references(refs, cfg.num_refs, cfg.seed)
        self._cache: dict = {}
        for ref in self.refs:  # every file read and checked before the model loads
            self._cache[ref] = data.load_reference(ref, cfg.size)

    def build_models(self):
        cfg, device = self.cfg, self.acc.device
        pipe = load_base_pipeline(cfg.model)
        unet, text_encoder, vae = pipe.unet, pipe.text_encoder, pipe.vae
        adapters.check_rank(unet, cfg.lora_rank)
        adapters.check_rank(text_encoder, cfg.lora_rank, adapters.TEXT_TARGETS, "text encoder")
        vae.requires_grad_(False)
        with torch.random.fork_rng(devices=[]):  # seeded LoRA initialisation
            torch.manual_seed(cfg.seed)
            adapters.add_lora(unet, cfg.lora_rank, cfg.alpha)
            adapters.add_lora(text_encoder, cfg.lora_rank, cfg.alpha, adapters.TEXT_TARGETS)
        tok = pipe.tokenizer
        self.positions = attention.token_positions(tok, cfg.object_prompt, cfg.token_word)
        self.store = attention.AttentionStore(self.positions)
        self.captured_layers = attention.install(unet, self.store) if cfg.lambda_attn > 0 else 0
        self.place(frozen=[vae, unet, text_encoder])  # the LoRA adapters stay fp32
        from diffusers import DDPMScheduler

        self.pipe, self.unet, self.text_encoder, self.vae, self.tokenizer = pipe, unet, text_encoder, vae, tok
        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        ids = tok([cfg.defect_prompt, cfg.object_prompt], padding="max_length", max_length=tok.model_max_length,
                  truncation=True, return_tensors="pt").input_ids
        self.prompt_ids = ids.to(device)  # (2, 77): defect prompt, object prompt

    def trainable_modules(self):
        return [self.unet, self.text_encoder]

    def model_fingerprint(self) -> dict:
        return model_fingerprint(self.cfg.model, self.unet)

    # --- step -----------------------------------------------------------------------------------------
    def batch(self, micro: int) -> dict:
        """The micro-batch's references as tensors: pixels (B, 3, S, S), mask and adjusted (B, 1, S, S)."""
        items = [data.training_example(self.refs, self.cfg.size, self.cfg.seed, d, self._cache) for d in self.draws(micro)]
        return {k: torch.from_numpy(np.stack([i[k] for i in items])).to(self.acc.device) for k in items[0]}

    def loss_terms(self, batch: dict, generators: list[torch.Generator]) -> dict[str, torch.Tensor]:
        """The three per-sample loss terms ``(B,)`` of one batch (``attn`` is zeros when it is off)."""
        cfg = self.cfg
        unet, text_encoder = self.models[0], self.models[1]
        pixels, mask, adjusted = batch["pixels"], batch["mask"], batch["adjusted"]
        b = pixels.shape[0]
        with torch.no_grad():
            latents = encode(self.vae, pixels, generators).float()  # (B, 4, h, w)
            masked_def = encode(self.vae, pixels * (block_mask(mask) < 0.5), generators).float()
            masked_obj = encode(self.vae, pixels * (block_mask(adjusted) < 0.5), generators).float()
        noise = randn(latents.shape, generators).to(latents.device)
        t = randint(self.noise_scheduler.config.num_train_timesteps, b, generators).to(latents.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, t)
        target = prediction_target(self.noise_scheduler, latents, noise, t)
        mask_lat, adj_lat = latent_mask(mask), latent_mask(adjusted)
        # Rows [0, B): defect prompt and mask; rows [B, 2B): object prompt and adjusted mask.
        emb = text_encoder(self.prompt_ids)[0]  # (2, 77, D)
        emb = torch.cat([emb[:1].expand(b, -1, -1), emb[1:].expand(b, -1, -1)])
        x = torch.cat([unet_input(noisy, mask_lat, masked_def), unet_input(noisy, adj_lat, masked_obj)])
        self.store.reset(x.shape[-2:])
        self.store.enabled, self.store.rows = cfg.lambda_attn > 0, slice(b, 2 * b)  # maps of the object rows
        try:
            pred = unet(x, torch.cat([t, t]), emb).sample
        finally:
            self.store.enabled, self.store.rows = False, None
        out = {"def": defect_loss(pred[:b], target, mask_lat), "obj": object_loss(pred[b:], target)}
        if cfg.lambda_attn > 0:
            side = cfg.attention_side
            out["attn"] = attention.attention_loss(self.store.token_map(side), attention.mask_at(mask, side))
        else:
            out["attn"] = torch.zeros(b, device=pred.device)
        return out

    def micro_loss(self, micro: int) -> torch.Tensor:
        cfg = self.cfg
        terms = self.loss_terms(self.batch(micro), self.generators(self.draws(micro)))
        self.last_terms = {k: float(v.detach().mean()) for k, v in terms.items()}
        self.acc.log({f"loss_{k}": v for k, v in self.last_terms.items()}, step=self.step + 1)
        return (cfg.lambda_def * terms["def"] + cfg.lambda_obj * terms["obj"] + cfg.lambda_attn * terms["attn"]).mean()

    # --- outputs --------------------------------------------------------------------------------------
    def save_weights(self) -> Path:
        unet, te = (self.acc.unwrap_model(m) for m in self.models)
        return adapters.save_lora(self.out, unet, te, weight_name=DEFECT_WEIGHTS)

    def record(self) -> dict:
        cfg = self.cfg
        root = Path(cfg.data)
        return {
            "base_model": cfg.model, "kind": "defectfill", "layout": self.layout,
            "object_class": cfg.object_class, "defect_type": cfg.defect_type, "token": cfg.token_word,
            "object_word": cfg.object_word, "defect_prompt": cfg.defect_prompt, "object_prompt": cfg.object_prompt,
            "token_positions": self.positions, "captured_layers": self.captured_layers,
            "attention_side": cfg.attention_side,
            "losses": {"lambda_def": cfg.lambda_def, "lambda_obj": cfg.lambda_obj, "lambda_attn": cfg.lambda_attn},
            "references": [[str(r.image.relative_to(root)), str(r.mask.relative_to(root))] for r in self.refs],
            "prediction_type": self.noise_scheduler.config.prediction_type,
        }


def train(cfg: DefectTrainConfig) -> TrainResult:
    """Learn ``cfg.defect_type`` of ``cfg.object_class`` from its references; see the module docstring."""
    if not isinstance(cfg, DefectTrainConfig):
        raise InpaintKitError("train takes a DefectTrainConfig")
    return DefectTrainer(cfg).run()
