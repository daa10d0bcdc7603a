"""``inpaint-kit tiny-model``: write a random-weight SD-inpainting pipeline for offline runs."""

from __future__ import annotations

from pathlib import Path

HELP = (
    "Write a Stable Diffusion inpainting pipeline with RANDOM weights (offline; for tests, demos and "
    "benchmarks: its images are noise). Load it with --model DIR."
)


def add_arguments(parser) -> None:
    from ..presets import PRESETS  # light module: no torch at import time

    from .flags import add_output_dir, add_overwrite

    add_output_dir(parser, None, "folder to create (diffusers layout, safetensors)", required=True)
    parser.add_argument("--preset", choices=PRESETS, default="tiny",
                        help="architecture: tiny (test-size), small (benchmarks), sd15 / sd2 (the real SD1.5 / "
                             "SD2 inpainting architectures, ~3.5 GB of fp32 weights)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    add_overwrite(parser, "--output_dir (and --controlnet DIR) if it exists")
    parser.add_argument("--base", action="store_true",
                        help="a plain SD pipeline with a 4-channel UNet (an SD 1.5-style base model, for ControlNet "
                             "inpainting) instead of an inpainting one")
    parser.add_argument("--controlnet", default=None, metavar="DIR",
                        help="also write a matching inpaint ControlNet (ControlNetModel.from_unet) to DIR")
    parser.add_argument("--controlnet_random", action="store_true",
                        help="give that ControlNet random instead of zero output convolutions (it then changes the "
                             "output; a fresh one changes nothing)")


def run(args) -> int:

    from ..checks import check_output_dir
    from ..errors import OutputError, UsageError
    from ..presets import write_tiny_model

    target = Path(args.output_dir)
    if target.exists() and not target.is_dir():
        raise OutputError(f"--output_dir {target} is a file; choose a folder path")
    check_output_dir(target.parent, flag=f"--output_dir {target}: its folder")  # before building any weights
    if args.controlnet_random and not args.controlnet:
        raise UsageError("--controlnet_random applies to the ControlNet written with --controlnet DIR; add it")
    if args.controlnet and Path(args.controlnet).exists() and not args.overwrite:
        raise UsageError(f"--controlnet {args.controlnet} already exists; pass --overwrite to replace it")
    out = write_tiny_model(args.output_dir, preset=args.preset, seed=args.seed, overwrite=args.overwrite,
                           base=args.base)
    print(f"wrote random-weight '{args.preset}' {'base' if args.base else 'inpainting'} pipeline (seed {args.seed}) "
          f"to {out}")
    if args.controlnet:
        from ..engine.controlnet import write_random_controlnet

        net = write_random_controlnet(args.controlnet, out, seed=args.seed, zero=not args.controlnet_random)
        print(f"wrote its {'random' if args.controlnet_random else 'fresh (zero-convolution)'} ControlNet to {net}")
    return 0
