"""ControlNet inpainting: an SD 1.5-family model (4-channel UNet, or a 9-channel inpainting one) steered by
an inpaint ControlNet, through diffusers' ``StableDiffusionControlNetInpaintPipeline``.

The conditioning is the convention of lllyasviel's published ``control_v11p_sd15_inpaint``: a 3-channel
control image, the RGB image in [0, 1] with every pixel to repaint set to -1 (:func:`control_image`).
ControlNets written by ``inpaint-kit train-controlnet`` use the same convention (recorded as
:data:`CONDITIONING` in their ``training_config.json``), so published and home-trained ones load through
the same ``--controlnet`` flag.

:class:`ControlNetEngine` keeps every promise of the SD engine (:mod:`inpaint_kit.engine.sd`):

* **Row guarantee.** Row i's initial latents come from ``Generator('cpu').manual_seed(seed_i)``; the VAE
  encodings the pipeline makes (the image for a 4-channel UNet's known-region blending, the masked image for
  a 9-channel UNet) use the latent distribution's mode instead of a sample drawn with the first row's
  generator (:class:`_Pipeline`), and every row carries its own prompt slot, mask and control image. A row
  is the same alone or batched.
* **Whole latent cells.** The mask is grown to whole 8x8 cells before the pipeline shrinks it (thin cracks
  survive); the control image hides the same grown region. Paste-back (outside the engine) restores every
  pixel outside the user's mask exactly.
* **No-op guidance skipped** when both prompts are empty, as in the SD engine.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InpaintKitError
from ..geometry import block_mask
from . import Canvas, RowsMixin, Sampling, check_items, resolve_device_dtype

# The conditioning convention, recorded in training_config.json by train-controlnet.
CONDITIONING = "control_v11p_sd15_inpaint"  # RGB in [0, 1], repaint pixels = -1, 3 channels
CONTROLNET_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")


def control_image(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The control image of ``control_v11p_sd15_inpaint``: ``image`` RGB uint8 ``(h, w, 3)`` -> float32
    ``(3, h, w)`` in [0, 1], with the pixels where ``mask`` (bool ``(h, w)``, True = repaint) is set to -1."""
    x = image.astype(np.float32).transpose(2, 0, 1) / 255.0
    x[:, mask] = -1.0
    return x


# ----------------------------------------------------------------------------------------------------
# loading


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__


def load_controlnet(source: str, torch_dtype=None, cache_dir: str | None = None):
    """A ``ControlNetModel`` from a diffusers folder (``config.json`` + weights, e.g. a ``train-controlnet``
    output folder) or a hub id (cache first, then download); every failure is one line."""
    from diffusers import ControlNetModel

    path = Path(source).expanduser()
    kwargs = dict(dtype=torch_dtype, cache_dir=cache_dir)
    if path.is_dir():
        if not (path / "config.json").is_file() or not any((path / n).is_file() for n in CONTROLNET_WEIGHTS):
            raise InpaintKitError(f"--controlnet {path}: not a diffusers ControlNet folder (needs config.json and "
                                  f"{CONTROLNET_WEIGHTS[0]}); pass a train-controlnet output folder or a hub id")
        try:
            return ControlNetModel.from_pretrained(path, local_files_only=True, **kwargs)
        except Exception as e:  # noqa: BLE001 - config/shape errors of many types: one line
            raise InpaintKitError(f"--controlnet {path}: cannot be loaded as a ControlNet ({_one_line(e)})") from e
    if path.exists() or source.startswith((".", "/", "~")) or source.count("/") != 1:
        raise InpaintKitError(f"--controlnet {source}: no such folder (and not a hub id like "
                              "lllyasviel/control_v11p_sd15_inpaint)")
    try:
        return ControlNetModel.from_pretrained(source, local_files_only=True, **kwargs)
    except OSError:
        pass
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise InpaintKitError(f"--controlnet {source}: not in the Hugging Face cache and HF_HUB_OFFLINE is set; "
                              "download it once or pass a local folder")
    try:
        return ControlNetModel.from_pretrained(source, **kwargs)
    except Exception as e:  # noqa: BLE001
        raise InpaintKitError(f"--controlnet {source}: not in the Hugging Face cache and not downloadable "
                              f"({_one_line(e)}); pass a local ControlNet folder") from e


