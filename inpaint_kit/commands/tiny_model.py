"""``inpaint-kit tiny-model``: write a random-weight SD-inpainting pipeline for offline runs."""

from __future__ import annotations

HELP = (
    "Write a Stable Diffusion inpainting pipeline with RANDOM weights (offline; for tests, demos and "
    "benchmarks: its images are noise). Load it with --model DIR."
)


def add_arguments(parser) -> None:
    from ..presets import PRESETS  # light module: no torch at import time

    from .flags import add_output_dir

    add_output_dir(parser, None, "folder to create (diffusers layout, safetensors)", required=True)
    parser.add_argument("--preset", choices=PRESETS, default="tiny",
                        help="architecture: tiny (test-size), small (benchmarks), sd15 / sd2 (the real SD1.5 / "
                             "SD2 inpainting architectures, ~3.5 GB of fp32 weights)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    parser.add_argument("--overwrite", action="store_true", help="replace --output_dir if it exists")


def run(args) -> int:
    from pathlib import Path

    from ..checks import check_output_dir
    from ..errors import OutputError
    from ..presets import write_tiny_model

    target = Path(args.output_dir)
    if target.exists() and not target.is_dir():
        raise OutputError(f"--output_dir {target} is a file; choose a folder path")
    check_output_dir(target.parent, flag=f"--output_dir {target}: its folder")  # before building any weights
    out = write_tiny_model(args.output_dir, preset=args.preset, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote random-weight '{args.preset}' pipeline (seed {args.seed}) to {out}")
    return 0
