"""Add-difference merging: an inpainting model made from a text-to-image fine-tune.

    unet = inpaint + alpha * (custom - base)        for every UNet weight (merged in fp32)

``inpaint`` is an official inpainting model (A, 9-channel UNet: 4 noisy latents + 1 mask + 4 masked-image
latents), ``base`` the text-to-image model the fine-tune was trained from (B, 4 channels) and ``custom``
the fine-tune (C, 4 channels). C - B is what the fine-tuning learnt; added to A it gives A that look. The
input convolution's first 4 input channels get the same treatment; its 5 extra channels exist only in A
and are taken from A unchanged. The text encoder (with its tokenizer) and the VAE come from C by default
(the fine-tune may have trained them too) or from A; the scheduler comes from A (the merged UNet keeps
A's noise schedule and prediction type). This is AUTOMATIC1111's checkpoint merger in "add difference"
mode, the way community inpainting models were made from fine-tunes.

Memory: the three UNets are read one tensor at a time from safetensors (:mod:`inpaint_kit.model_source`),
so the peak is about one output model plus the largest single tensor, not three models
(``bench/bench_merge.py``, docs/benchmarks.md). Every check that needs no weights runs first (output paths,
architectures, channels, missing weights), each a one-line error naming the model.

The result is a diffusers folder (safetensors) with the recipe in ``merge_config.json``
(:mod:`inpaint_kit.recipe`), written to a temporary folder and renamed into place; optionally also one
checkpoint in the original layout (:mod:`inpaint_kit.ldm_layout`), its recipe in the file's metadata.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import InpaintKitError, OutputError, UsageError

PART_SOURCES = ("custom", "inpaint")  # where the text encoder / VAE may come from
SAVE_DTYPES = ("fp32", "fp16", "bf16")
INPUT_CONV = "conv_in.weight"  # (out, in, 3, 3): in = 9 for A, 4 for B and C
_SHOWN = 5  # missing weights listed by name; more are counted


@dataclass
class MergeConfig:
    """One add-difference merge (``inpaint-kit merge-inpaint``); see the module docstring."""

    inpaint: str
    base: str
    custom: str
    output_dir: str
    alpha: float = 1.0
    text_encoder_from: str = "custom"
    vae_from: str = "custom"
    single_file: str | None = None
    dtype: str = "fp32"
    overwrite: bool = False
    cache_dir: str | None = None

    def validate(self) -> "MergeConfig":
        """Everything checkable without a model: values, choices, output locations (one line each)."""
        if not math.isfinite(self.alpha):
            raise UsageError(f"--alpha must be a finite number (got {self.alpha})")
        for flag, value in (("--text_encoder_from", self.text_encoder_from), ("--vae_from", self.vae_from)):
            if value not in PART_SOURCES:
                raise UsageError(f"{flag} must be one of {', '.join(PART_SOURCES)} (got {value!r})")
        if self.dtype not in SAVE_DTYPES:
            raise UsageError(f"--dtype must be one of {', '.join(SAVE_DTYPES)} (got {self.dtype!r})")
        check_outputs(self.output_dir, self.single_file, self.overwrite,
                      inputs={"--inpaint": self.inpaint, "--base": self.base, "--custom": self.custom})
        return self


def check_outputs(output_dir: str | None, single_file: str | None, overwrite: bool, inputs: dict) -> None:
    """The output folder / single file can be written, do not exist (unless ``overwrite``), and are none
    of the input models (a merge must never replace what it reads)."""
    from .checks import check_output_dir, check_output_file

    targets = [("--output_dir", output_dir), ("--single_file", single_file)]
    for flag, target in targets:
        if not target:
            continue
        path = Path(target).expanduser()
        for in_flag, model in inputs.items():
            if model and Path(model).expanduser().resolve() == path.resolve():
                raise UsageError(f"{flag} {path} is the {in_flag} model; write the result somewhere else")
        if path.exists() and not overwrite:
            raise OutputError(f"{flag} {path} already exists; pass --overwrite to replace it or choose another path")
    if output_dir:
        path = Path(output_dir).expanduser()
        if path.exists() and not path.is_dir():
            raise OutputError(f"--output_dir {path} is a file; choose a folder path")
        check_output_dir(path.parent, flag=f"--output_dir {path}: its folder")
    if single_file:
        path = Path(single_file).expanduser()
        if path.suffix.lower() != ".safetensors":
            raise UsageError(f"--single_file {path} must end in .safetensors (the checkpoint is written as safetensors)")
        check_output_file(path, flag="--single_file")


# ----------------------------------------------------------------------------------------------------
# checks on the three models (headers and configs only)


def family(config: dict) -> str:
    """'SD 1.x' / 'SD 2.x' from the UNet's cross-attention width (768 CLIP ViT-L, 1024 OpenCLIP ViT-H)."""
    width = config.get("cross_attention_dim")
    return {768: "SD 1.x", 1024: "SD 2.x"}.get(width, f"cross-attention width {width}")


