"""CPU speed: ``--dtype bf16`` against ``fp32`` end to end (issue 14), measured in one run.

    .venv/bin/python bench/bench_dtype.py                                  # builtin + small preset
    .venv/bin/python bench/bench_dtype.py --presets small,sd2 --markdown docs/benchmarks.md

For each model the same image, mask, seed and settings are restored once in fp32 and once in bf16
through the Python API (the CLI's code path; warm-up call first, then the timed call); the table gives
seconds per image, the bf16 speed-up, and how far the bf16 result is from the fp32 one inside the mask
(max and mean absolute difference on 0-255, PSNR). Outside the mask both are the input, bit for bit.
The builtin model is real (trained) weights; the SD presets are random weights in the real
architecture (``sd2`` = the SD2-inpainting UNet, 866 M parameters), so their pixel differences measure
numerical drift, not visible quality. Whether the CPU has native bf16 (``avx512_bf16`` / ``amx_bf16``
in /proc/cpuinfo) is printed with the table: without it, bf16 is emulated and slower.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from markdown_section import write_section  # bench/ is on sys.path when a bench script runs

SECTION = "## CPU: --dtype bf16 vs fp32"
REPO = Path(__file__).resolve().parents[1]


def cpu_bf16() -> str:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    found = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return ", ".join(found) or "none (emulated)"


def run(model: str, size: int, steps: int, dtype: str, image, mask, seed: int):
    from inpaint_kit import InferConfig, load_engine, restore

    cfg = InferConfig(model=model, size=size, steps=steps, rows=1, seed=seed, dtype=dtype, device="cpu")
    engine = load_engine(cfg)
    restore(image, mask, cfg, engine=engine)  # warm-up (allocator, kernels)
    t = time.perf_counter()
    out = restore(image, mask, cfg, engine=engine)
    return time.perf_counter() - t, np.asarray(out.images[0])


def compare(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> dict:
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))[mask]
    mse = float((d.astype(np.float64) ** 2).mean())
    return {"max": int(d.max()), "mean": float(d.mean()), "psnr": 99.0 if mse == 0 else 10 * np.log10(255**2 / mse),
            "outside_equal": bool(np.array_equal(a[~mask], b[~mask]))}


def cases(presets: list[str], tmp: Path, steps: int, sd_size: int):
    """``(label, model folder or 'builtin', size, steps)``: builtin on a shipped photo, each SD preset on it."""
    from inpaint_kit.presets import write_tiny_model

    yield "builtin (trained)", "builtin", 256, max(steps, 10)
    for preset in presets:
        yield f"{preset} preset (random weights)", str(write_tiny_model(tmp / preset, preset=preset, seed=0)), sd_size, steps


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default="small", help="SD presets, comma-separated (tiny, small, sd15, sd2)")
    p.add_argument("--steps", type=int, default=4, help="denoising steps for the SD presets (builtin: at least 10)")
    p.add_argument("--sd_size", type=int, default=512)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--markdown", type=Path, default=None)
    args = p.parse_args(argv)
    import torch

    from inpaint_kit.api import to_mask, to_rgb

    if args.threads:
        torch.set_num_threads(args.threads)
    image = to_rgb(REPO / "imgs/coffee.png")
    mask = to_mask(REPO / "masks/coffee.png", "black", image.shape[:2])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, model, size, steps in cases([x for x in args.presets.split(",") if x], Path(tmp), args.steps, args.sd_size):
            print(f"{label}: fp32 ...", file=sys.stderr, flush=True)
            t32, a = run(model, size, steps, "fp32", image, mask, 7)
            print(f"{label}: bf16 ...", file=sys.stderr, flush=True)
            t16, b = run(model, size, steps, "bf16", image, mask, 7)
            rows.append({"label": label, "size": size, "steps": steps, "fp32": t32, "bf16": t16, **compare(a, b, mask)})
    table = [
        f"CPU bf16 support: {cpu_bf16()}; torch threads: {torch.get_num_threads()}; image imgs/coffee.png "
        f"(320x213) with masks/coffee.png, one row, seed 7.",
        "",
        "| model | --size | steps | fp32 s/image | bf16 s/image | bf16 speed-up | max diff | mean diff | PSNR bf16 vs fp32 | outside mask equal |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        table.append(f"| {r['label']} | {r['size']} | {r['steps']} | {r['fp32']:.2f} | {r['bf16']:.2f} | "
                     f"{r['fp32'] / r['bf16']:.2f}x | {r['max']} | {r['mean']:.2f} | {r['psnr']:.1f} dB | {r['outside_equal']} |")
    text = "\n".join(table)
    print(text)
    if args.markdown:
        cmd = "python bench/bench_dtype.py " + " ".join(argv if argv is not None else sys.argv[1:])
        write_section(args.markdown, SECTION, f"`{cmd.strip()}`\n\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
