"""Typed options of the two engines: :class:`SDOptions` for diffusers Stable Diffusion pipelines and
:class:`DDPMOptions` for the from-scratch DDPM (``builtin`` or a ``train-ddpm`` folder).

``load_engine(model, device=, dtype=, options=)`` takes one of them; a field that belongs to the
other engine is not silently dropped: :func:`check_engine_flags` names it in one line before any
model loads. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class SDOptions:
    """Options of a Stable Diffusion inpainting pipeline."""

    scheduler: str = "default"  # one of inpaint_kit.engine.sd.SCHEDULERS
    lora: str | None = None  # LoRA folder/file or unet_partial_tuned.safetensors
    lora_scale: float = 1.0
    cache_dir: str | None = None  # Hugging Face cache for hub ids
    controlnet: str | None = None  # inpaint ControlNet (folder or hub id): inpaint_kit.engine.controlnet
    controlnet_scale: float = 1.0


@dataclass(frozen=True)
class DDPMOptions:
    """Options of the from-scratch DDPM engine (``None`` = the model's default from its config.json).
    See :func:`inpaint_kit.engine.ddpm.load_ddpm_engine` for what each does."""

    sampler: str | None = None  # ddpm | ddim | repaint
    init: str | None = None  # noise | telea | ns
    strength: float | None = None  # (0, 1]: noise level the classical fill is taken to
    jump_length: int | None = None  # RePaint (default 10)
    jump_n_sample: int | None = None  # RePaint (default 10)
    mask_soften: float | None = None  # Gaussian sigma of a soft band outside the mask (default 0)
    save_intermediates: str | None = None  # folder for canvases every few steps
    intermediate_every: int = 0  # 0 = 10 snapshots
    overlap: int | None = None  # window overlap in pixels (default a quarter window)
    max_batch: int = 32  # windows per network call
    coarse_factor_max: float = 4.0  # large holes: coarse pass at up to this scale-down (1 = off)
    refine_strength: float = 0.6  # ... refined from this noise level at full scale


# The command-line flag of every option (all are spelled as their field, with `--`).
SD_FLAGS = tuple(f.name for f in fields(SDOptions))
DDPM_FLAGS = ("sampler", "init", "strength", "jump_length", "jump_n_sample", "mask_soften", "save_intermediates")


def given(options) -> dict:
    """The fields of ``options`` that differ from their defaults (what the user asked for)."""
    default = type(options)()
    return {f.name: getattr(options, f.name) for f in fields(options)
            if getattr(options, f.name) != getattr(default, f.name)}


def check_engine_flags(model: str, sd: SDOptions, ddpm: DDPMOptions, sd_extra: dict | None = None) -> None:
    """Raise a one-line :class:`~inpaint_kit.errors.UsageError` naming the first flag that does not apply
    to ``model``'s engine (SD flags for the DDPM engine and vice versa). ``sd_extra``: other SD-only
    values that were set (e.g. ``{"prompt": "a cat"}``; falsy values count as not set)."""
    from ..errors import UsageError
    from . import is_ddpm_model

    if str(model) in ("telea", "ns"):  # OpenCV's classical fill takes no model options at all
        wrong = {**given(sd), **{k: v for k, v in (sd_extra or {}).items() if v}, **given(ddpm)}
        engine, other = "OpenCV's classical fill", "model engines"
    elif is_ddpm_model(model):
        wrong = {**given(sd), **{k: v for k, v in (sd_extra or {}).items() if v}}
        engine, other = "the builtin / DDPM engine", "SD inpainting models"
    else:
        wrong = given(ddpm)
        engine, other = "Stable Diffusion models", "the builtin / DDPM engine"
    for name, value in wrong.items():
        raise UsageError(f"--{name} {value} does not apply to --model {model} ({engine}); it is for {other}: "
                         f"leave it out or choose another --model")
