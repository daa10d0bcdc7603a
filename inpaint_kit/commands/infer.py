"""``inpaint-kit infer``: restore one image or whole directory trees, writing multi-seed collages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "Inpaint one image (--image/--mask) or directory trees (--batch_imgs_dir/--batch_masks_dir) into collages."

from ..engine.sd import SCHEDULERS  # light: the module imports torch/diffusers only inside functions
from ..geometry import AREAS, LARGE
from ..inpaint import InferConfig  # light (numpy, PIL): the defaults below are the config's, stated once
from ..masks import MASK_MODES
from .flags import add_device, add_output_dir, add_overwrite, add_progress, add_shard


D = InferConfig()  # every flag's default comes from here


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
    single.add_argument("--output", help="collage path (default <output_dir>/<stem>_collage.png)")

    batch = p.add_argument_group("batch")
    batch.add_argument("--batch_imgs_dir", help="folder of images (recursive)")
    batch.add_argument("--batch_masks_dir", help="folder of masks paired by file stem (recursive; <stem>_mask also pairs)")
    add_output_dir(batch, "outputs", "output folder (batch: sub-folders mirrored; single image: where the "
                                      "default --output goes)")

    area = p.add_argument_group("where the model works (large scans)")
    area.add_argument("--area", choices=AREAS, default=D.area,
                      help="full: the whole image scaled to --size; crops: windows around the damage at native "
                           "resolution; auto: crops when the image's long side exceeds --size, else full")
    area.add_argument("--padding", type=int, default=D.padding, help="crops: context pixels kept around the damage")
    area.add_argument("--large_windows", choices=LARGE, default=D.large_windows,
                      help="crops: a window longer than --size is cut into overlapping native-resolution tiles, "
                           "or scaled down to --size")
    area.add_argument("--mask_dilate", type=int, default=D.mask_dilate,
                      help="grow the repair region by N pixels at the working scale (damage with a stained halo)")

    add_seam_arguments(p)
    add_output_arguments(p)
    add_ddpm_arguments(p)


def add_seam_arguments(p: argparse.ArgumentParser) -> None:
    """Seams and thin damage (docs/cracks.md): which filler takes which damage, and how a fill meets its
    surroundings (inside the mask only). The --thin_fill choices are spelled out (no torch import)."""
    from ..seams import BLENDS, COLOUR_MATCHES

    g = p.add_argument_group("seams and thin damage (inside the mask only; docs/cracks.md)")
    g.add_argument("--blend", choices=BLENDS, default=D.blend,
                   help="correct the fill's mismatch with its surroundings along the mask edge: feather (a band "
                        "inside the edge), laplacian (multi-band: broad offsets far in, fine steps near the edge), "
                        "poisson (the fill's gradients, the original's edge values), or none")
    g.add_argument("--colour_match", choices=COLOUR_MATCHES, default=D.colour_match,
                   help="local: correct each region's colour by the offsets of the known pixels around it "
                        "(spatially varying, not one global shift)")
    g.add_argument("--thin_width", type=float, default=D.thin_width,
                   help="damage components at most this many pixels wide (largest inscribed circle) go to the "
                        "thin filler instead of --model; 0 = everything to --model")
    g.add_argument("--thin_fill", choices=("auto", "model", "telea", "ns", "builtin"), default=D.thin_fill,
                   help="the thin filler: auto (a small network refining OpenCV's Navier-Stokes fill, one pass, "
                        "deterministic), model (--model itself), telea / ns (OpenCV), builtin (the builtin "
                        "model's sampler, e.g. beside an SD --model)")
    g.add_argument("--thin_model", default=None,
                   help="a train-thinfill model folder for --thin_fill auto (default: the shipped one)")


def add_model_arguments(p: argparse.ArgumentParser, mask_flags: bool = True) -> None:
    """Model and sampling flags shared by ``infer`` and ``outpaint`` (``mask_flags``: --mask_mode, --mask_blur)."""
    core = p.add_argument_group("model and sampling")
    core.add_argument("--model", default=D.model,
                      help="hub id, local diffusers folder, single .safetensors/.ckpt file, 'builtin', or a trained DDPM folder")
    core.add_argument("--size", type=int, default=D.size, help="long side of the working canvas (sides rounded to multiples of 8)")
    core.add_argument("--steps", type=int, default=D.steps, help="denoising steps")
    core.add_argument("--guidance", type=float, default=D.guidance, help="classifier-free guidance scale (skipped when both prompts are empty)")
    core.add_argument("--prompt", default=D.prompt, help="text prompt (SD models)")
    core.add_argument("--negative_prompt", default=D.negative_prompt, help="negative prompt (SD models)")
    if mask_flags:
        core.add_argument("--mask_mode", choices=MASK_MODES, default=D.mask_mode, help="which mask colour marks the region to repair")
        core.add_argument("--mask_blur", type=int, default=D.mask_blur, help="feather the seam over N pixels just outside the mask")
    core.add_argument("--rows", type=int, default=D.rows, help="collage rows, one seed each")
    core.add_argument("--seed", type=int, default=D.seed, help="row i uses seed+i; 0 = random seeds (recorded in the outputs)")
    core.add_argument("--scheduler", choices=SCHEDULERS, default=D.scheduler, help="sampler for SD models")
    core.add_argument("--lora", default=None, help="LoRA folder/file (lora_unet.safetensors) or unet_partial_tuned.safetensors")
    core.add_argument("--lora_scale", type=float, default=D.lora_scale, help="LoRA strength (0 = base model)")
    core.add_argument("--cache_dir", default=None, help="Hugging Face cache folder for hub ids")
    add_device(core, dtype=True, dtype_default=D.dtype)
    add_limits(core)


def add_limits(group) -> None:
    """--max_work_megapixels and --max_image_megapixels (checked before any model loads)."""
    group.add_argument("--max_work_megapixels", type=float, default=D.max_work_megapixels,
                       help="refuse a --size whose square working canvas is larger (4.2 MP = 2048x2048); "
                            "crops mode works at native resolution in windows of at most --size")
    group.add_argument("--max_image_megapixels", type=float, default=D.max_image_megapixels,
                       help="refuse input images larger than this, before decoding them")


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    """Collage and resume flags shared by ``infer`` and ``outpaint``."""
    out = p.add_argument_group("output")
    out.add_argument("--collage_spacing_h", type=int, default=D.collage_spacing_h, help="pixels between tiles")
    out.add_argument("--collage_spacing_v", type=int, default=D.collage_spacing_v, help="pixels between rows")
    out.add_argument("--save_rows", action="store_true", help="also write each row as <stem>_row<i>_seed<seed>.png")
    add_overwrite(out, "existing outputs (default: skip those made with the same settings, so runs resume; "
                       "report those made with other settings)")
    add_progress(out)
    add_shard(p.add_argument_group("several processes (batch)"))


def add_ddpm_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of the from-scratch DDPM engine (collected into a :class:`~inpaint_kit.engine.options.DDPMOptions`)."""
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


