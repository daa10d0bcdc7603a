"""``inpaint-kit defect``: paint a defect learned by ``train-defect`` into defect-free images, writing a
synthetic MVTec-layout dataset (images + masks + manifest) or, for one image, a collage of candidates."""

from __future__ import annotations

import argparse

from . import flags

HELP = "Paint a learned defect (train-defect output) into good images: synthetic MVTec-layout data with masks."


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..defect.generate import MASK_SHAPES
    from ..masks import MASK_MODES

    run = p.add_argument_group("the learned defect")
    run.add_argument("--lora", required=True, help="a train-defect output folder (lora_unet.safetensors + training_config.json)")
    run.add_argument("--model", default=None, help="base model (default: the one the run was trained from)")
    run.add_argument("--size", type=int, default=None, help="working size (default: the run's --size)")

    data = p.add_argument_group("dataset mode (MVTec layout out)")
    data.add_argument("--good_dir", help="defect-free images, e.g. <root>/<object>/train/good")
    data.add_argument("--data", help="dataset root: --good_dir defaults to <data>/<object>/train/good")
    data.add_argument("--masks_dir", help="defect masks paired with the good images by stem (else --mask_shapes)")
    data.add_argument("--mask_shapes", choices=MASK_SHAPES, default="random", help="generated mask shapes")
    data.add_argument("--mask_scale", type=float, nargs=2, default=(0.1, 0.3), metavar=("MIN", "MAX"),
                      help="generated masks: extent as a fraction of the image's short side")
    data.add_argument("--on_foreground", action="store_true",
                      help="generated masks: centred on the object and clipped to it (object = pixels unlike the "
                           "border colour, Otsu threshold)")
    data.add_argument("--num", type=int, default=None,
                      help="images to make (good images are cycled); with --masks_dir: at most this many pairs")
    flags.add_output_dir(data, "outputs/defects", "root of the synthetic dataset (<object>/test/<defect>/, "
                                                  "<object>/ground_truth/<defect>/, manifest.jsonl)")
    flags.add_overwrite(data, "items already written (default: skip them, i.e. resume)")

    single = p.add_argument_group("single image")
    single.add_argument("--image", help="one defect-free image")
    single.add_argument("--mask", help="its defect mask (--mask_mode convention)")
    single.add_argument("--output", help="collage path (rows written beside it as <stem>_row<k>.png)")
    single.add_argument("--rows", type=int, default=4, help="candidates in the collage")

    s = p.add_argument_group("sampling")
    s.add_argument("--mask_mode", choices=MASK_MODES, default="white",
                   help="which colour marks the defect in given masks; white by default, unlike other commands: "
                        "MVTec AD's convention, which train-defect's data and this command's output use")
    s.add_argument("--prompt", default=None, help="default: the run's 'A <object> with <token>'")
    s.add_argument("--negative_prompt", default="", help="negative prompt")
    s.add_argument("--steps", type=int, default=50, help="denoising steps")
    s.add_argument("--guidance", type=float, default=7.5, help="classifier-free guidance scale")
    s.add_argument("--lfs", type=int, default=1,
                   help="Low-Fidelity Selection: K candidates per item, keep the one farthest from the good image "
                        "inside the mask (LPIPS if available, else DSSIM; recorded)")
    s.add_argument("--seed", type=int, default=0, help="base seed of every mask and candidate; 0 = random (recorded)")
    flags.add_device(s, dtype=True)
    flags.add_progress(s)
    flags.add_shard(s)
    flags.add_area_arguments(p, default="full", why=" (default full here: the LoRA learned the defect on whole "
                                                    "images scaled to --size; crops paints large images at native "
                                                    "resolution)")
    flags.add_archive_arguments(p, record=False, note="; dataset mode: PNG always (the MVTec layout's NNN.png), "
                                                      "with the good image's depth, mode, profile and dpi")
    # Infer's record does not fit a dataset: a one-line error saying why (run()), not an unknown flag.
    for name in ("--record", "--mark_fills"):
        p.add_argument(name, action="store_true", help=argparse.SUPPRESS)


def _check_mode(args) -> str:
    from ..errors import InpaintKitError

    single = args.image is not None or args.mask is not None
    if single:
        if not (args.image and args.mask):
            raise InpaintKitError("single mode needs both --image and --mask")
        given = [f for f in ("good_dir", "data", "masks_dir", "num") if getattr(args, f) is not None]
        given += ["on_foreground"] if args.on_foreground else []
        if given:
            raise InpaintKitError(f"--{given[0]} is for dataset mode; it does not apply with --image/--mask")
        if args.lfs != 1:
            raise InpaintKitError("--lfs applies to dataset mode; with --image the collage shows every candidate "
                                  "(--rows) and records their LFS distances")
        return "single"
    if args.output is not None or args.rows != 4:
        raise InpaintKitError("--output/--rows are for single mode (--image/--mask); dataset mode writes into --output_dir")
    return "dataset"


def run(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    from ..defect.generate import GenerateConfig, generate, paint_single
    from ..errors import InpaintKitError

    if not args.verbose:
        for name in ("accelerate", "diffusers", "transformers"):
            logging.getLogger(name).setLevel(logging.ERROR)
    if args.record or args.mark_fills:
        raise InpaintKitError(f"--{'record' if args.record else 'mark_fills'} is infer's and outpaint's record of a "
                              "restoration; defect's record is its manifest.jsonl and each image's metadata (good "
                              "image, mask, seeds, LFS), and MVTec folders hold only images and masks")
    mode = _check_mode(args)
    cfg = GenerateConfig(lora=args.lora, output_dir=args.output_dir, good_dir=args.good_dir, data=args.data,
                         masks_dir=args.masks_dir, mask_mode=args.mask_mode, mask_shapes=args.mask_shapes,
                         mask_scale=tuple(args.mask_scale), on_foreground=args.on_foreground, num=args.num, model=args.model, size=args.size,
                         prompt=args.prompt, negative_prompt=args.negative_prompt, steps=args.steps,
                         guidance=args.guidance, lfs=args.lfs, seed=args.seed, area=args.area, padding=args.padding,
                         large_windows=args.large_windows, output_format=args.output_format,
                         colour_management=args.colour_management, overwrite=args.overwrite,
                         device=args.device, dtype=args.dtype, progress=args.progress)
    if mode == "single":
        if args.shard:
            raise InpaintKitError("--shard splits a dataset run (--data / --good_dir); a single image is one job")
        if args.rows < 1:
            raise InpaintKitError(f"--rows {args.rows}: must be at least 1")
        out = args.output or str(Path("outputs") / f"{Path(args.image).stem}_defect_collage.png")
        path = paint_single(cfg, args.image, args.mask, args.rows, out)
        print(f"wrote {path}")
        return 0
    from .flags import print_report
    from ..shard import current, device_for

    shard = current(args.shard, cfg.device)
    cfg.device = device_for(shard, cfg.device)
    report = generate(cfg, shard=shard)
    print_report(report, shard)
    if not shard.is_main:
        return report.exit_code
    print(f"dataset: {Path(cfg.output_dir) / cfg.run['object_class']} (seed {cfg.seed})")
    return report.exit_code
