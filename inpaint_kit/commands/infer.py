"""``inpaint-kit infer``: restore one image or whole directory trees, writing multi-seed collages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .flags import (D, add_archive_arguments, add_area_arguments, add_engine_arguments, add_model_arguments,
                    add_output_arguments, add_output_dir, add_seam_arguments, check_single_or_batch, config_from_args,
                    preflight, print_report, sharded)

HELP = "Inpaint one image (--image/--mask) or directory trees (--batch_imgs_dir/--batch_masks_dir) into collages."
AUTO = "auto"  # --mask auto / --batch_masks_dir auto: the detected damage is the mask


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)

    single = p.add_argument_group("single image")
    single.add_argument("--image", help="image file")
    single.add_argument("--mask", help="mask file (resized to the image if needed, never losing a marked pixel), or "
                                       "'auto': detect the damage and repair it (docs/detection.md)")
    single.add_argument("--output", help="collage path (default <output_dir>/<stem>_collage.png)")

    batch = p.add_argument_group("batch")
    batch.add_argument("--batch_imgs_dir", help="folder of images (recursive)")
    batch.add_argument("--batch_masks_dir", help="folder of masks paired by file stem (recursive; <stem>_mask also pairs), "
                                                 "or 'auto': detect every image's damage")
    add_output_dir(batch, "outputs", "output folder (batch: sub-folders mirrored; single image: where the "
                                      "default --output goes)")

    area = add_area_arguments(p)
    area.add_argument("--mask_dilate", type=int, default=D.mask_dilate,
                      help="grow the repair region by N pixels at the working scale (damage with a stained halo)")

    add_seam_arguments(p)
    add_detection_arguments(p)
    add_output_arguments(p)
    add_archive_arguments(p)
    add_engine_arguments(p)


def add_detection_arguments(p: argparse.ArgumentParser) -> None:
    """The damage detector of ``--mask auto``, ``--batch_masks_dir auto`` and ``--detect`` (docs/detection.md);
    its options are errors without one of those (None = not given)."""
    g = p.add_argument_group("damage detection (--mask auto, --batch_masks_dir auto, --detect; docs/detection.md)")
    g.add_argument("--detect", action="store_true",
                   help="add the damage a detector finds to the given mask file(s) (union); the mask used is written "
                        "as <stem>_mask.png beside the outputs (white = repaired)")
    g.add_argument("--detect_model", default=None,
                   help="builtin (the shipped detector; the default when detecting), classical (morphological "
                        "baseline) or a train-detect output folder")
    g.add_argument("--detect_threshold", type=float, default=None,
                   help="probability above which a pixel is damage (default: the detector's own)")
    g.add_argument("--detect_min_area", type=int, default=None, help="drop detected specks smaller than N pixels "
                                                                     "(default 0)")
    g.add_argument("--detect_dilate", type=int, default=None, help="grow the detected damage by N pixels (default 0)")


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
    check_single_or_batch(args, bool(single))
    cfg = config_from_args(args, detect=detect_mode(args))
    return run_single(cfg, args) if single else run_batch_command(cfg, args)


def detect_mode(args: argparse.Namespace) -> str | None:
    """``auto`` (``--mask auto`` / ``--batch_masks_dir auto``), ``union`` (``--detect``) or None; one-line
    errors for combinations that would ignore a flag."""
    from ..errors import UsageError

    masks = args.mask if args.image else args.batch_masks_dir
    flag = "--mask" if args.image else "--batch_masks_dir"
    if masks != AUTO:
        return "union" if args.detect else None
    if args.detect:
        raise UsageError(f"--detect adds detected damage to mask files; {flag} auto already repairs only what is "
                         "detected: leave --detect out")
    if args.mask_mode != D.mask_mode:
        raise UsageError(f"--mask_mode {args.mask_mode}: says how mask files mark the repair; {flag} auto reads none: "
                         "leave it out")
    return "auto"


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
    mask = None if cfg.detect == "auto" else args.mask
    skip, seeds = resume_single(cfg, output, stem, {"image": args.image, "mask": mask})
    if skip:
        print(f"{output} exists with the same settings; skipped (pass --overwrite to redo it)", file=sys.stderr)
        return 0
    job, engine = inpaint_file(cfg, args.image, mask, seeds=seeds, progress=args.progress)
    for path in write_job(job, cfg, engine, output, stem=stem)[0]:
        print(path)
    print(f"seeds: {' '.join(map(str, job.seeds))}", file=sys.stderr)
    return 0


def run_batch_command(cfg, args) -> int:
    from ..batch import run_batch

    cfg, shard = sharded(cfg, args)
    preflight(cfg, output_dir=Path(args.output_dir))
    masks = None if cfg.detect == "auto" else args.batch_masks_dir
    report = run_batch(cfg, args.batch_imgs_dir, masks, args.output_dir, progress=args.progress, shard=shard)
    return print_report(report, shard)
