"""AUTOMATIC1111's "infotext": the ``parameters`` PNG text chunk that image viewers, web UIs and metadata
readers (sd-parsers, sd-prompt-reader, civitai) understand. Our full parameters stay as JSON in the
``inpaint-kit`` chunk; this is the same run told in the format those tools parse::

    <prompt>
    Negative prompt: <negative prompt>
    Steps: 30, Sampler: DPM++ 2M, CFG scale: 5.0, Seed: 42, Size: 768x512, Model: stable-diffusion-2-inpainting, ...

The last line is ``key: value`` pairs separated by ", "; a value holding ``,`` ``:`` or ``"`` is written as a
JSON string, as A1111 does (``quote`` in its ``generation_parameters_copypaste``). The "Sampler" is the
engine's own name for what it ran (:func:`inpaint_kit.engine.registry.sampler_name`).
"""

from __future__ import annotations

import json
from pathlib import PurePath

from .engine import registry


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


def a1111(meta: dict) -> str:
    """The infotext of one output PNG from its recorded parameters (see module docstring). ``Seed`` is the
    first row's seed (a collage lists all of them in ``Seeds``); ``Size`` is the working size the model saw."""
    seeds = meta.get("seeds") or []
    spec = registry.get(meta.get("engine") or registry.DEFAULT_ENGINE)
    fields = {
        "Steps": meta.get("steps"),
        "Sampler": registry.sampler_name(meta),  # the engine's name for what it ran (SD: the scheduler)
        "CFG scale": meta.get("guidance") if spec is None or spec.prompts else None,
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
