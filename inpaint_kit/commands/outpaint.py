"""``inpaint-kit outpaint``: extend one image or a whole tree past its borders, in chunks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..outpaint import DIRECTIONS, FILLS, OutpaintConfig  # light (numpy, PIL, tqdm): defaults stated once
from .flags import (add_archive_arguments, add_engine_arguments, add_model_arguments, add_output_arguments,
                    add_output_dir, alias, check_single_or_batch, config_from_args as build, preflight, print_report,
                    sharded)

HELP = "Extend an image (--image) or a tree (--batch_imgs_dir) left/right/up/down with a diffusion model, in chunks."

O = OutpaintConfig(left=1)  # every extension flag's default comes from here


def add_arguments(p: argparse.ArgumentParser) -> None:
    ext = p.add_argument_group("extension (any combination of sides)")
    for d in DIRECTIONS:
        ext.add_argument(f"--{d}", type=int, default=None, metavar="PIXELS", help=f"pixels to add on the {d} side")
    ext.add_argument("--direction", default=None, help="comma list of sides to extend by --pixels, e.g. left,up")
    ext.add_argument("--pixels", type=int, default=None, help="pixels per side for --direction")
    ext.add_argument("--fill", choices=FILLS, default=O.fill,
                     help="how the new area starts: replicated border, blurred border colours, noise, flat grey")
    ext.add_argument("--overlap", type=int, default=O.overlap,
                     help="already-final pixels the model sees beside each new strip")
    ext.add_argument("--max_step", type=int, default=O.max_step, help="largest strip generated per pass (pixels)")
    ext.add_argument("--seam_blend", type=int, default=O.seam_blend,
                     help="new pixels over which the seam is blended into the old ones (old pixels never change)")
    alias(ext, "--mask_blur", dest="seam_blend", type=int)  # its old name (infer's --mask_blur is another thing)
    ext.add_argument("--max_canvas", type=int, default=O.max_canvas, help="refuse canvases with a side larger than this")
    ext.add_argument("--max_megapixels", type=float, default=O.max_megapixels, help="refuse canvases larger than this")

    add_model_arguments(p, mask_flags=False)

    single = p.add_argument_group("single image")
    single.add_argument("--image", help="image file")
    single.add_argument("--output", help="collage path (default <output_dir>/<stem>_outpaint_<sides>.png, e.g. "
                                         "chelsea_outpaint_left256.png)")

    batch = p.add_argument_group("batch")
    batch.add_argument("--batch_imgs_dir", help="folder of images (recursive); every image is extended the same way")
    add_output_dir(batch, "outputs", "output folder (batch: sub-folders mirrored; single image: where the "
                                      "default --output goes)")

    add_output_arguments(p)
    add_archive_arguments(p)
    add_engine_arguments(p)


def sides_from_args(args: argparse.Namespace) -> dict:
    """``--left/--right/--up/--down`` merged with ``--direction ... --pixels N`` (a side given twice is an error)."""
    from ..errors import InpaintKitError

    sides = {d: getattr(args, d) for d in DIRECTIONS}
    if (args.direction is None) != (args.pixels is None):
        raise InpaintKitError("--direction and --pixels go together, e.g. --direction left,up --pixels 256")
    if args.direction is not None:
        for d in (x.strip() for x in args.direction.split(",")):
            if d not in DIRECTIONS:
                raise InpaintKitError(f"--direction {args.direction!r}: {d!r} is not one of {', '.join(DIRECTIONS)}")
            if sides[d] is not None:
                raise InpaintKitError(f"--{d} given twice (also in --direction); give each side once")
            sides[d] = args.pixels
    return sides


def config_from_args(args: argparse.Namespace):
    """The one place argparse values become an :class:`~inpaint_kit.outpaint.OutpaintConfig`."""
    return build(args, OutpaintConfig, **sides_from_args(args))


def run(args: argparse.Namespace) -> int:
    from ..errors import InpaintKitError

    if bool(args.image) == bool(args.batch_imgs_dir):
        raise InpaintKitError("give either --image or --batch_imgs_dir")
    check_single_or_batch(args, bool(args.image))
    cfg = config_from_args(args)
    return run_single(cfg, args) if args.image else run_batch_command(cfg, args)


def run_single(cfg, args) -> int:
    from ..batch import resume_single
    from ..outpaint import default_stem, outpaint_file

    output = Path(args.output) if args.output else Path(args.output_dir) / f"{default_stem(args.image, cfg)}.png"
    preflight(cfg, output=output)
    skip, seeds = resume_single(cfg, output, output.stem, {"image": args.image})
    if skip:
        print(f"{output} exists with the same settings; skipped (pass --overwrite to redo it)", file=sys.stderr)
        return 0
    job, _, written, _ = outpaint_file(cfg, args.image, output, seeds=seeds, progress=args.progress)
    for path in written:
        print(path)
    h, w = job.image.shape[:2]
    print(f"canvas {w}x{h} in {len(job.calls)} model calls; seeds: {' '.join(map(str, job.seeds))}", file=sys.stderr)
    return 0


def run_batch_command(cfg, args) -> int:
    from ..outpaint import run_outpaint_batch

    cfg, shard = sharded(cfg, args)
    preflight(cfg, output_dir=Path(args.output_dir))
    report = run_outpaint_batch(cfg, args.batch_imgs_dir, args.output_dir, progress=args.progress, shard=shard)
    return print_report(report, shard)
