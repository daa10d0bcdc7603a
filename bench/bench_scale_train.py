"""Training on 1 vs 2 processes: s/step, samples/s and scaling efficiency of ``train-ddpm`` (``small``
preset) and ``train-lora`` (``tiny`` preset) under ``torchrun`` on this machine's CPUs, in one run.

Each row is one ``torchrun --nproc_per_node P`` launch of tests/distributed_driver.py (the driver of the
distributed test: the real trainers, ``--device cpu``, gloo) with ``T`` torch threads per process and
``--batch B`` per process (global batch P x B). *s/step* is the median wall time of one update after the
first (data, forward, backward, gradient all-reduce, AdamW); *samples/s* = global batch / s/step;
*scaling efficiency* = samples/s / (P x samples/s of 1 process x 1 thread); *vs 1x2* compares the
same two cores used as 2 processes x 1 thread or 1 process x 2 threads.

    python bench/bench_scale_train.py                          # prints the table
    python bench/bench_scale_train.py --steps 6 --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from markdown_section import write_section  # bench/ is on sys.path when a bench script runs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DRIVER = ROOT / "tests" / "distributed_driver.py"
SECTION = "## Training on several processes (torchrun, CPU)"
LAYOUTS = [(1, 1), (1, 2), (2, 1)]  # (processes, threads per process)
EXPECTATION = (
    "What to expect elsewhere (not measurable here: no GPU, 2 cores). On a CPU the processes share the "
    "cores, memory bandwidth and caches, so 2 processes x 1 thread can at best match 1 process x 2 threads; "
    "they win where one process cannot keep two threads busy (small convolutions, Python-side data "
    "preparation) and lose the gloo all-reduce of the trainable weights every update. On N GPUs each "
    "process has its own device and its own data preparation; what they share is one all-reduce of the "
    "gradients per update (NCCL, overlapped with the backward pass by DDP). Throughput then grows close to "
    "N x for updates that take much longer than that all-reduce: a LoRA (a few MB of gradients) or the "
    "7 M-parameter DDPM at batch 16 and above, at 64 px or more. It falls short of N x when an update is "
    "tiny (the tiny presets), when the data loading of each process cannot keep up, or across machines "
    "on a slow network (the all-reduce crosses it every update; --accum N cuts it N-fold).")


def make_data(root: Path) -> dict[str, Path]:
    """Random images: 6 of 96x96 for train-ddpm, 4 of 64x64 for train-lora (imgs/, random masks)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "ddpm").mkdir(parents=True)
    (root / "lora" / "imgs").mkdir(parents=True)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(root / "ddpm" / f"d{i}.png")
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(root / "lora" / "imgs" / f"l{i}.png")
    return {"ddpm": root / "ddpm", "lora": root / "lora"}


def configs(data: dict[str, Path], model: Path, steps: int) -> dict[str, dict]:
    common = dict(steps=steps, save_every=10_000, seed=0, progress=False, device="cpu")
    return {
        "train-ddpm small 64 px, --batch 4": dict(trainer="ddpm", config=dict(
            data=str(data["ddpm"]), preset="small", size=64, batch=4, log_every=0, **common)),
        "train-lora tiny 64 px, --batch 2": dict(trainer="lora", config=dict(
            data=str(data["lora"]), model=str(model), size=64, batch=2, rank=4, mask_source="random", **common)),
    }


def launch(processes: int, threads: int, phase: dict, work: Path) -> dict:
    """One torchrun launch; returns rank 0's report plus the slowest rank's median s/step."""
    out = work / f"run_{processes}x{threads}_{phase['trainer']}"
    report = work / f"report_{processes}x{threads}_{phase['trainer']}"
    report.mkdir()
    plan = {"report": str(report), "threads": threads,
            "phases": [{"trainer": phase["trainer"], "config": {**phase["config"], "output_dir": str(out)}}]}
    (work / "plan.json").write_text(json.dumps(plan))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
           str(DRIVER), str(work / "plan.json")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stdout[-2000:] + proc.stderr[-4000:])
    ranks = [json.loads((report / f"0_rank{r}.json").read_text()) for r in range(processes)]
    per_rank = [statistics.median(r["step_seconds"][1:]) for r in ranks]
    return {"s_step": max(per_rank), "global_batch": ranks[0]["global_batch"], "threads": ranks[0]["threads"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=6, help="updates per launch (the first is not timed)")
    ap.add_argument("--markdown", default=None, help="also write the table into this markdown file's section")
    args = ap.parse_args()

    from inpaint_kit.presets import write_tiny_model

    rows, load = [], [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = write_tiny_model(work / "tiny_model", preset="tiny", seed=0)
        plans = configs(make_data(work / "data"), model, args.steps)
        for label, phase in plans.items():
            measured = {}
            for p, t in LAYOUTS:
                measured[(p, t)] = m = launch(p, t, phase, work)
                print(f"{label}: {p} process(es) x {t} thread(s): {m['s_step']:.3f} s/step", flush=True)
            base = measured[(1, 1)]["global_batch"] / measured[(1, 1)]["s_step"]
            two_threads = measured[(1, 2)]["global_batch"] / measured[(1, 2)]["s_step"]
            for (p, t), m in measured.items():
                sps = m["global_batch"] / m["s_step"]
                rows.append((label, f"{p} x {t}", m["global_batch"], f"{m['s_step']:.3f}", f"{sps:.1f}",
                             f"{sps / (p * base):.2f}" if t == 1 else "-", f"{sps / two_threads:.2f}"))
    load.append(os.getloadavg()[0])
    head = ("| trainer | processes x threads | global batch | s/step | samples/s | scaling efficiency | vs 1x2 |\n"
            "|---|---|---|---|---|---|---|")
    table = "\n".join([head] + ["| " + " | ".join(map(str, r)) + " |" for r in rows])
    print(table)
    if args.markdown:
        cmd = f"python bench/bench_scale_train.py --steps {args.steps} --markdown {args.markdown}"
        note = (f"Measured on this {os.cpu_count()}-core machine while it was busy with other agents' jobs (load "
                f"average {load[0]:.1f} at the start, {load[-1]:.1f} at the end), so absolute times are noisy and "
                "every row competes with those jobs for the same cores; the ratios in one run are the comparable "
                "numbers. " + __doc__.split("\n\n")[1].replace("\n", " ").replace("``", "`")
                + "\n\n" + EXPECTATION)
        write_section(Path(args.markdown), SECTION, f"`{cmd}`\n\n{note}\n\n{table}\n")


if __name__ == "__main__":
    main()
