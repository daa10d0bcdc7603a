"""The Stable Diffusion inpainting engine: loads a ``StableDiffusionInpaintPipeline`` once and fills
working canvases with all collage rows in ONE batched pipeline call.

What it adds to a plain ``pipe(...)`` call, and why:

* **Row guarantee.** Each row's initial latents come from its own ``torch.Generator('cpu')`` seeded
  with the row's seed, and the masked image is VAE-encoded once, deterministically (the latent
  distribution's mode), and handed to the pipeline as ``masked_image_latents``. The per-row generators
  are also passed on, so schedulers that draw noise at every step (euler_a, ddpm) draw it per row.
  Result: a row is the same alone or in a batch (the pipeline's own generator handling does not give
  this: it encodes the masked image by *sampling* with only the first generator).
* **No-op guidance skipped.** With an empty prompt and an empty negative prompt the conditional and
  unconditional text embeddings are identical, so classifier-free guidance returns the conditional
  prediction whatever the scale: the engine runs with guidance 1.0, which halves the UNet batch.
* **Work counted.** ``unet_evaluations`` (UNet forward calls) and ``unet_rows`` (rows through the UNet,
  i.e. batch size x calls) accumulate over the engine's life, for the benchmark.

All of this lives in :class:`PipelineEngine` and :func:`load_with`, which the ControlNet engine
(:mod:`inpaint_kit.engine.controlnet`) builds on; :class:`SDEngine` adds only what an inpainting
(9-channel) UNet is given. LoRA files are found, checked and applied by :mod:`inpaint_kit.engine.lora`.

Model sources (``load_sd_engine(model)``):
  - a local diffusers folder (with ``model_index.json``): loaded offline;
  - a single ``.safetensors`` / ``.ckpt`` checkpoint (A1111 style). diffusers needs the model's configs
    (a diffusers folder, weights optional) to build it offline; the folder is looked up beside the
    checkpoint as ``<dir>/<stem>/`` and then ``<dir>/config/``. Without one, diffusers' own lookup is
    tried (the matching hub repo's configs, from the cache or the network). ``.ckpt`` files are read
    with ``torch.load(weights_only=True)``: a pickle that wants to run code is refused;
  - a hub id: loaded from the Hugging Face cache (``cache_dir``) if it is there, else downloaded.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InpaintKitError
from ..geometry import block_mask
from ..progress import interactive
from . import lora as loras
from .base import DTYPES, Canvas, RowsMixin, Sampling, check_items, one_line, resolve_device_dtype  # noqa: F401 (DTYPES re-exported)
from .options import SCHEDULERS, SDOptions

# --scheduler name (options.SCHEDULERS, without "default") -> (diffusers class, config overrides). Built from
# the model's own scheduler config, so the noise schedule (betas, timestep spacing, prediction type) stays the model's.
_SCHEDULER_SPECS = {
    "ddim": ("DDIMScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "ddpm": ("DDPMScheduler", {}),
}
CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


# ----------------------------------------------------------------------------------------------------
# loading


def _single_file_config(path: Path) -> Path | None:
    """The diffusers config folder for checkpoint ``path``: ``<dir>/<stem>/`` or ``<dir>/config/``."""
    for folder in (path.with_suffix(""), path.parent / "config"):
        if (folder / "model_index.json").is_file():
            return folder
    return None


def _load_single_file(path: Path, torch_dtype, cache_dir):
    from diffusers import StableDiffusionInpaintPipeline

    config = _single_file_config(path)
    kwargs = dict(dtype=torch_dtype, safety_checker=None, requires_safety_checker=False)
    try:
        if config is not None:
            return StableDiffusionInpaintPipeline.from_single_file(
                str(path), config=str(config), local_files_only=True, **kwargs)
        return StableDiffusionInpaintPipeline.from_single_file(str(path), cache_dir=cache_dir, **kwargs)
    except Exception as e:  # diffusers raises OSError/ValueError/KeyError/UnpicklingError/... here
        where = f"with config folder {config}" if config else (
            f"(no config folder found: put the model's diffusers folder at {path.with_suffix('')}/ or "
            f"{path.parent / 'config'}/)")
        raise InpaintKitError(f"cannot load checkpoint {path} {where}: {one_line(e)}") from e


def _load_hub(model: str, torch_dtype, cache_dir):
    """Cached copies load without network; otherwise download; failing both is one line."""
    from diffusers import StableDiffusionInpaintPipeline
    from huggingface_hub import constants

    kwargs = dict(dtype=torch_dtype, cache_dir=cache_dir, safety_checker=None, requires_safety_checker=False)
    try:
        return StableDiffusionInpaintPipeline.from_pretrained(model, local_files_only=True, **kwargs)
    except OSError:
        pass  # not (fully) cached
    hint = "pass --model PATH (a diffusers folder or a .safetensors/.ckpt file)"
    cache = f" ({cache_dir})" if cache_dir else ""
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise InpaintKitError(f"model {model!r} is not in the Hugging Face cache{cache} and HF_HUB_OFFLINE is set; {hint}")
    try:
        return StableDiffusionInpaintPipeline.from_pretrained(model, **kwargs)
    except Exception as e:
        name = type(e).__name__
        if "RepositoryNotFound" in name or "GatedRepo" in name:
            reason = "the Hugging Face hub has no such (public) model"
        else:
            reason = "the Hugging Face hub is not reachable"
        raise InpaintKitError(f"model {model!r} is not in the Hugging Face cache{cache} and {reason}; {hint}") from e


def load_pipeline(model: str, torch_dtype=None, cache_dir: str | None = None):
    """A ``StableDiffusionInpaintPipeline`` from a diffusers folder, a single checkpoint file or a hub id
    (see module docstring); every failure is a one-line :class:`InpaintKitError`."""
    from diffusers import StableDiffusionInpaintPipeline

    from ..progress import quiet_loading

    quiet_loading()

    path = Path(model).expanduser()
    kinds = "a diffusers folder (with model_index.json), a .safetensors/.ckpt checkpoint or a hub id"
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise InpaintKitError(f"{path} is a folder but not a diffusers model (no model_index.json); --model takes {kinds}")
        try:
            return StableDiffusionInpaintPipeline.from_pretrained(
                path, local_files_only=True, dtype=torch_dtype, safety_checker=None, requires_safety_checker=False)
        except Exception as e:
            raise InpaintKitError(f"cannot load diffusers folder {path}: {one_line(e)}") from e
    if path.is_file():
        if path.suffix.lower() not in CHECKPOINT_SUFFIXES:
            raise InpaintKitError(f"{path} is not a model file (expected .safetensors or .ckpt); --model takes {kinds}")
        return _load_single_file(path, torch_dtype, cache_dir)
    if path.exists() or not _HUB_ID.match(model) or model.startswith((".", "~")) or path.suffix.lower() in CHECKPOINT_SUFFIXES:
        raise InpaintKitError(f"{model}: no such model file or folder; --model takes {kinds}")
    return _load_hub(model, torch_dtype, cache_dir)


def build_scheduler(name: str, config):
    """A scheduler ``name`` (one of :data:`SCHEDULERS` except ``default``) built from a model's config."""
    import diffusers

    if name not in _SCHEDULER_SPECS:
        raise ValueError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
    cls_name, overrides = _SCHEDULER_SPECS[name]
    return getattr(diffusers, cls_name).from_config(config, **overrides)