def ddpm_options(args: argparse.Namespace):
    """The DDPM engine's options given on the command line (None = the model's default)."""
    from ..engine.options import DDPM_FLAGS, DDPMOptions

    return DDPMOptions(**{k: getattr(args, k) for k in DDPM_FLAGS if hasattr(args, k)})


def config_from_args(args: argparse.Namespace, config_class=None, **extra):
    """The one place argparse values become an :class:`InferConfig` (or ``config_class``): every field
    with a flag of the same name, plus ``extra``; validated (values, engine flags, limits)."""
    from dataclasses import fields

    from ..inpaint import InferConfig

    config_class = config_class or InferConfig
    values = {f.name: getattr(args, f.name) for f in fields(config_class)
              if f.name not in ("ddpm", *extra) and hasattr(args, f.name)}
    return config_class(**values, ddpm=ddpm_options(args), **extra).validate()


def preflight(cfg, output: Path | None = None, output_dir: Path | None = None) -> None:
    """Everything checkable before a model loads, beyond ``cfg.validate()``: the device exists and the
    output location can be written (one line, exit 2, no model loaded)."""
    from ..checks import check_output_dir, check_output_file
    from ..engine import check_device

    check_device(cfg.device)
    if cfg.ddpm.save_intermediates:
        check_output_dir(cfg.ddpm.save_intermediates, flag="--save_intermediates")
    if output is not None:
        check_output_file(output)
    if output_dir is not None:
        check_output_dir(output_dir)


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
    if batch and args.output:
        raise InpaintKitError("--output names one file (single image); a batch writes into --output_dir")
    if single and args.shard:
        raise InpaintKitError("--shard splits a batch (--batch_imgs_dir); a single image is one job")
    cfg = config_from_args(args)
    return run_single(cfg, args) if single else run_batch_command(cfg, args)


def run_single(cfg, args) -> int:
    from ..batch import resume_single
    from ..inpaint import inpaint_file, write_job
    from ..shard import launched_world

    if launched_world()[0] > 0:  # several processes launched for one image: the first one does it
        print(f"rank {launched_world()[0]}: a single image is done by rank 0", file=sys.stderr)
        return 0

    output = Path(args.output) if args.output else Path(args.output_dir) / f"{Path(args.image).stem}_collage.png"
    preflight(cfg, output=output)
    stem = Path(args.image).stem
    skip, seeds = resume_single(cfg, output, stem)
    if skip:
        print(f"{output} exists with the same settings; skipped (pass --overwrite to redo it)", file=sys.stderr)
        return 0
    job, engine = inpaint_file(cfg, args.image, args.mask, seeds=seeds, progress=args.progress)
    for path in write_job(job, cfg, engine, output, stem=stem)[0]:
        print(path)
    print(f"seeds: {' '.join(map(str, job.seeds))}", file=sys.stderr)
    return 0


def run_batch_command(cfg, args) -> int:
    from ..batch import run_batch

    cfg, shard = sharded(cfg, args)
    preflight(cfg, output_dir=Path(args.output_dir))
    report = run_batch(cfg, args.batch_imgs_dir, args.batch_masks_dir, args.output_dir, progress=args.progress,
                       shard=shard)
    return print_report(report, shard)


def sharded(cfg, args):
    """``(cfg, shard)``: this process's :class:`~inpaint_kit.shard.Shard` (``--shard`` and the launcher's
    ranks) and the config with the process's own device when several were launched and --device is unset."""
    from dataclasses import replace

    from ..shard import current, device_for, parse_shard

    parse_shard(args.shard)  # a malformed --shard fails before processes connect
    shard = current(args.shard, cfg.device)
    return replace(cfg, device=device_for(shard, cfg.device)), shard


def print_report(report, shard) -> int:
    """The batch summary, printed once for processes launched together (rank 0 has everyone's)."""
    if shard.is_main:
        head = f"[{shard.describe()}] " if shard.active else ""
        print(head + report.summary(), file=sys.stderr)
    return report.exit_code