# UNet config fields that must agree (in_channels is checked separately; sample_size only sets a default size)
_ARCH_FIELDS = ("cross_attention_dim", "block_out_channels", "layers_per_block", "down_block_types",
                "up_block_types", "attention_head_dim", "use_linear_projection", "out_channels")


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN])
    return f"{shown} (and {len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else shown


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else value


def check_models(a, b, c) -> None:
    """One-line errors, naming the model, unless A is a 9-channel inpainting UNet, B and C 4-channel
    text-to-image UNets, all three of one architecture, with the same weights of the same shapes."""
    if a.in_channels != 9:
        raise InpaintKitError(f"--inpaint {a.model} is not an inpainting model (its UNet takes {a.in_channels} input "
                              "channels, inpainting models take 9); give an inpainting model such as "
                              "stable-diffusion-v1-5/stable-diffusion-inpainting")
    for src in (b, c):
        if src.in_channels == 9:
            raise InpaintKitError(f"{src.flag} {src.model} is an inpainting model (9 input channels); give the "
                                  "text-to-image model (4 channels) " + ("the fine-tune was trained from" if src is b
                                                                         else "you fine-tuned"))
        if src.in_channels != 4:
            raise InpaintKitError(f"{src.flag} {src.model}: its UNet takes {src.in_channels} input channels; "
                                  "only Stable Diffusion 1.x/2.x text-to-image models (4 channels) can be merged")
    for src in (b, c):
        for field in _ARCH_FIELDS:
            mine, theirs = _as_list(src.unet_config.get(field)), _as_list(a.unet_config.get(field))
            if mine == theirs:
                continue
            if field == "cross_attention_dim":
                raise InpaintKitError(f"{src.flag} {src.model} is {family(src.unet_config)} but --inpaint {a.model} is "
                                      f"{family(a.unet_config)} (cross-attention width {mine} vs {theirs}); all three "
                                      "models must be of one family")
            what = "block widths" if field == "block_out_channels" else field
            raise InpaintKitError(f"{src.flag} {src.model} has UNet {what} {mine} but --inpaint {a.model} has {theirs}; "
                                  "all three models must have one architecture")
    keys_a = set(a.keys())
    for src in (b, c):
        keys = set(src.keys())
        if missing := sorted(keys_a - keys):
            raise InpaintKitError(f"{src.flag} {src.model} lacks {len(missing)} UNet weight(s) of --inpaint {a.model}: "
                                  f"{_listed(missing)}")
        if extra := sorted(keys - keys_a):
            raise InpaintKitError(f"{src.flag} {src.model} has {len(extra)} UNet weight(s) that --inpaint {a.model} "
                                  f"lacks: {_listed(extra)}")
    for src in (b, c):
        wrong = []
        for key in sorted(keys_a):
            want = a.shape(key)
            if key == INPUT_CONV:  # A's extra input channels: compare its first 4
                want = (want[0], src.shape(key)[1], *want[2:])
            if src.shape(key) != want:
                wrong.append(f"{key} {src.shape(key)} vs {a.shape(key)}")
        if wrong:
            raise InpaintKitError(f"{src.flag} {src.model}: {len(wrong)} UNet weight(s) differ in shape from --inpaint "
                                  f"{a.model}'s: {_listed(wrong)}")


# ----------------------------------------------------------------------------------------------------
# the merge


def add_difference(a, b, c, alpha: float, dtype=None, progress: bool = True) -> dict:
    """The merged UNet state dict: ``a + alpha * (c - b)`` per weight, computed in fp32 and stored as
    ``dtype`` (default fp32); the input convolution's channels beyond C's (the mask and masked-image
    latents of an inpainting UNet) are A's. ``a``, ``b``, ``c`` are :class:`~inpaint_kit.model_source.ModelSource`
    (checked by :func:`check_models`); one tensor of each is in memory at a time."""
    import torch

    from .progress import steps_bar

    dtype = dtype or torch.float32
    merged = {}
    keys = a.keys()
    with torch.no_grad(), steps_bar(len(keys), desc="merging", enabled=progress) as bar:
        for key in keys:
            ta, tb, tc = (src.tensor(key).to(torch.float32) for src in (a, b, c))
            if key == INPUT_CONV:
                n = tc.shape[1]  # (out, 9, k, k) += on the first 4 input channels only
                out = ta.clone()
                out[:, :n] = ta[:, :n] + alpha * (tc - tb)
            else:
                out = ta + alpha * (tc - tb)
            merged[key] = out.to(dtype)
            del ta, tb, tc, out
            bar.update(1)
    return merged


