"""Exporting what ``train-lora`` made for other tools.

* **Fused checkpoint**: the LoRA (or the ``--train attn`` partial weights) loaded over the base model exactly
  as ``infer --model BASE --lora LORA --lora_scale S`` loads it (:func:`inpaint_kit.engine.sd.load_sd_engine`),
  then fused into the weights (diffusers' ``fuse_lora``: W += S * alpha/r * B @ A) and written as one
  original-layout checkpoint that AUTOMATIC1111, ComfyUI and Fooocus load, and/or as a diffusers folder.
  Its recipe (base and LoRA with their sha256, the scale) travels with it (:mod:`inpaint_kit.recipe`).
* **Adapter alone** in another key layout, through diffusers' converters: ``kohya`` (``lora_unet_*`` /
  ``lora_te_*`` keys with ``.alpha``, what A1111's and ComfyUI's LoRA loaders read) or ``diffusers``
  (what ``pipe.load_lora_weights`` reads). The scale is baked in (kohya: into ``alpha``; diffusers: into the
  up weights), so loading the file at strength 1 equals ``infer --lora LORA --lora_scale S``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import InpaintKitError, UsageError

LORA_FORMATS = ("kohya", "diffusers")
SAVE_DTYPES = ("fp32", "fp16", "bf16")
_PARTS = ("unet", "text_encoder")  # LoRA components train-lora writes (diffusers key prefixes)


@dataclass
class ExportConfig:
    """One ``inpaint-kit export`` run: ``lora`` fused into ``model`` (``single_file`` and/or ``output_dir``),
    and/or the adapter alone in ``lora_format`` written to ``output``."""

    lora: str
    model: str | None = None
    single_file: str | None = None
    output_dir: str | None = None
    lora_format: str | None = None
    output: str | None = None
    lora_scale: float = 1.0
    dtype: str = "fp32"
    overwrite: bool = False
    cache_dir: str | None = None

    @property
    def fuse(self) -> bool:
        return bool(self.single_file or self.output_dir)

    def validate(self) -> "ExportConfig":
        """Flag combinations, values and output locations, before any model loads (one line each)."""
        from .engine.lora import resolve_lora
        from .merge import check_outputs

        if not self.fuse and not self.lora_format:
            raise UsageError("nothing to export: give --single_file and/or --output_dir (the LoRA fused into --model), "
                             "or --lora_format with --output (the adapter alone)")
        if self.fuse and not self.model:
            raise UsageError("--single_file / --output_dir fuse the LoRA into a base model; give it with --model")
        if self.model and not self.fuse:
            raise UsageError("--model is the base a LoRA is fused into; add --single_file and/or --output_dir "
                             "(the adapter alone, --lora_format, needs no model)")
        if bool(self.lora_format) != bool(self.output):
            raise UsageError("--lora_format and --output go together: the adapter alone in that layout, written to --output")
        if self.lora_format and self.lora_format not in LORA_FORMATS:
            raise UsageError(f"--lora_format must be one of {', '.join(LORA_FORMATS)} (got {self.lora_format!r})")
        if self.dtype not in SAVE_DTYPES:
            raise UsageError(f"--dtype must be one of {', '.join(SAVE_DTYPES)} (got {self.dtype!r})")
        if self.dtype != "fp32" and not self.fuse:
            raise UsageError("--dtype sets the fused model's weights; it applies to --single_file / --output_dir")
        if not math.isfinite(self.lora_scale):
            raise UsageError(f"--lora_scale must be a finite number (got {self.lora_scale})")
        kind, path = resolve_lora(self.lora)  # one-line errors for a missing / unreadable --lora
        if self.lora_format and kind == "partial":
            raise UsageError(f"--lora {path} holds fine-tuned attention weights (--train attn), not a LoRA; they have no "
                             "adapter form: fuse them into the base with --model and --single_file")
        check_outputs(self.output_dir, self.single_file, self.overwrite, inputs={"--model": self.model, "--lora": self.lora})
        if self.output:
            _check_file(self.output, "--output", self.overwrite, [path])
        return self


def _check_file(target: str, flag: str, overwrite: bool, inputs) -> None:
    from .checks import check_output_file
    from .errors import OutputError

    path = Path(target).expanduser()
    if path.suffix.lower() != ".safetensors":
        raise UsageError(f"{flag} {path} must end in .safetensors")
    if any(path.resolve() == Path(p).resolve() for p in inputs):
        raise UsageError(f"{flag} {path} is the --lora file itself; write the export somewhere else")
    if path.exists() and not overwrite:
        raise OutputError(f"{flag} {path} already exists; pass --overwrite to replace it or choose another path")
    check_output_file(path, flag=flag)


# ----------------------------------------------------------------------------------------------------
# fused checkpoint


def fused_pipeline(model: str, lora: str, lora_scale: float, cache_dir: str | None = None):
    """The base pipeline with the LoRA / partial weights loaded as ``infer --lora`` loads them, then fused
    into the weights and the adapter layers removed (plain modules, plain state-dict keys)."""
    from .engine.lora import ADAPTER, resolve_lora
    from .engine.sd import load_sd_engine

    kind, _ = resolve_lora(lora)
    engine = load_sd_engine(model, device="cpu", dtype="fp32", lora=lora, lora_scale=lora_scale, cache_dir=cache_dir)
    pipe = engine.pipe
    if kind == "lora":
        # the adapter carries the scale already (set_adapters weight), so fuse at 1.0
        components = [name for name in _PARTS if ADAPTER in pipe.get_list_adapters().get(name, [])]
        pipe.fuse_lora(components=components, lora_scale=1.0, adapter_names=[ADAPTER])
        pipe.unload_lora_weights()  # after fusing: removes the LoRA layers, keeps the fused weights
    return pipe


def export_fused(cfg: ExportConfig) -> dict:
    """Write ``cfg.lora`` fused into ``cfg.model`` (single file and/or diffusers folder); returns the recipe."""
    from . import __version__
    from .engine.lora import resolve_lora
    from .merge import torch_dtype, write_model
    from .model_source import describe_model, file_sha256

    kind, path = resolve_lora(cfg.lora)
    pipe = fused_pipeline(cfg.model, cfg.lora, cfg.lora_scale, cfg.cache_dir)
    base_id = describe_model(cfg.model, cfg.cache_dir)  # after loading: a hub id is in the cache now
    pipe.to(torch_dtype(cfg.dtype))
    recipe = {
        "method": "fuse_lora" if kind == "lora" else "fuse_partial",
        "formula": ("W = W_base + lora_scale * alpha/r * B @ A on the LoRA's layers" if kind == "lora" else
                    "W = lerp(W_base, W_tuned, lora_scale) on the fine-tuned attention weights"),
        "lora_scale": cfg.lora_scale,
        "models": {"base": base_id, "lora": {"model": str(path), "kind": kind, "sha256": file_sha256(path)}},
        "dtype": cfg.dtype,
        "inpaint_kit_version": __version__,
    }
    write_model(pipe, recipe, cfg.output_dir, cfg.single_file, cfg.overwrite)
    return recipe


# ----------------------------------------------------------------------------------------------------
# the adapter alone


def lora_parts(path: Path) -> dict[str, tuple[dict, dict]]:
    """A diffusers-format LoRA file as ``{part: (peft state dict, LoRA config dict)}`` for its parts
    (``unet``, ``text_encoder``), keys without the part prefix, read with diffusers' own loader."""
    from diffusers import StableDiffusionInpaintPipeline
    from diffusers.utils import convert_state_dict_to_peft, convert_unet_state_dict_to_peft

    # diffusers writes the UNet part as ``<module>.lora.down/up`` and the text encoder part as
    # ``<module>.lora_linear_layer.down/up``: each has its own converter to peft's lora_A/lora_B
    to_peft = {"unet": convert_unet_state_dict_to_peft, "text_encoder": convert_state_dict_to_peft}
    state, _, metadata = StableDiffusionInpaintPipeline.lora_state_dict(
        str(path.parent), weight_name=path.name, return_lora_metadata=True)
    metadata = metadata or {}
    parts = {}
    for part in _PARTS:
        prefix = part + "."
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not sub:
            continue
        config = {k[len(prefix):]: v for k, v in metadata.items() if k.startswith(prefix)}
        if config.get("rank_pattern") or config.get("alpha_pattern"):
            raise InpaintKitError(f"{path}: LoRA with per-layer ranks/alphas ({part}); only uniform LoRAs (as train-lora "
                                  "writes them) can be converted")
        peft = sub if any(".lora_A." in k for k in sub) else to_peft[part](sub)
        parts[part] = (peft, config)
    if not parts:
        raise InpaintKitError(f"{path}: no unet./text_encoder. LoRA weights; is it a train-lora output?")
    return parts