# ----------------------------------------------------------------------------------------------------
# the engine


def seeded_latents(pipe, device, seeds: Sequence[int], h: int, w: int):
    """Per-item noise (n, 4, h/8, w/8), item i from ``Generator('cpu').manual_seed(seeds[i])``, and
    the generators (advanced past that draw) for schedulers that add noise at each step: the noise a row
    starts from never depends on the other rows."""
    import torch

    f = pipe.vae_scale_factor
    shape = (1, pipe.vae.config.latent_channels, h // f, w // f)
    generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    latents = torch.cat([torch.randn(shape, generator=g, dtype=torch.float32) for g in generators])
    return latents.to(device, pipe.unet.dtype), generators


class PipelineEngine(RowsMixin):
    """What every engine on a diffusers SD pipeline shares (:class:`SDEngine`, and the ControlNet engine of
    :mod:`inpaint_kit.engine.controlnet`): the UNet check, the work counters, ``describe``, the batching
    loop of :meth:`fill`, the skip-guidance test and the pipeline call's output. A subclass says which
    UNets it takes (:meth:`check_unet`), what else it records (:meth:`extra_info`) and how one batch is
    passed to its pipeline (:meth:`_call`)."""

    name = "sd"  # the registry name recorded as "engine"
    multiple = 8
    # Latent pixels (items x h/8 x w/8) per pipeline call: four 768x768 rows, the memory a default
    # collage has always needed. More items are split over several calls (results do not change).
    max_batch_latents = 4 * 96 * 96

    def __init__(self, pipe, model: str, device: str, dtype: str, scheduler: str = "default",
                 lora: str | None = None, lora_scale: float = 1.0):
        self.check_unet(model, int(pipe.unet.config.in_channels))
        self.pipe = pipe
        self.model, self.device, self.dtype = model, device, dtype
        self.scheduler, self.lora, self.lora_scale = scheduler, lora, lora_scale
        self.unet_evaluations = 0  # UNet forward calls
        self.unet_rows = 0  # sum of their batch sizes (rows x CFG doubling)
        self.unet_latent_pixels = 0  # sum of batch x latent h x latent w over all UNet calls
        self.last_info: dict = {}
        # Run guidance 1.0 when both prompts are empty (CFG is then a no-op); False forces the doubled
        # batch, as a plain pipeline call does (tests and the benchmark compare the two).
        self.skip_noop_cfg = True
        # .remove() it when the pipeline outlives the engine (the ControlNet trainer's validation)
        self.hook = pipe.unet.register_forward_pre_hook(self._count, with_kwargs=True)

    @classmethod
    def check_unet(cls, model: str, in_channels: int) -> None:
        """One-line error unless this engine can drive a UNet of ``in_channels`` inputs."""
        raise NotImplementedError

    def _count(self, module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        self.unet_evaluations += 1
        self.unet_rows += int(sample.shape[0])
        self.unet_latent_pixels += int(sample.shape[0] * sample.shape[-2] * sample.shape[-1])

    def extra_info(self) -> dict:
        """What this engine records beside the SD engine's provenance."""
        return {}

    def describe(self) -> dict:
        """Provenance for output metadata (``cfg_skipped`` once a call has run)."""
        info = {
            "engine": self.name,
            "model": self.model,
            **self.extra_info(),
            "scheduler": self.scheduler,
            "scheduler_class": type(self.pipe.scheduler).__name__,
            "lora": self.lora,
            "lora_scale": self.lora_scale if self.lora else None,
            "dtype": self.dtype,
            "device": self.device,
        }
        if "cfg_skipped" in self.last_info:
            info["cfg_skipped"] = self.last_info["cfg_skipped"]
        from ..recipe import read_recipe  # how a merged / LoRA-fused model was made (merge-inpaint, export)

        if (recipe := read_recipe(self.model)) is not None:
            info["recipe"] = recipe
        return info

    def initial_latents(self, seeds: Sequence[int], h: int, w: int):
        return seeded_latents(self.pipe, self.device, seeds, h, w)

    def fill(self, items: Sequence[Canvas], sampling: Sampling, progress: bool = True) -> list[np.ndarray]:
        """Fill every item's mask, as many items per pipeline call as ``max_batch_latents`` allows."""
        h, w = check_items(items, self.multiple)
        f = self.pipe.vae_scale_factor
        per_call = max(1, self.max_batch_latents // ((h // f) * (w // f)))
        out, before = [], (self.unet_evaluations, self.unet_rows, self.unet_latent_pixels)
        for i in range(0, len(items), per_call):
            out += self._call(items[i : i + per_call], sampling, progress)
        self.last_info.update(unet_evaluations=self.unet_evaluations - before[0], unet_rows=self.unet_rows - before[1],
                              unet_latent_pixels=self.unet_latent_pixels - before[2])
        return out

    def _call(self, items: Sequence[Canvas], sampling: Sampling, progress: bool) -> list[np.ndarray]:
        """One pipeline call for ``items`` (all of one size), through :meth:`_run`."""
        raise NotImplementedError

    def _run(self, sampling: Sampling, items: Sequence[Canvas], progress: bool, **call) -> list[np.ndarray]:
        """Call the pipeline with what every SD-family call shares (size, steps, guidance, each row's own
        noise and generator; guidance 1.0 when both prompts are empty) plus ``call``; one float32 array in
        [0, 1] per item (the VAE decode as the pipeline post-processes it, never rounded to 8 bits here)."""
        h, w = items[0].image.shape[:2]
        latents, generators = self.initial_latents([it.seed for it in items], h, w)
        cfg_skipped = (self.skip_noop_cfg and not sampling.prompt and not sampling.negative_prompt
                       and sampling.guidance > 1.0)
        self.pipe.set_progress_bar_config(disable=not (progress and interactive()), leave=False, desc="steps")
        out = self.pipe(
            **call,
            height=h,
            width=w,
            strength=1.0,
            num_inference_steps=sampling.steps,
            guidance_scale=1.0 if cfg_skipped else sampling.guidance,
            generator=generators,
            latents=latents,
            output_type="np",
        ).images  # (n, h, w, 3) float in [0, 1]
        self.last_info = {"cfg_skipped": cfg_skipped}
        return [np.array(row, np.float32) for row in out]  # own copies (not views of the batch)


class SDEngine(PipelineEngine):
    """A loaded SD inpainting pipeline (9-channel UNet) implementing :class:`inpaint_kit.engine.Engine`."""

    @classmethod
    def check_unet(cls, model: str, in_channels: int) -> None:
        if in_channels != 9:
            raise InpaintKitError(f"{model} is not an inpainting model (its UNet takes {in_channels} "
                                  "input channels, inpainting models take 9); use an inpainting checkpoint")

    def masked_image_latents(self, image: np.ndarray, mask: np.ndarray):
        """VAE latents (1, 4, h/8, w/8) of the image with the repair region set to 0 (mid grey in
        [-1, 1], as the pipeline does), encoded deterministically with the latent distribution's mode."""
        import torch

        vae = self.pipe.vae
        x = torch.tensor(image).permute(2, 0, 1)[None].float() / 127.5 - 1.0  # (1, 3, h, w) in [-1, 1] (copy: input may be read-only)
        x = x * torch.from_numpy(~mask)[None, None].float()
        with torch.no_grad():
            z = vae.encode(x.to(self.device, vae.dtype)).latent_dist.mode()
        return z * vae.config.scaling_factor

    def _call(self, items: Sequence[Canvas], sampling: Sampling, progress: bool) -> list[np.ndarray]:
        """One pipeline call for ``items``: each brings its own noise, mask and masked-image latents."""
        import torch
        from PIL import Image

        f = self.pipe.vae_scale_factor
        # 1. The pipeline shrinks the mask to latent cells with nearest neighbour, which would drop thin
        #    cracks; a mask grown to whole cells shrinks exactly, so every cell touched by damage is
        #    repainted (and hidden from the masked image). Paste-back later uses the exact mask.
        blocks, encoded, latents_of = {}, {}, []
        for it in items:
            if id(it.mask) not in blocks:
                blocks[id(it.mask)] = block_mask(it.mask, f)
            key = (id(it.image), id(it.mask))  # rows of one image share one encoding
            if key not in encoded:
                encoded[key] = self.masked_image_latents(it.image, blocks[id(it.mask)])
            latents_of.append(encoded[key])
        shared = len(encoded) == 1  # one encoding and one mask for all: the pipeline repeats them
        masks = [Image.fromarray(blocks[id(it.mask)].astype(np.uint8) * 255) for it in (items[:1] if shared else items)]
        return self._run(
            sampling, items, progress,
            prompt=sampling.prompt,
            negative_prompt=sampling.negative_prompt or None,
            image=Image.fromarray(items[0].image),  # unused at strength 1 with our own latents (9-channel UNet)
            mask_image=masks[0] if shared else masks,
            masked_image_latents=latents_of[0] if shared else torch.cat(latents_of),
            num_images_per_prompt=len(items),
        )


def load_with(engine_cls, model: str, options: SDOptions, device: str | None, dtype: str,
              before_base=lambda torch_dtype: None, check=lambda pipe, extra: None):
    """The loading sequence of every SD-family engine: check the options, resolve device and dtype, find
    the LoRA file, ``before_base(torch_dtype)`` (e.g. load and check a ControlNet: small things first), load
    the base pipeline, ``check(pipe, extra)`` (``extra``: what ``before_base`` returned), move it to the
    device, set the scheduler and apply the LoRA. Every failure before the slow base load is one line.
    Returns ``(pipe, device, dtype name, extra)``."""
    if options.scheduler not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {options.scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
    device, dtype_name, torch_dtype = resolve_device_dtype(device, dtype)
    lora = loras.resolve_lora(options.lora) if options.lora else None  # bad --lora fails before the slow load
    extra = before_base(torch_dtype)
    pipe = load_pipeline(model, torch_dtype=torch_dtype, cache_dir=options.cache_dir)
    engine_cls.check_unet(model, int(pipe.unet.config.in_channels))
    check(pipe, extra)
    pipe.to(device)
    if options.scheduler != "default":
        pipe.scheduler = build_scheduler(options.scheduler, pipe.scheduler.config)
    if lora is not None:
        loras.apply(pipe, lora, options.lora_scale)
    return pipe, device, dtype_name, extra


def load_sd_engine(model: str, *, device: str | None = None, dtype: str = "auto",
                   options: SDOptions | None = None, **fields) -> SDEngine:
    """Load an SD inpainting model (hub id, diffusers folder or single checkpoint) as an :class:`SDEngine`,
    with :class:`~inpaint_kit.engine.options.SDOptions` (``fields`` replace single ones): ``scheduler``
    (one of :data:`SCHEDULERS`) and an optional LoRA / partial fine-tune."""
    o = replace(options or SDOptions(), **fields)
    if o.controlnet:
        raise InpaintKitError(f"--controlnet {o.controlnet}: the SD engine takes no ControlNet; load it with "
                              "inpaint_kit.engine.load_engine (or engine.controlnet.load)")
    pipe, device, dtype_name, _ = load_with(SDEngine, model, o, device, dtype)
    return SDEngine(pipe, model, device, dtype_name, o.scheduler, o.lora, o.lora_scale)
