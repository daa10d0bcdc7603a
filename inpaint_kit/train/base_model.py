"""The frozen Stable Diffusion model the SD trainers start from (``train-lora``, ``train-controlnet``,
``train-defect``): loaded exactly as ``infer`` loads it (same sources: hub id, diffusers folder or single
file; same one-line errors), checked for the UNet the trainer needs, and fingerprinted so that ``--resume``
refuses a checkpoint made from another base model."""

from __future__ import annotations

from pathlib import Path

from ..errors import InpaintKitError

# What each UNet input width means, and what to use instead when the model has another one.
NEEDS = {
    9: ", not 9; use an inpainting model (e.g. stabilityai/stable-diffusion-2-inpainting)",
    4: "; train-controlnet needs a base (non-inpainting) SD 1.5-family model with 4",
}


def load_base_pipeline(model: str, in_channels: int = 9):
    """The base pipeline of ``model`` (``StableDiffusionInpaintPipeline``), refused in one line unless its
    UNet takes ``in_channels`` inputs (9: an inpainting model; 4: a plain text-to-image model)."""
    from ..engine.sd import load_pipeline

    pipe = load_pipeline(model)
    have = pipe.unet.config.in_channels
    if have != in_channels:
        raise InpaintKitError(f"--model {model}: its UNet takes {have} input channels{NEEDS[in_channels]}")
    return pipe


def model_fingerprint(model: str, unet) -> dict:
    """Identity of a base model, recorded in checkpoints so ``--resume`` refuses a different one."""
    path = Path(model)
    name = str(path.resolve()) if path.exists() else model
    cfg = unet.config
    return {"model": name, "unet": {"cross_attention_dim": cfg.cross_attention_dim,
                                    "block_out_channels": list(cfg.block_out_channels),
                                    "sample_size": cfg.sample_size}}