def _lora_alpha(config: dict, peft_state: dict) -> float:
    """The LoRA's alpha (scale = alpha / r); files without metadata load with alpha = r in diffusers."""
    rank = next(v.shape[0] for k, v in peft_state.items() if ".lora_A." in k)
    return float(config.get("lora_alpha", rank))


def kohya_state_dict(parts: dict, scale: float) -> dict:
    """The LoRA in kohya's layout (``lora_unet_<module>`` / ``lora_te_text_model_<module>`` with
    ``lora_down``/``lora_up`` weights and an ``alpha`` per module), via diffusers' converter. ``alpha`` is
    set to ``lora_alpha * scale`` so that strength 1 in any kohya reader applies ``scale``."""
    import torch
    from diffusers.utils import convert_state_dict_to_kohya

    out = {}
    for part, (peft, config) in parts.items():
        alpha = _lora_alpha(config, peft) * scale
        prefixed = {f"{part}.{k}": v for k, v in peft.items()}
        for key, value in convert_state_dict_to_kohya(prefixed).items():
            if key.startswith("lora_te1_"):
                # SD 1.x/2.x readers (A1111, ComfyUI) name the one text encoder lora_te_ and keep
                # transformers' text_model level, which transformers >= 5.6 no longer has
                rest = key[len("lora_te1_"):]
                key = "lora_te_" + (rest if rest.startswith("text_model_") else "text_model_" + rest)
            if key.endswith(".alpha"):
                value = torch.tensor(alpha, dtype=torch.float32)
            out[key] = value.contiguous()
    return out


