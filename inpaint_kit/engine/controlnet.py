"""ControlNet inpainting: an SD 1.5-family model (4-channel UNet, or a 9-channel inpainting one) steered by
an inpaint ControlNet, through diffusers' ``StableDiffusionControlNetInpaintPipeline``.

The conditioning is the convention of lllyasviel's published ``control_v11p_sd15_inpaint``: a 3-channel
control image, the RGB image in [0, 1] with every pixel to repaint set to -1 (:func:`control_image`).
ControlNets written by ``inpaint-kit train-controlnet`` use the same convention (recorded as
:data:`CONDITIONING` in their ``training_config.json``), so published and home-trained ones load through
the same ``--controlnet`` flag.

:class:`ControlNetEngine` is the SD engine's :class:`~inpaint_kit.engine.sd.PipelineEngine` (batching loop,
counters, provenance, skip-guidance test, loading sequence) with what a ControlNet call adds, so it keeps
every promise of the SD engine (:mod:`inpaint_kit.engine.sd`):

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

from ..errors import InpaintKitError, UsageError
from ..geometry import block_mask
from .base import Canvas, Sampling, one_line
from .options import SDOptions
from .sd import PipelineEngine, load_with

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
            raise InpaintKitError(f"--controlnet {path}: cannot be loaded as a ControlNet ({one_line(e)})") from e
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
                              f"({one_line(e)}); pass a local ControlNet folder") from e


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


class ControlNetEngine(PipelineEngine):
    """A loaded ControlNet inpainting pipeline implementing :class:`inpaint_kit.engine.Engine`."""

    name = "controlnet"

    def __init__(self, pipe, model: str, controlnet: str, scale: float, device: str, dtype: str,
                 scheduler: str = "default", lora: str | None = None, lora_scale: float = 1.0):
        super().__init__(pipe, model, device, dtype, scheduler, lora, lora_scale)
        self.controlnet, self.scale = controlnet, float(scale)

    @classmethod
    def check_unet(cls, model: str, in_channels: int) -> None:
        if in_channels not in (4, 9):
            raise InpaintKitError(f"--model {model}: its UNet takes {in_channels} input channels; ControlNet "
                                  "inpainting needs an SD 1.5-family model (4 channels, or 9 for inpainting)")

    def extra_info(self) -> dict:
        """The ControlNet, its scale and conditioning, and the base UNet's input channels."""
        return {"controlnet": self.controlnet, "controlnet_scale": self.scale, "controlnet_conditioning": CONDITIONING,
                "unet_in_channels": int(self.pipe.unet.config.in_channels)}

    def _call(self, items: Sequence[Canvas], sampling: Sampling, progress: bool) -> list[np.ndarray]:
        """One pipeline call for ``items``: each row brings its own prompt slot, mask, control image and noise."""
        import torch
        from PIL import Image

        n = len(items)
        blocks = {id(it.mask): block_mask(it.mask, self.pipe.vae_scale_factor) for it in items}
        shared = len({(id(it.image), id(it.mask)) for it in items}) == 1  # rows of one canvas: pass it once
        firsts = items[:1] if shared else items
        images = [Image.fromarray(it.image) for it in firsts]
        masks = [Image.fromarray(blocks[id(it.mask)].astype(np.uint8) * 255) for it in firsts]
        control = torch.from_numpy(np.stack([control_image(it.image, blocks[id(it.mask)]) for it in firsts]))
        return self._run(
            sampling, items, progress,
            # one prompt slot per row (num_images_per_prompt=1): the pipeline then pairs row i with
            # control image i instead of repeating every control image for every row
            prompt=[sampling.prompt] * n,
            negative_prompt=[sampling.negative_prompt] * n if sampling.negative_prompt else None,
            image=images[0] if shared else images,
            mask_image=masks[0] if shared else masks,
            control_image=control,
            controlnet_conditioning_scale=self.scale,
            num_images_per_prompt=1,
        )


def load(model: str, *, device: str | None = None, dtype: str = "auto",
         options: SDOptions | None = None) -> ControlNetEngine:
    """Load ``model`` (hub id, diffusers folder or single checkpoint; 4- or 9-channel UNet) with the inpaint
    ControlNet ``options.controlnet`` (folder or hub id) as a :class:`ControlNetEngine` (the registry's
    loader; the SD engine's loading sequence, :func:`~inpaint_kit.engine.sd.load_with`). The ControlNet is
    loaded and, for a local base folder, checked against it before the base model loads."""
    o = options or SDOptions()
    if not o.controlnet:
        raise UsageError("the ControlNet engine needs --controlnet (a ControlNet folder or hub id)")
    if not o.controlnet_scale >= 0:
        raise InpaintKitError(f"--controlnet_scale {o.controlnet_scale}: must be >= 0 (0 = the base model alone)")

    def controlnet_first(torch_dtype):
        net = load_controlnet(o.controlnet, torch_dtype=torch_dtype, cache_dir=o.cache_dir)  # small: checked first
        configs = _folder_configs(model)
        if configs is not None:  # a local folder: refuse a foreign ControlNet before the base model loads
            check_fits(net, *configs, o.controlnet)
        return net

    pipe, device, dtype_name, net = load_with(ControlNetEngine, model, o, device, dtype, controlnet_first,
                                              lambda pipe, net: check_fits(net, pipe.unet, pipe.vae, o.controlnet))
    cn_pipe = build_controlnet_pipeline(pipe, net.to(device))
    return ControlNetEngine(cn_pipe, model, o.controlnet, o.controlnet_scale, device, dtype_name, o.scheduler,
                            o.lora, o.lora_scale)


def load_controlnet_engine(model: str, controlnet: str, *, scale: float = 1.0, device: str | None = None,
                           dtype: str = "auto", scheduler: str = "default", lora: str | None = None,
                           lora_scale: float = 1.0, cache_dir: str | None = None) -> ControlNetEngine:
    """:func:`load` with the options as keywords."""
    options = SDOptions(scheduler=scheduler, lora=lora, lora_scale=lora_scale, cache_dir=cache_dir,
                        controlnet=controlnet, controlnet_scale=scale)
    return load(model, device=device, dtype=dtype, options=options)


def write_random_controlnet(out_dir: str | Path, model: str, seed: int = 0, zero: bool = True) -> Path:
    """Write a ControlNet for base ``model`` (a diffusers folder) with ``ControlNetModel.from_unet``: the
    base UNet's encoder weights, zero convolutions (``zero=True``: it changes nothing yet) or random ones
    drawn from ``seed`` (``zero=False``: it changes the output; for tests and benchmarks)."""
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    from ..images import replace_folder

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
        replace_folder(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
