"""AUTOMATIC1111's "infotext": the ``parameters`` PNG text chunk that image viewers, web UIs and metadata
readers (sd-parsers, sd-prompt-reader, civitai) understand. Our full parameters stay as JSON in the
``inpaint-kit`` chunk; this is the same run told in the format those tools parse::

    <prompt>
    Negative prompt: <negative prompt>
    Steps: 30, Sampler: DPM++ 2M, CFG scale: 5.0, Seed: 42, Size: 768x512, Model: stable-diffusion-2-inpainting, ...

The last line is ``key: value`` pairs separated by ", "; a value holding ``,`` ``:`` or ``"`` is written as a
JSON string, as A1111 does (``quote`` in its ``generation_parameters_copypaste``).
"""

from __future__ import annotations

import json
from pathlib import PurePath

# diffusers scheduler class (what the SD engine records) -> the sampler name A1111 shows
SAMPLER_NAMES = {
    "DPMSolverMultistepScheduler": "DPM++ 2M",
    "EulerAncestralDiscreteScheduler": "Euler a",
    "EulerDiscreteScheduler": "Euler",
    "DDIMScheduler": "DDIM",
    "PNDMScheduler": "PLMS",
    "UniPCMultistepScheduler": "UniPC",
    "DDPMScheduler": "DDPM",
    "LMSDiscreteScheduler": "LMS",
    "HeunDiscreteScheduler": "Heun",
}
# from-scratch DDPM samplers (``sampler`` in the builtin engine's record)
DDPM_SAMPLERS = {"ddpm": "DDPM", "ddim": "DDIM", "repaint": "RePaint"}


def quote(value) -> str:
    """A value as A1111 writes it: plain, or a JSON string when it holds a separator."""
    text = str(value)
    if "," not in text and ":" not in text and '"' not in text and "\n" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def model_name(model: str) -> str:
    """A model's short name: the last part of a hub id or path, without a checkpoint suffix."""
    name = PurePath(str(model)).name or str(model)
    for suffix in (".safetensors", ".ckpt"):
        name = name.removesuffix(suffix)
    return name


def sampler_name(meta: dict) -> str:
    """The A1111 sampler name for a run's record (SD scheduler class, or the builtin DDPM's sampler)."""
    if meta.get("engine") == "ddpm":
        return DDPM_SAMPLERS.get(str(meta.get("sampler")), str(meta.get("sampler", "DDPM")))
    cls = meta.get("scheduler_class")
    return SAMPLER_NAMES.get(cls, cls or str(meta.get("scheduler", "default")))


def a1111(meta: dict) -> str:
    """The infotext of one output PNG from its recorded parameters (see module docstring). ``Seed`` is the
    first row's seed (a collage lists all of them in ``Seeds``); ``Size`` is the working size the model saw."""
    seeds = meta.get("seeds") or []
    fields = {
        "Steps": meta.get("steps"),
        "Sampler": sampler_name(meta),
        "CFG scale": meta.get("guidance") if meta.get("engine") != "ddpm" else None,
        "Seed": seeds[0] if seeds else None,
        "Size": "x".join(map(str, meta["work_size"])) if meta.get("work_size") else None,
        "Model": model_name(meta["model"]) if meta.get("model") else None,
        "Denoising strength": meta.get("strength"),
        "Mask blur": meta.get("mask_blur"),
        "Inpaint area": {"crops": "Only masked", "full": "Whole picture"}.get(meta.get("area_used") or ""),
        "Masked area padding": meta.get("padding") if meta.get("area_used") == "crops" else None,
        "Lora": f"{model_name(meta['lora'])} {meta.get('lora_scale')}" if meta.get("lora") else None,
        "Seeds": " ".join(map(str, seeds)) if len(seeds) > 1 else None,
        "Version": f"inpaint-kit {meta['inpaint_kit_version']}" if meta.get("inpaint_kit_version") else None,
    }
    line = ", ".join(f"{k}: {quote(v)}" for k, v in fields.items() if v is not None and v != "")
    text = str(meta.get("prompt") or "")
    if meta.get("negative_prompt"):
        text += f"\nNegative prompt: {meta['negative_prompt']}"
    return f"{text}\n{line}"