def diffusers_lora_layers(parts: dict, scale: float) -> dict[str, tuple[dict, dict]]:
    """The LoRA's parts in diffusers' layout (``lora.down``/``lora.up``), ``scale`` multiplied into the up
    (``lora_B``) weights, with their LoRA configs."""
    from diffusers.utils import convert_state_dict_to_diffusers

    out = {}
    for part, (peft, config) in parts.items():
        scaled = {k: (v * scale if ".lora_B." in k else v).contiguous() for k, v in peft.items()}
        out[part] = (convert_state_dict_to_diffusers(scaled), config)
    return out


def export_adapter(lora: str, lora_format: str, output: str, lora_scale: float = 1.0) -> Path:
    """Write the LoRA ``lora`` alone in ``lora_format`` (kohya | diffusers) to ``output`` (atomically)."""
    from safetensors.torch import save_file

    from .engine.lora import resolve_lora
    from .images import atomic_write
    from .model_source import file_sha256

    kind, path = resolve_lora(lora)
    if kind != "lora":
        raise UsageError(f"--lora {path} holds fine-tuned attention weights, not a LoRA; fuse them with --single_file")
    parts = lora_parts(path)
    out = Path(output).expanduser()
    provenance = json.dumps({"source": str(path), "sha256": file_sha256(path), "lora_scale": lora_scale})
    if lora_format == "kohya":
        state = kohya_state_dict(parts, lora_scale)
        meta = {"format": "pt", "ss_network_module": "networks.lora", "inpaint_kit_export": provenance}
        atomic_write(out, lambda tmp: save_file(state, str(tmp), metadata=meta))
        return out
    from diffusers import StableDiffusionInpaintPipeline

    kwargs = {}
    for part, (layers, config) in diffusers_lora_layers(parts, lora_scale).items():
        kwargs[f"{part}_lora_layers"] = layers
        if config:
            kwargs[f"{part}_lora_adapter_metadata"] = config
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        StableDiffusionInpaintPipeline.save_lora_weights(tmp, weight_name=out.name, **kwargs)
        os.replace(tmp / out.name, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
