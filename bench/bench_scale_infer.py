"""Scale-out of batch restoration (issue 14): 1 process x 2 threads against 2 processes x 1 thread
(``torchrun --nproc_per_node 2``) on the same batch, measured in one run.

    .venv/bin/python bench/bench_scale_infer.py                                # builtin + small preset
    .venv/bin/python bench/bench_scale_infer.py --markdown docs/benchmarks.md

The batch is ``--images`` copies of the shipped samples (each with its mask) restored by
``inpaint-kit infer`` with ``--rows 1`` (the builtin model, and a random-weight ``small`` SD preset);
each configuration writes into its own fresh folder. Reported: wall seconds for the whole command
(model loading included, as a user sees it), images/s, the speed-up of 2 processes over 1 and the
scaling efficiency (speed-up / 2), and whether both runs wrote the same pixels (they must: a row's seed
never depends on the process). Process start-up and model loading are paid once per process, so
efficiency rises with the batch size.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from markdown_section import write_section  # bench/ is on sys.path when a bench script runs

SECTION = "## Scale-out: batch restoration over processes"
REPO = Path(__file__).resolve().parents[1]


def make_batch(folder: Path, n: int) -> tuple[Path, Path]:
    imgs, masks = folder / "imgs", folder / "masks"
    imgs.mkdir(parents=True)
    masks.mkdir(parents=True)
    names = sorted(p.stem for p in (REPO / "imgs").glob("*.png"))
    for k in range(n):
        name = names[k % len(names)]
        shutil.copy(REPO / "imgs" / f"{name}.png", imgs / f"{k:03d}_{name}.png")
        shutil.copy(REPO / "masks" / f"{name}.png", masks / f"{k:03d}_{name}.png")
    return imgs, masks


def run(procs: int, threads: int, model: str, imgs: Path, masks: Path, out: Path, size: int, steps: int) -> float:
    bin_dir = Path(sys.executable).parent
    args = ["infer", "--model", model, "--batch_imgs_dir", str(imgs), "--batch_masks_dir", str(masks),
            "--output_dir", str(out), "--rows", "1", "--seed", "3", "--size", str(size), "--steps", str(steps),
            "--device", "cpu", "--threads", str(threads), "--save_rows", "--no_progress"]
    if procs == 1:
        cmd = [str(bin_dir / "inpaint-kit"), *args]
    else:
        cmd = [str(bin_dir / "torchrun"), "--standalone", f"--nproc_per_node={procs}", "-m", "inpaint_kit", *args]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def same_pixels(a: Path, b: Path) -> bool:
    from inpaint_kit.images import load_image

    rows_a = sorted(p.relative_to(a) for p in a.rglob("*_row*.png"))
    rows_b = sorted(p.relative_to(b) for p in b.rglob("*_row*.png"))
    return rows_a == rows_b and len(rows_a) > 0 and all(
        np.array_equal(load_image(a / p), load_image(b / p)) for p in rows_a)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=12)
    p.add_argument("--models", default="builtin,small")
    p.add_argument("--markdown", type=Path, default=None)
    args = p.parse_args(argv)
    from inpaint_kit.presets import write_tiny_model

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        imgs, masks = make_batch(tmp / "batch", args.images)
        for name in args.models.split(","):
            model, size, steps = ("builtin", 256, 10) if name == "builtin" else (
                str(write_tiny_model(tmp / name, preset=name, seed=0)), 256, 4)
            times = {}
            for procs, threads in ((1, 2), (2, 1), (1, 1)):
                print(f"{name}: {procs} process(es) x {threads} thread(s) ...", file=sys.stderr, flush=True)
                times[procs, threads] = run(procs, threads, model, imgs, masks, tmp / f"out_{name}_{procs}x{threads}",
                                            size, steps)
            # sharding must not change pixels: 2 processes x 1 thread against 1 process x 1 thread (a different
            # thread count changes float summation order, so 1 x 2 is compared for information only)
            same = same_pixels(tmp / f"out_{name}_1x1", tmp / f"out_{name}_2x1")
            same_threads = same_pixels(tmp / f"out_{name}_1x1", tmp / f"out_{name}_1x2")
            rows.append({"model": name, "t1": times[1, 2], "t2": times[2, 1], "t11": times[1, 1], "same": same,
                         "same_threads": same_threads, "size": size, "steps": steps})
    lines = [
        f"{args.images} images (the three 320-px samples repeated), `--rows 1 --size 256`, `--device cpu`; "
        f"wall time of the whole command (start-up and model loading included); 2 CPU cores. *same pixels*: "
        f"2 processes x 1 thread against 1 process x 1 thread (sharding must not change a pixel); 1 x 2 threads "
        f"sums floats in another order, so its pixels may differ slightly from 1 x 1 (last column, for information).",
        "",
        "| model | steps | 1 proc x 2 threads (s) | 2 procs x 1 thread (s) | 1 proc x 1 thread (s) | images/s 1x2 | images/s 2x1 | "
        "speed-up 2x1 vs 1x2 | efficiency vs 1x1 | same pixels 2x1 = 1x1 | 1x2 = 1x1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s = r["t1"] / r["t2"]
        eff = r["t11"] / (2 * r["t2"])
        lines.append(f"| {r['model']} | {r['steps']} | {r['t1']:.1f} | {r['t2']:.1f} | {r['t11']:.1f} | "
                     f"{args.images / r['t1']:.2f} | {args.images / r['t2']:.2f} | {s:.2f}x | {eff:.0%} | {r['same']} | "
                     f"{r['same_threads']} |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        cmd = "python bench/bench_scale_infer.py " + " ".join(argv if argv is not None else sys.argv[1:])
        write_section(args.markdown, SECTION, f"`{cmd.strip()}`\n\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