def torch_dtype(name: str):
    """fp32 / fp16 / bf16 -> the torch dtype."""
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


def pipeline_from_parts(unet_state: dict, unet_config: dict, vae, text_encoder, tokenizer, scheduler):
    """A ``StableDiffusionInpaintPipeline`` around a UNet given as a state dict: the UNet is built on the
    meta device and takes the given tensors as its parameters (no second copy of the weights)."""
    import torch
    from diffusers import StableDiffusionInpaintPipeline, UNet2DConditionModel

    config = {k: v for k, v in unet_config.items() if not k.startswith("_")}
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
    unet.load_state_dict(unet_state, strict=True, assign=True)
    return StableDiffusionInpaintPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet.eval(),
                                          scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                          requires_safety_checker=False)


def write_model(pipe, recipe: dict, output_dir: str | None, single_file: str | None, overwrite: bool) -> None:
    """Write ``pipe`` as a diffusers folder (safetensors, recipe in ``merge_config.json``) and/or as one
    original-layout checkpoint (recipe in its metadata). The folder is assembled under a temporary name
    and renamed into place; an existing one (``overwrite``) is moved aside first, so a crash never loses both."""
    from safetensors.torch import save_file

    from .images import atomic_write, replace_folder
    from .ldm_layout import ldm_state_dict
    from .recipe import recipe_metadata, write_recipe

    tmp = None
    try:
        if output_dir:
            out = Path(output_dir).expanduser()
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
            pipe.save_pretrained(tmp, safe_serialization=True)
            write_recipe(tmp, recipe)
        if single_file:
            state = ldm_state_dict(pipe)
            atomic_write(Path(single_file).expanduser(),
                         lambda t: save_file(state, str(t), metadata=recipe_metadata(recipe)))
            del state
        if tmp is not None:
            replace_folder(tmp, out)
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)



def merge_inpaint(cfg: MergeConfig, progress: bool = True) -> dict:
    """Run one add-difference merge (see module docstring); returns the recipe that was written."""
    from . import __version__
    from .model_source import ModelSource
    from .progress import quiet_loading

    cfg.validate()
    quiet_loading()
    with ModelSource(cfg.inpaint, "--inpaint", cfg.cache_dir) as a, \
            ModelSource(cfg.base, "--base", cfg.cache_dir) as b, \
            ModelSource(cfg.custom, "--custom", cfg.cache_dir) as c:
        check_models(a, b, c)
        sources = {"inpaint": a, "base": b, "custom": c}
        input_dtypes = {name: sorted({src.dtype(k) for k in src.keys()}) for name, src in sources.items()}
        recipe = {
            "method": "add_difference",
            "formula": "unet = inpaint + alpha * (custom - base), in fp32; conv_in input channels 4-8 "
                       "(mask, masked-image latents) from inpaint",
            "alpha": cfg.alpha,
            "models": {name: src.identity() for name, src in sources.items()},
            "input_dtypes": input_dtypes,
            "parts": {"unet": "add_difference", "unet_extra_input_channels": "inpaint",
                      "text_encoder": cfg.text_encoder_from, "tokenizer": cfg.text_encoder_from,
                      "vae": cfg.vae_from, "scheduler": "inpaint"},
            "dtype": cfg.dtype,
            "inpaint_kit_version": __version__,
        }
        # The parts first: loading a pipeline for them briefly holds its UNet too, which is then freed
        # before the merged UNet grows.
        dtype = torch_dtype(cfg.dtype)
        te_src, vae_src = sources[cfg.text_encoder_from], sources[cfg.vae_from]
        text_encoder, tokenizer = te_src.pipeline().text_encoder, te_src.pipeline().tokenizer
        vae = vae_src.pipeline().vae
        scheduler = a.scheduler()
        for src in sources.values():
            src.release()
        merged = add_difference(a, b, c, cfg.alpha, dtype, progress)
        pipe = pipeline_from_parts(merged, a.unet_config, vae.to(dtype), text_encoder.to(dtype), tokenizer, scheduler)
        del merged
    write_model(pipe, recipe, cfg.output_dir, cfg.single_file, cfg.overwrite)
    return recipe
