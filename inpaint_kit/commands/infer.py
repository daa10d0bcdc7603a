"""``inpaint-kit infer``: restore one image or whole directory trees, writing multi-seed collages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "Inpaint one image (--image/--mask) or directory trees (--batch_imgs_dir/--batch_masks_dir) into collages."

from ..engine.sd import SCHEDULERS  # light: the module imports torch/diffusers only inside functions


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    cn = p.add_argument_group("ControlNet inpainting (SD 1.5-family models)")
    cn.add_argument("--controlnet", default=None,
                    help="inpaint ControlNet: a train-controlnet output folder or a hub id (e.g. "
                         "lllyasviel/control_v11p_sd15_inpaint); --model is then an SD 1.5-family model")
    cn.add_argument("--controlnet_scale", "--control_scale", type=float, default=1.0,
                    help="ControlNet strength (0 = the base model alone)")

    single = p.add_argument_group("single image")
    single.add_argument("--image", help="image file")
    single.add_argument("--mask", help="mask file (resized to the image if needed, never losing a marked pixel)")
    single.add_argument("--output", help="collage path (default outputs/<stem>_collage.png)")

    batch = p.add_argument_group("batch")
    batch.add_argument("--batch_imgs_dir", help="folder of images (recursive)")
    batch.add_argument("--batch_masks_dir", help="folder of masks paired by file stem (recursive; <stem>_mask also pairs)")
    batch.add_argument("--output_dir", default="outputs", help="batch output folder (sub-folders mirrored)")

    area = p.add_argument_group("where the model works (large scans)")
    area.add_argument("--area", choices=("auto", "full", "crops"), default="auto",
                      help="full: the whole image scaled to --size; crops: windows around the damage at native "
                           "resolution; auto: crops when the image's long side exceeds --size, else full")
    area.add_argument("--padding", type=int, default=64, help="crops: context pixels kept around the damage")
    area.add_argument("--large_windows", choices=("tile", "scale"), default="tile",
                      help="crops: a window longer than --size is cut into overlapping native-resolution tiles, "
                           "or scaled down to --size")
    area.add_argument("--mask_dilate", type=int, default=0,
                      help="grow the repair region by N pixels at the working scale (damage with a stained halo)")

    add_output_arguments(p)
    add_ddpm_arguments(p)


def add_model_arguments(p: argparse.ArgumentParser, mask_flags: bool = True) -> None:
    """Model and sampling flags shared by ``infer`` and ``outpaint`` (``mask_flags``: --mask_mode, --mask_blur)."""
    from ..engine import DEFAULT_MODEL

    core = p.add_argument_group("model and sampling")
    core.add_argument("--model", default=DEFAULT_MODEL,
                      help="hub id, local diffusers folder, single .safetensors/.ckpt file, 'builtin', or a trained DDPM folder")
    core.add_argument("--size", type=int, default=768, help="long side of the working canvas (sides rounded to multiples of 8)")
    core.add_argument("--steps", type=int, default=30, help="denoising steps")
    core.add_argument("--guidance", type=float, default=5.0, help="classifier-free guidance scale (skipped when both prompts are empty)")
    core.add_argument("--prompt", default="", help="text prompt (SD models)")
    core.add_argument("--negative_prompt", default="", help="negative prompt (SD models)")
    if mask_flags:
        core.add_argument("--mask_mode", choices=("black", "white"), default="black", help="which mask colour marks the region to repair")
        core.add_argument("--mask_blur", type=int, default=0, help="feather the seam over N pixels just outside the mask")
    core.add_argument("--rows", type=int, default=4, help="collage rows, one seed each")
    core.add_argument("--seed", type=int, default=0, help="row i uses seed+i; 0 = random seeds (recorded in the outputs)")
    core.add_argument("--scheduler", choices=SCHEDULERS, default="default", help="sampler for SD models")
    core.add_argument("--lora", default=None, help="LoRA folder/file (lora_unet.safetensors) or unet_partial_tuned.safetensors")
    core.add_argument("--lora_scale", type=float, default=1.0, help="LoRA strength (0 = base model)")
    core.add_argument("--cache_dir", default=None, help="Hugging Face cache folder for hub ids")
    core.add_argument("--device", default=None, help="cuda, cuda:1, cpu, ... (default: cuda if available)")
    core.add_argument("--dtype", choices=("auto", "fp32", "fp16", "bf16"), default="auto", help="auto = fp16 on CUDA, fp32 on CPU")
    core.add_argument("--threads", type=int, default=None,
                      help="torch CPU threads (default: torch's choice; 1 can be faster on a busy machine)")


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    """Collage and resume flags shared by ``infer`` and ``outpaint``."""
    out = p.add_argument_group("output")
    out.add_argument("--collage_spacing_h", type=int, default=20, help="pixels between tiles")
    out.add_argument("--collage_spacing_v", type=int, default=20, help="pixels between rows")
    out.add_argument("--save_rows", action="store_true", help="also write each row as <stem>_row<i>_seed<seed>.png")
    out.add_argument("--overwrite", action="store_true", help="redo outputs that already exist (default: skip them, so runs resume)")


def add_ddpm_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of the from-scratch DDPM engine (collected into ``ddpm_options``)."""
    ddpm = p.add_argument_group("builtin / DDPM models only")
    add_ddpm_start_arguments(ddpm)
    ddpm.add_argument("--jump_length", type=int, default=None, help="RePaint jump length")
    ddpm.add_argument("--jump_n_sample", type=int, default=None, help="RePaint resamplings per jump")
    ddpm.add_argument("--mask_soften", type=float, default=None, help="Gaussian sigma softening the mask edge while sampling")
    ddpm.add_argument("--save_intermediates", default=None, help="folder for the canvas every few steps")