def check_fits(controlnet, unet, vae, source: str) -> None:
    """One-line error when ``controlnet`` was made for another base model (latent channels, block widths,
    cross-attention size) or uses another conditioning than the 3-channel inpaint convention. The three
    arguments are models or their ``config`` dicts (a local folder is checked before its weights load)."""
    c, u, v = (getattr(m, "config", m) for m in (controlnet, unet, vae))
    checks = [
        ("input channels", c["in_channels"], v["latent_channels"]),
        ("block_out_channels", list(c["block_out_channels"]), list(u["block_out_channels"])),
        ("cross_attention_dim", c["cross_attention_dim"], u["cross_attention_dim"]),
    ]
    for what, got, want in checks:
        if got != want:
            raise InpaintKitError(f"--controlnet {source}: its {what} is {got} but this --model needs {want}; it was "
                                  "made for another base model (use a ControlNet for this model's family)")
    if c["conditioning_channels"] != 3:
        raise InpaintKitError(f"--controlnet {source}: takes {c['conditioning_channels']}-channel control images; "
                              f"inpaint-kit feeds the 3-channel {CONDITIONING} convention (masked pixels = -1)")


def _folder_configs(model: str) -> tuple[dict, dict] | None:
    """The UNet and VAE configs of a local diffusers folder, read without loading weights (else None)."""
    try:
        return tuple(json.loads((Path(model) / sub / "config.json").read_text()) for sub in ("unet", "vae"))
    except (OSError, ValueError):
        return None


def _pipeline_class():
    from diffusers import StableDiffusionControlNetInpaintPipeline

    class _Pipeline(StableDiffusionControlNetInpaintPipeline):
        """The diffusers pipeline with a deterministic VAE encoding (the posterior's mode): the stock one
        samples with the first row's generator, which ties every row of a batch to row 0."""

        def _encode_vae_image(self, image, generator):
            z = self.vae.encode(image).latent_dist.mode()
            return self.vae.config.scaling_factor * z

    return _Pipeline


def build_controlnet_pipeline(pipe, controlnet):
    """A ``StableDiffusionControlNetInpaintPipeline`` (row-safe subclass) from a loaded SD pipeline's
    components and a ``ControlNetModel``."""
    return _pipeline_class()(
        vae=pipe.vae, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer, unet=pipe.unet,
        controlnet=controlnet, scheduler=pipe.scheduler, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)


# ----------------------------------------------------------------------------------------------------
# the engine


