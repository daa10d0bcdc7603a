"""The inpainting training objective: what the UNet sees, what it must predict, and how each latent
pixel is weighted in the loss.

The SD inpainting UNet takes 9 channels, ``concat([noisy_latents, mask, masked_image_latents])``
(4 + 1 + 4, at latent resolution = image / 8), exactly as ``StableDiffusionInpaintPipeline`` builds
them at inference. The target is the noise (``epsilon``) or the velocity (``v_prediction``, SD2 768
models) according to the scheduler's ``prediction_type``.

Damage-aware weighting: pixels the user marked as real damage are not ground truth; a latent pixel
touching any damaged image pixel gets weight 0, so the model never learns to paint damage.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InpaintKitError

VAE_FACTOR = 8  # SD VAEs downsample by 8


def latent_mask(mask: torch.Tensor) -> torch.Tensor:
    """Repaint mask ``(B, 1, H, W)`` in {0, 1} -> ``(B, 1, H/8, W/8)``: 1 where ANY of the 8x8 pixels under
    a latent cell is to be repainted. Inference does the same (the SD engine grows masks to whole cells,
    :func:`inpaint_kit.geometry.block_mask`), so a thin crack never vanishes at latent resolution."""
    return F.max_pool2d(mask, kernel_size=VAE_FACTOR)


def block_mask(mask: torch.Tensor) -> torch.Tensor:
    """The repaint mask grown to whole 8x8 latent cells, at image resolution ``(B, 1, H, W)``: what the
    masked image hides, as at inference."""
    return F.interpolate(latent_mask(mask), scale_factor=VAE_FACTOR, mode="nearest")


def latent_damage(damage: torch.Tensor) -> torch.Tensor:
    """Damage mask ``(B, 1, H, W)`` -> ``(B, 1, H/8, W/8)``: 1 where ANY of the 8x8 image pixels under a
    latent pixel is damaged (a latent pixel mixes all of them, so one damaged pixel taints it)."""
    return F.max_pool2d(damage, kernel_size=VAE_FACTOR)


def loss_weights(mask_lat: torch.Tensor, damage_lat: torch.Tensor | None, mask_loss_weight: float = 1.0) -> torch.Tensor:
    """Per-latent-pixel loss weights ``(B, 1, h, w)``: ``mask_loss_weight`` inside the repaint mask, 1
    outside, and exactly 0 on known damage (damage wins over everything)."""
    w = 1.0 + (mask_loss_weight - 1.0) * mask_lat
    if damage_lat is not None:
        w = torch.where(damage_lat > 0.5, torch.zeros_like(w), w)
    return w


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean squared error per sample ``(B,)``, weighted by ``weights`` ``(B, 1, h, w)`` (broadcast over
    channels) and normalised by the total weight, so zero-weight pixels neither add loss nor dilute it.
    A sample whose weights are all zero contributes exactly 0."""
    err = (pred.float() - target.float()) ** 2  # (B, C, h, w)
    w = weights.float().expand_as(err)
    total = w.sum(dim=(1, 2, 3))
    return (err * w).sum(dim=(1, 2, 3)) / total.clamp(min=1e-8)


def prediction_target(scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """What the UNet must output: the noise (``epsilon``) or the velocity (``v_prediction``)."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    raise InpaintKitError(f"scheduler prediction_type {kind!r} is not supported for training; use epsilon or v_prediction")


Generators = torch.Generator | list[torch.Generator]  # one for the batch, or one per sample


def randn(shape, generator: Generators | None) -> torch.Tensor:
    """Standard normal CPU noise of ``shape``; with a list of generators, row ``i`` comes from generator ``i``
    alone (so a sample's noise does not depend on the batch it is in)."""
    if isinstance(generator, list):
        return torch.cat([torch.randn((1, *shape[1:]), generator=g) for g in generator])
    return torch.randn(shape, generator=generator)


def randint(high: int, n: int, generator: Generators | None) -> torch.Tensor:
    """``n`` integers in [0, high) (one per generator when given a list)."""
    if isinstance(generator, list):
        return torch.cat([torch.randint(0, high, (1,), generator=g) for g in generator])
    return torch.randint(0, high, (n,), generator=generator)


def encode(vae, pixels: torch.Tensor, generator: Generators | None = None) -> torch.Tensor:
    """Images ``(B, 3, H, W)`` in [-1, 1] -> scaled latents ``(B, 4, H/8, W/8)`` (one posterior sample;
    diffusers draws row ``i`` from ``generator[i]`` when given a list)."""
    dist = vae.encode(pixels.to(vae.dtype)).latent_dist
    z = dist.sample(generator=generator)
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    return (z - shift) * vae.config.scaling_factor


def unet_input(noisy_latents: torch.Tensor, mask_lat: torch.Tensor, masked_latents: torch.Tensor) -> torch.Tensor:
    """The 9-channel inpainting UNet input ``(B, 4 + 1 + 4, h, w)``, in the pipeline's channel order."""
    return torch.cat([noisy_latents, mask_lat.to(noisy_latents.dtype), masked_latents.to(noisy_latents.dtype)], dim=1)


def inpaint_loss(
    unet,
    vae,
    scheduler,
    pixels: torch.Tensor,
    mask: torch.Tensor,
    damage: torch.Tensor | None,
    text_embeddings: torch.Tensor,
    generator: Generators,
    mask_loss_weight: float = 1.0,
) -> torch.Tensor:
    """One forward pass of the objective; returns the per-sample loss ``(B,)``.

    ``pixels`` ``(B, 3, H, W)`` in [-1, 1]; ``mask`` ``(B, 1, H, W)`` 1 = repaint; ``damage`` same shape,
    1 = known damage (or None); ``text_embeddings`` ``(B, 77, D)``. All randomness (VAE posterior,
    noise, timesteps) is drawn from ``generator`` (on the CPU), so a step is reproducible; with one
    generator per sample, each sample's draws are independent of the batch it is in."""
    device = pixels.device
    with torch.no_grad():
        latents = encode(vae, pixels, generator).float()  # (B, 4, h, w)
        # The repaint region (grown to whole latent cells, as at inference) is blanked to 0 = mid grey.
        masked_latents = encode(vae, pixels * (block_mask(mask) < 0.5), generator).float()
    mask_lat = latent_mask(mask)  # (B, 1, h, w)
    noise = randn(latents.shape, generator).to(device)
    timesteps = randint(scheduler.config.num_train_timesteps, latents.shape[0], generator).to(device)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    pred = unet(unet_input(noisy, mask_lat, masked_latents), timesteps, text_embeddings).sample
    target = prediction_target(scheduler, latents, noise, timesteps)
    weights = loss_weights(mask_lat, None if damage is None else latent_damage(damage), mask_loss_weight)
    return weighted_mse(pred, target, weights)