def add_ddpm_start_arguments(group) -> None:
    """--sampler, --init and --strength (``infer``, ``outpaint`` and ``eval``); None = the model's default.
    The choices are spelled out here so that ``--help`` needs no torch import."""
    group.add_argument("--sampler", choices=("ddim", "ddpm", "repaint"), default=None, help="DDPM sampler (default: the model's)")
    group.add_argument("--init", choices=("noise", "telea", "ns"), default=None,
                       help="start from pure noise, or from OpenCV's telea / ns fill noised to --strength (default: the model's)")
    group.add_argument("--strength", type=float, default=None,
                       help="noise level (0-1] the --init fill is taken to; lower keeps more of it (default: the model's)")


DDPM_FLAGS = ("sampler", "init", "strength", "jump_length", "jump_n_sample", "mask_soften", "save_intermediates")


def config_from_args(args: argparse.Namespace):
    """The one place argparse values become an :class:`InferConfig`."""
    from ..inpaint import InferConfig

    fields = {k: getattr(args, k) for k in (
        "model", "size", "steps", "guidance", "prompt", "negative_prompt", "mask_mode", "rows", "seed",
        "collage_spacing_h", "collage_spacing_v", "mask_blur", "lora", "lora_scale", "cache_dir", "scheduler",
        "device", "dtype", "save_rows", "overwrite", "area", "padding", "large_windows", "mask_dilate",
        "controlnet", "controlnet_scale")}
    ddpm_options = {k: getattr(args, k) for k in DDPM_FLAGS if getattr(args, k) is not None}
    return InferConfig(**fields, ddpm_options=ddpm_options).validate()


def run(args: argparse.Namespace) -> int:
    from ..errors import InpaintKitError

    single = args.image or args.mask
    batch = args.batch_imgs_dir or args.batch_masks_dir
    if bool(single) == bool(batch):
        raise InpaintKitError("give either --image and --mask, or --batch_imgs_dir and --batch_masks_dir")
    if single and not (args.image and args.mask):
        raise InpaintKitError("--image and --mask go together; give both")
    if batch and not (args.batch_imgs_dir and args.batch_masks_dir):
        raise InpaintKitError("--batch_imgs_dir and --batch_masks_dir go together; give both")
    cfg = config_from_args(args)
    return run_single(cfg, args) if single else run_batch_command(cfg, args)


def run_single(cfg, args) -> int:
    from ..inpaint import inpaint_file, write_job

    output = Path(args.output) if args.output else Path("outputs") / f"{Path(args.image).stem}_collage.png"
    if output.exists() and not cfg.overwrite:
        print(f"{output} exists; skipped (pass --overwrite to redo it)", file=sys.stderr)
        return 0
    job, engine = inpaint_file(cfg, args.image, args.mask)
    for path in write_job(job, cfg, engine, output, stem=Path(args.image).stem)[0]:
        print(path)
    print(f"seeds: {' '.join(map(str, job.seeds))}", file=sys.stderr)
    return 0


def run_batch_command(cfg, args) -> int:
    from ..batch import run_batch

    report = run_batch(cfg, args.batch_imgs_dir, args.batch_masks_dir, args.output_dir)
    print(report.summary(), file=sys.stderr)
    return report.exit_code
