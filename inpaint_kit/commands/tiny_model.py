"""``inpaint-kit tiny-model``: write a random-weight SD-inpainting pipeline for offline runs."""

from __future__ import annotations

HELP = (
    "Write a Stable Diffusion inpainting pipeline with RANDOM weights (offline; for tests, demos and "
    "benchmarks: its images are noise). Load it with --model DIR."
)


def add_arguments(parser) -> None:
    from ..presets import PRESETS  # light module: no torch at import time

    parser.add_argument("--out", required=True, help="folder to create (diffusers layout, safetensors)")
    parser.add_argument("--preset", choices=PRESETS, default="tiny",
                        help="architecture: tiny (test-size), small (benchmarks), sd15 / sd2 (the real SD1.5 / "
                             "SD2 inpainting architectures, ~3.5 GB of fp32 weights)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run(args) -> int:
    from ..presets import write_tiny_model

    out = write_tiny_model(args.out, preset=args.preset, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote random-weight '{args.preset}' pipeline (seed {args.seed}) to {out}")
    return 0