class ControlNetEngine(RowsMixin):
    """A loaded ControlNet inpainting pipeline implementing :class:`inpaint_kit.engine.Engine`."""

    multiple = 8
    max_batch_latents = 4 * 96 * 96  # as the SD engine: more items are split over several calls

    def __init__(self, pipe, model: str, controlnet: str, scale: float, device: str, dtype: str,
                 scheduler: str = "default", lora: str | None = None, lora_scale: float = 1.0):
        self.pipe = pipe
        self.model, self.controlnet, self.scale = model, controlnet, float(scale)
        self.device, self.dtype, self.scheduler = device, dtype, scheduler
        self.lora, self.lora_scale = lora, lora_scale
        self.skip_noop_cfg = True
        self.unet_evaluations = 0
        self.last_info: dict = {}
        self.hook = pipe.unet.register_forward_pre_hook(self._count)  # .remove() when the pipe outlives us

    def _count(self, module, args):
        self.unet_evaluations += 1

    def describe(self) -> dict:
        """Provenance for output metadata: the SD engine's keys plus the ControlNet and its scale."""
        info = {
            "model": self.model,
            "controlnet": self.controlnet,
            "controlnet_scale": self.scale,
            "controlnet_conditioning": CONDITIONING,
            "unet_in_channels": int(self.pipe.unet.config.in_channels),
            "scheduler": self.scheduler,
            "scheduler_class": type(self.pipe.scheduler).__name__,
            "lora": self.lora,
            "lora_scale": self.lora_scale if self.lora else None,
            "dtype": self.dtype,
            "device": self.device,
        }
        if "cfg_skipped" in self.last_info:
            info["cfg_skipped"] = self.last_info["cfg_skipped"]
        return info

    def initial_latents(self, seeds: Sequence[int], h: int, w: int):
        from .sd import seeded_latents

        return seeded_latents(self.pipe, self.device, seeds, h, w)

    def fill(self, items: Sequence[Canvas], sampling: Sampling, progress: bool = True) -> list[np.ndarray]:
        """Fill every item's mask, as many items per pipeline call as ``max_batch_latents`` allows."""
        h, w = check_items(items, self.multiple)
        f = self.pipe.vae_scale_factor
        per_call = max(1, self.max_batch_latents // ((h // f) * (w // f)))
        out = []
        for i in range(0, len(items), per_call):
            out += self._call(items[i : i + per_call], sampling, progress)
        return out

    def _call(self, items: Sequence[Canvas], sampling: Sampling, progress: bool) -> list[np.ndarray]:
        import torch
        from PIL import Image

        h, w = items[0].image.shape[:2]
        n = len(items)
        blocks = {id(it.mask): block_mask(it.mask, self.pipe.vae_scale_factor) for it in items}
        shared = len({(id(it.image), id(it.mask)) for it in items}) == 1  # rows of one canvas: pass it once
        firsts = items[:1] if shared else items
        images = [Image.fromarray(it.image) for it in firsts]
        masks = [Image.fromarray(blocks[id(it.mask)].astype(np.uint8) * 255) for it in firsts]
        control = torch.from_numpy(np.stack([control_image(it.image, blocks[id(it.mask)]) for it in firsts]))
        latents, generators = self.initial_latents([it.seed for it in items], h, w)
        cfg_skipped = (self.skip_noop_cfg and not sampling.prompt and not sampling.negative_prompt
                       and sampling.guidance > 1.0)
        self.pipe.set_progress_bar_config(disable=not progress, leave=False)
        out = self.pipe(
            # one prompt slot per row (num_images_per_prompt=1): the pipeline then pairs row i with
            # control image i instead of repeating every control image for every row
            prompt=[sampling.prompt] * n,
            negative_prompt=[sampling.negative_prompt] * n if sampling.negative_prompt else None,
            image=images[0] if shared else images,
            mask_image=masks[0] if shared else masks,
            control_image=control,
            height=h,
            width=w,
            strength=1.0,
            num_inference_steps=sampling.steps,
            guidance_scale=1.0 if cfg_skipped else sampling.guidance,
            controlnet_conditioning_scale=self.scale,
            num_images_per_prompt=1,
            generator=generators,
            latents=latents,
            output_type="np",
        ).images  # (n, h, w, 3) float in [0, 1]
        self.last_info = {"cfg_skipped": cfg_skipped}
        return [np.clip(np.round(row * 255), 0, 255).astype(np.uint8) for row in out]


def load_controlnet_engine(
    model: str,
    controlnet: str,
    *,
    scale: float = 1.0,
    device: str | None = None,
    dtype: str = "auto",
    scheduler: str = "default",
    lora: str | None = None,
    lora_scale: float = 1.0,
    cache_dir: str | None = None,
) -> ControlNetEngine:
    """Load ``model`` (hub id, diffusers folder or single checkpoint; 4- or 9-channel UNet) with the
    inpaint ControlNet ``controlnet`` (folder or hub id) as a :class:`ControlNetEngine`."""
    from .sd import SCHEDULERS, _resolve_lora, apply_lora, apply_partial, build_scheduler, load_pipeline

    if scheduler not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
    if not scale >= 0:
        raise InpaintKitError(f"--controlnet_scale {scale}: must be >= 0 (0 = the base model alone)")
    device, dtype_name, torch_dtype = resolve_device_dtype(device, dtype)
    lora_kind = _resolve_lora(lora) if lora else None
    net = load_controlnet(controlnet, torch_dtype=torch_dtype, cache_dir=cache_dir)  # small: checked first
    configs = _folder_configs(model)
    if configs is not None:  # a local folder: refuse a foreign ControlNet before the base model loads
        check_fits(net, *configs, controlnet)
    pipe = load_pipeline(model, torch_dtype=torch_dtype, cache_dir=cache_dir)
    if pipe.unet.config.in_channels not in (4, 9):
        raise InpaintKitError(f"--model {model}: its UNet takes {pipe.unet.config.in_channels} input channels; "
                              "ControlNet inpainting needs an SD 1.5-family model (4 channels, or 9 for inpainting)")
    check_fits(net, pipe.unet, pipe.vae, controlnet)
    if scheduler != "default":
        pipe.scheduler = build_scheduler(scheduler, pipe.scheduler.config)
    pipe.to(device)
    if lora_kind is not None:
        kind, path = lora_kind
        apply_partial(pipe.unet, path, lora_scale) if kind == "partial" else apply_lora(pipe, path, lora_scale)
    cn_pipe = build_controlnet_pipeline(pipe, net.to(device))
    return ControlNetEngine(cn_pipe, model, controlnet, scale, device, dtype_name, scheduler, lora, lora_scale)


def write_random_controlnet(out_dir: str | Path, model: str, seed: int = 0, zero: bool = True) -> Path:
    """Write a ControlNet for base ``model`` (a diffusers folder) with ``ControlNetModel.from_unet``: the
    base UNet's encoder weights, zero convolutions (``zero=True``: it changes nothing yet) or random ones
    drawn from ``seed`` (``zero=False``: it changes the output; for tests and benchmarks)."""
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(Path(model) / "unet", local_files_only=True)
    net = ControlNetModel.from_unet(unet)
    if not zero:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            for name, p in net.named_parameters():
                if "zero_conv" in name or "controlnet_down_blocks" in name or "controlnet_mid_block" in name \
                        or "conv_out" in name:
                    p.normal_(0, 0.05)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:  # complete or not at all: written beside, then renamed into place
        net.save_pretrained(tmp, safe_serialization=True)
        (tmp / "inpaint_kit.json").write_text(json.dumps(
            {"base_model": str(model), "conditioning": CONDITIONING, "random_weights": True, "zero": zero,
             "seed": seed}, indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
