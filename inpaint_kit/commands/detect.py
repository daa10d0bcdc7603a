"""``inpaint-kit detect``: find scratches, cracks, dust and losses automatically and write repair masks
that ``infer`` reads (one image, or a whole tree that ``infer --batch_masks_dir`` pairs by stem)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import flags

HELP = "Detect damage (scratches, cracks, dust, losses) at native resolution and write repair masks for infer."


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..detect.config import DetectConfig
    from ..detect.detector import DTYPES, TILE
    from ..masks import MASK_MODES

    d = DetectConfig()
    m = p.add_argument_group("detector")
    m.add_argument("--model", default=d.model,
                   help="builtin (shipped network), classical (morphological baseline) or a train-detect output folder")
    m.add_argument("--threshold", type=float, default=None,
                   help="probability above which a pixel is damage (default: the model's, chosen on its validation "
                        "split; classical: 0.5 = its robust threshold)")
    m.add_argument("--min_area", type=int, default=d.min_area, help="drop detected specks smaller than N pixels")
    m.add_argument("--dilate", type=int, default=d.dilate, help="grow the written mask by N pixels")
    m.add_argument("--tile", type=int, default=TILE,
                   help="tile side at native resolution (memory; results blend seamlessly across tiles)")
    m.add_argument("--tile_overlap", dest="overlap", type=int, default=d.overlap, help="overlap of neighbouring tiles")
    m.add_argument("--max_image_megapixels", type=float, default=d.max_image_megapixels,
                   help="refuse input images larger than this, before decoding them")
    flags.add_device(m)
    m.add_argument("--dtype", choices=DTYPES, default=d.dtype,
                   help="the network's arithmetic: auto = bf16 where the CPU/GPU computes it natively (about 2x "
                        "faster on CPUs with AVX512-BF16/AMX), else fp32")

    single = p.add_argument_group("single image")
    single.add_argument("--image", help="image file")
    single.add_argument("--output", help="mask path (default <output_dir>/<stem>_mask.png)")

    batch = p.add_argument_group("batch")
    batch.add_argument("--batch_imgs_dir", help="folder of images (recursive); masks mirror the tree as <stem>_mask.png")
    flags.add_output_dir(batch, "outputs", "output folder (batch: sub-folders mirrored; single image: where the "
                                           "default --output goes)")

    out = p.add_argument_group("output")
    out.add_argument("--mask_mode", choices=MASK_MODES, default=d.mask_mode,
                     help="written masks: black = damage black on white (what infer reads by default), white = the "
                          "reverse")
    out.add_argument("--save_prob", nargs="?", const="", default=None, metavar="DIR",
                     help="also write the probability map as a 16-bit grey PNG <stem>_prob.png: bare = beside the "
                          "mask, or into DIR (tree mirrored; keeps them out of the folder infer pairs)")
    out.add_argument("--preview", nargs="?", const="", default=None, metavar="DIR",
                     help="also write <stem>_preview.png, the image with the damage tinted red: bare = beside the "
                          "mask, or into DIR")
    flags.add_overwrite(out, "existing masks (default: skip those made with the same settings, so runs resume; "
                             "report those made with other settings)")
    flags.add_progress(out)
    flags.add_shard(p.add_argument_group("several processes (batch)"))


def config_from_args(args: argparse.Namespace):
    """The one place argparse values become a :class:`~inpaint_kit.detect.config.DetectConfig` (validated)."""
    from dataclasses import fields

    from ..detect.config import DetectConfig

    return DetectConfig(**{f.name: getattr(args, f.name) for f in fields(DetectConfig) if hasattr(args, f.name)}).validate()


def run(args: argparse.Namespace) -> int:
    from ..errors import InpaintKitError

    if bool(args.image) == bool(args.batch_imgs_dir):
        raise InpaintKitError("give either --image (one file) or --batch_imgs_dir (a folder)")
    flags.check_single_or_batch(args, bool(args.image))
    cfg = config_from_args(args)
    return run_single(cfg, args) if args.image else run_batch(cfg, args)


def run_single(cfg, args) -> int:
    """One image: preflight (outputs, device), resume check, detect, write."""
    from ..checks import check_output_file
    from ..detect.job import detect_file, side_paths
    from ..shard import launched_world

    if launched_world()[0] > 0:  # several processes launched for one image: the first one does it
        return 0
    output = Path(args.output) if args.output else Path(args.output_dir) / f"{Path(args.image).stem}_mask.png"
    check_output_file(output)
    for flag, path in side_paths(cfg, output).items():
        check_output_file(path, flag="--save_prob" if flag == "prob" else "--preview")
    _check_device(cfg)
    written, _ = detect_file(cfg, args.image, output, progress=args.progress)
    if written is None:
        print(f"{output} exists with the same settings; skipped (pass --overwrite to redo it)", file=sys.stderr)
        return 0
    for path in written:
        print(path)
    return 0


def run_batch(cfg, args) -> int:
    """A tree: preflight, this process's shard, the batch loop, one report."""
    from dataclasses import replace

    from ..checks import check_output_dir
    from ..detect.job import run_detect_batch
    from ..shard import current, device_for, parse_shard

    parse_shard(args.shard)  # a malformed --shard fails before processes connect
    check_output_dir(args.output_dir)
    for flag, folder in (("--save_prob", cfg.save_prob), ("--preview", cfg.preview)):
        if folder:
            check_output_dir(folder, flag=flag)
    shard = current(args.shard, cfg.device if cfg.model != "classical" else "cpu")
    if cfg.model != "classical":
        cfg = replace(cfg, device=device_for(shard, cfg.device))
    _check_device(cfg)
    report = run_detect_batch(cfg, args.batch_imgs_dir, args.output_dir, progress=args.progress, shard=shard)
    if shard.launched:  # the report is gathered; without this, gloo's threads sometimes abort the exit (classical)
        from ..shard import partial_state

        partial_state().destroy_process_group()
    if shard.is_main:
        head = f"[{shard.describe()}] " if shard.active else ""
        print(head + report.summary(), file=sys.stderr)
    return report.exit_code


def _check_device(cfg) -> None:
    """The device exists (one line, before any model loads); the classical detector needs none."""
    if cfg.model != "classical":
        from ..engine import check_device

        check_device(cfg.device)
