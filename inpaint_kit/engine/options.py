"""Typed options of the built-in engines: :class:`SDOptions` for diffusers Stable Diffusion pipelines (the
``sd`` and ``controlnet`` engines) and :class:`DDPMOptions` for the from-scratch DDPM (``builtin`` or a
``train-ddpm`` folder), plus the names their flags accept.

A field made with :func:`option` and a ``help`` text is also a command-line flag ``--<field>`` of every
command that loads an engine (the registry, :mod:`inpaint_kit.engine.registry`, adds them); a field
without one is an option of the Python API only. ``load_engine(model, device=, dtype=, options=)`` takes
one of these; a value that belongs to another engine than ``--model``'s is not silently dropped:
:func:`inpaint_kit.engine.registry.check_config` names it in one line before any model loads.

Nothing here imports torch, so ``--help`` stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InpaintKitError, UsageError

# --scheduler names (inpaint_kit.engine.sd maps them to diffusers classes)
SCHEDULERS = ("default", "ddim", "dpmpp_2m", "euler_a", "euler", "unipc", "pndm", "ddpm")
DDPM_SAMPLERS = ("ddim", "ddpm", "repaint")  # = inpaint_kit.ddpm.sampling.SAMPLERS (tested)
INITS = ("noise", "telea", "ns")  # where the DDPM chain starts: noise, or OpenCV's classical fill
FALLBACK_DEFAULTS = {"sampler": "ddpm", "init": "noise", "strength": 0.3}  # for DDPM models that name none


def option(default, help: str | None = None, **flag):
    """A field of an engine's options dataclass. With ``help`` it is also the flag ``--<field name>``;
    ``flag`` holds argparse's ``type`` / ``choices`` / ``metavar`` and inpaint-kit's own keys: ``aliases``
    (hidden old spellings), ``group`` (the ``--help`` section, default the engine's) and ``output_dir``
    (True: a folder that is checked for writing before any model loads)."""
    return field(default=default, metadata={"help": help, **flag} if help else {})


@dataclass(frozen=True)
class SDOptions:
    """Options of a Stable Diffusion inpainting pipeline (``controlnet`` set: the ControlNet engine)."""

    scheduler: str = option("default", "sampler for SD models", choices=SCHEDULERS, group="Stable Diffusion models")
    lora: str | None = option(None, "LoRA folder/file (lora_unet.safetensors) or unet_partial_tuned.safetensors",
                              group="Stable Diffusion models")
    lora_scale: float = option(1.0, "LoRA strength (0 = base model)", group="Stable Diffusion models")
    cache_dir: str | None = option(None, "Hugging Face cache folder for hub ids", group="Stable Diffusion models")
    controlnet: str | None = option(
        None, "inpaint ControlNet: a train-controlnet output folder or a hub id (e.g. "
              "lllyasviel/control_v11p_sd15_inpaint); --model is then an SD 1.5-family model",
        group="ControlNet inpainting (SD 1.5-family models)")
    controlnet_scale: float = option(1.0, "ControlNet strength (0 = the base model alone)", aliases=("--control_scale",),
                                     group="ControlNet inpainting (SD 1.5-family models)")

    def validate(self) -> None:
        """One-line :class:`UsageError` for values no SD model can use (before any model loads)."""
        if not self.controlnet_scale >= 0:
            raise UsageError(f"--controlnet_scale {self.controlnet_scale} must be >= 0")
        if self.controlnet is None and self.controlnet_scale != 1.0:
            raise UsageError("--controlnet_scale applies only with --controlnet; pass --controlnet or leave the scale out")


@dataclass(frozen=True)
class DDPMOptions:
    """Options of the from-scratch DDPM engine (``None`` = the model's default from its config.json).
    See :func:`inpaint_kit.engine.ddpm.load_ddpm_engine` for what each does."""

    sampler: str | None = option(None, "DDPM sampler (default: the model's)", choices=DDPM_SAMPLERS)
    init: str | None = option(None, "start from pure noise, or from OpenCV's telea / ns fill noised to --strength "
                                    "(default: the model's)", choices=INITS)
    strength: float | None = option(None, "noise level (0-1] the --init fill is taken to; lower keeps more of it "
                                          "(default: the model's)", type=float)
    jump_length: int | None = option(None, "RePaint jump length", type=int)
    jump_n_sample: int | None = option(None, "RePaint resamplings per jump", type=int)
    mask_soften: float | None = option(None, "Gaussian sigma softening the mask edge while sampling", type=float)
    save_intermediates: str | None = option(None, "folder for the canvas every few steps", output_dir=True)
    intermediate_every: int = 0  # 0 = 10 snapshots
    overlap: int | None = None  # window overlap in pixels (default a quarter window)
    max_batch: int = 32  # windows per network call
    coarse_factor_max: float = 4.0  # large holes: coarse pass at up to this scale-down (1 = off)
    refine_strength: float = 0.6  # ... refined from this noise level at full scale


def model_defaults(config, folder) -> dict:
    """The sampling defaults a DDPM model folder names in ``config.json`` ``extra.inference``, checked, over
    :data:`FALLBACK_DEFAULTS` (``config``: the model's :class:`~inpaint_kit.ddpm.unet.ModelConfig`)."""
    named = config.extra.get("inference", {}) if isinstance(config.extra, dict) else {}
    d = {**FALLBACK_DEFAULTS, **{k: v for k, v in named.items() if k in FALLBACK_DEFAULTS}}
    if d["sampler"] not in DDPM_SAMPLERS or d["init"] not in INITS or not 0 < float(d["strength"]) <= 1:
        raise InpaintKitError(f"{folder}/config.json: bad extra.inference {named}; sampler in {', '.join(DDPM_SAMPLERS)}, "
                              f"init in {', '.join(INITS)}, 0 < strength <= 1")
    return d
