"""``inpaint-kit infer``: restore one image or whole directory trees, writing multi-seed collages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .flags import (D, add_archive_arguments, add_area_arguments, add_engine_arguments, add_model_arguments,
                    add_output_arguments, add_output_dir, config_from_args, preflight, print_report, sharded)

HELP = "Inpaint one image (--image/--mask) or directory trees (--batch_imgs_dir/--batch_masks_dir) into collages."


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)

    single = p.add_argument_group("single image")
    single.add_argument("--image", help="image file")
    single.add_argument("--mask", help="mask file (resized to the image if needed, never losing a marked pixel)")
    single.add_argument("--output", help="collage path (default <output_dir>/<stem>_collage.png)")

    batch = p.add_argument_group("batch")
    batch.add_argument("--batch_imgs_dir", help="folder of images (recursive)")
    batch.add_argument("--batch_masks_dir", help="folder of masks paired by file stem (recursive; <stem>_mask also pairs)")
    add_output_dir(batch, "outputs", "output folder (batch: sub-folders mirrored; single image: where the "
                                      "default --output goes)")

    area = add_area_arguments(p)
    area.add_argument("--mask_dilate", type=int, default=D.mask_dilate,
                      help="grow the repair region by N pixels at the working scale (damage with a stained halo)")

    add_output_arguments(p)
    add_archive_arguments(p)
    add_engine_arguments(p)


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
