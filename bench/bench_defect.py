"""DefectFill cost, in one run on random-weight presets: (1) training s/step and memory with the attention loss
(cross-attention captured through our processor) vs without it (``--lambda_attn 0``: diffusers' fused
attention, nothing stored); (2) generation s/image with ``--lfs 1`` vs ``--lfs 4``, and how far the kept
candidate is from the good image inside the mask (DSSIM, the LFS fallback metric). Prints markdown tables.

Each training configuration runs in its own child process so that memory numbers do not mix (peak RSS
growth during the timed updates, reset through ``/proc/self/clear_refs`` after a warm-up update).

    python bench/bench_defect.py                           # tiny + small
    python bench/bench_defect.py --presets tiny --steps 3
    python bench/bench_defect.py --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import environment, publish, time_updates  # bench/ is on sys.path when a bench script runs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SIZES = {"tiny": 64, "small": 256, "sd15": 512, "sd2": 512}
SECTION = "## DefectFill: attention-loss cost and Low-Fidelity Selection"
NOTES = (
    "Random-weight pipelines of the presets on the synthetic MVTec-like fixture (`inpaint_kit.train.defect.data."
    "write_fixture`), batch 1, LoRA rank 8 on the UNet attention and the text encoder. One update runs the "
    "defect rows and the object rows of a reference in one UNet call of batch 2. *with attention loss* "
    "captures the token's cross-attention map on every `attn2` layer (explicit softmax, kept for the backward "
    "pass); *without* (`--lambda_attn 0`) uses diffusers' fused `scaled_dot_product_attention` and stores "
    "nothing. s/step is the median wall time of an update, CPU s/step the process CPU time per update; "
    "*peak RSS* is the process's peak resident memory, *train +RSS* its growth during the timed updates after a "
    "warm-up update (without the attention loss the warm-up already allocated everything a step needs, so it "
    "can be 0; with it, the extra is the kept attention probabilities). Generation: s/image of "
    "`inpaint-kit defect` (engine loaded, LoRA applied) with K candidates per image; *DSSIM kept* is the "
    "mean distance inside the mask between the kept candidate and the good image (LFS keeps the largest). "
    "On a shared machine the wall times swing with other jobs; the CPU-time ratio is the steadier measure of "
    "what the attention loss costs. The tiny preset's generation is dominated by per-step overhead, so K "
    "candidates in one batched call cost little more than one there; the small preset shows the UNet work."
)


def child(args) -> None:
    """Train one configuration and print a JSON line of measurements."""
    import torch

    from inpaint_kit.train.defect.config import DefectTrainConfig
    from inpaint_kit.train.defect.trainer import DefectTrainer

    torch.set_num_threads(args.threads)
    cfg = DefectTrainConfig(data=args.data, object_class="bottle", defect_type="crack", model=args.model,
                            output_dir=args.out, size=args.size, steps=args.steps + 1, lora_rank=8,
                            lambda_attn=args.lambda_attn, save_every=10**6, progress=False)
    trainer = DefectTrainer(cfg)
    print(json.dumps({**time_updates(trainer, args.steps), "layers": trainer.captured_layers,
                      "trainable": trainer.trainable_params}))


def bench_generation(model: Path, data: Path, run: Path, out: Path, size: int, steps: int, num: int, lfs: int) -> dict:
    """Generate ``num`` images with ``lfs`` candidates each; s/image (engine load excluded) and mean DSSIM kept."""
    from inpaint_kit.defect.generate import GenerateConfig, generate
    from inpaint_kit.engine.sd import load_sd_engine
    from inpaint_kit.images import read_metadata

    engine = load_sd_engine(str(model), device="cpu", lora=str(run))
    cfg = GenerateConfig(lora=str(run), output_dir=str(out), data=str(data), num=num, steps=steps, lfs=lfs, seed=1,
                         size=size, progress=False)
    t0 = time.perf_counter()
    report = generate(cfg, engine=engine)
    seconds = (time.perf_counter() - t0) / num
    metas = [read_metadata(p) for p in report.written]
    kept = [m["lfs_distances"][m["chosen"]] for m in metas]
    return {"s_per_image": seconds, "dssim_kept": sum(kept) / len(kept), "metric": metas[0]["lfs_metric"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["tiny", "small"])
    p.add_argument("--steps", type=int, default=None, help="timed updates (default 10 for tiny, 3 otherwise)")
    p.add_argument("--gen_steps", type=int, default=None, help="denoising steps (default 20 for tiny, 5 otherwise)")
    p.add_argument("--num", type=int, default=3, help="images generated per LFS setting")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--markdown", type=Path, help="update this benchmark's section of docs/benchmarks.md")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("model", "data", "out"):
        p.add_argument(f"--{name}", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--lambda_attn", type=float, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args)
        return 0

    import torch

    from inpaint_kit.train.defect.config import DefectTrainConfig
    from inpaint_kit.train.defect.data import write_fixture
    from inpaint_kit.train.defect.trainer import train as train_defect
    from inpaint_kit.presets import write_tiny_model

    torch.set_num_threads(args.threads)
    train_rows, gen_rows = [], []
    with tempfile.TemporaryDirectory(prefix="bench_defect_") as tmp:
        tmp = Path(tmp)
        for preset in args.presets:
            size = SIZES[preset]
            model = write_tiny_model(tmp / preset, preset=preset, seed=0)
            data = write_fixture(tmp / f"data_{preset}", size=size, n_defect=3, n_good=args.num)
            steps = args.steps or (10 if preset == "tiny" else 3)
            res = {}
            for lam in (0.05, 0.0):
                cmd = [sys.executable, __file__, "--child", "--model", str(model), "--data", str(data),
                       "--out", str(tmp / f"out_{preset}_{lam}"), "--size", str(size), "--steps", str(steps),
                       "--threads", str(args.threads), "--lambda_attn", str(lam)]
                run = subprocess.run(cmd, capture_output=True, text=True)
                if run.returncode:
                    print(run.stderr[-2000:], file=sys.stderr)
                    return run.returncode
                res[lam] = json.loads(run.stdout.strip().splitlines()[-1])
                print(f"# {preset} lambda_attn {lam}: {res[lam]['s_per_step']:.3f} s/step", file=sys.stderr, flush=True)
            train_rows.append((preset, size, steps, res))
            # one real (1-update) run to generate from: its LoRA is what inference loads
            lora_run = tmp / f"run_{preset}"
            train_defect(DefectTrainConfig(data=str(data), object_class="bottle", defect_type="crack", model=str(model),
                                           output_dir=str(lora_run), size=size, steps=1, lora_rank=8, progress=False))
            gsteps = args.gen_steps or (20 if preset == "tiny" else 5)
            g = {k: bench_generation(model, data, lora_run, tmp / f"gen_{preset}_{k}", size, gsteps, args.num, k)
                 for k in (1, 4)}
            print(f"# {preset} lfs 1: {g[1]['s_per_image']:.3f} s/image, lfs 4: {g[4]['s_per_image']:.3f}",
                  file=sys.stderr, flush=True)
            gen_rows.append((preset, size, gsteps, g))
    mib = 2**20
    t = ["| preset | size | timed updates | s/step with attn loss | s/step without | time ratio | CPU s/step with / without "
         "| CPU ratio | peak RSS with / without (MiB) | train +RSS with / without (MiB) | captured layers |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    for preset, size, steps, r in train_rows:
        a, b = r[0.05], r[0.0]
        t.append(f"| {preset} | {size} | {steps} | {a['s_per_step']:.3f} | {b['s_per_step']:.3f} | "
                 f"{a['s_per_step'] / b['s_per_step']:.2f}x | {a['cpu_s_per_step']:.3f} / {b['cpu_s_per_step']:.3f} | "
                 f"{a['cpu_s_per_step'] / b['cpu_s_per_step']:.2f}x | "
                 f"{a['peak_rss'] / mib:.0f} / {b['peak_rss'] / mib:.0f} | "
                 f"{a['train_rss'] / mib:.0f} / {b['train_rss'] / mib:.0f} | {a['layers']} |")
    gt = ["| preset | size | denoising steps | s/image --lfs 1 | s/image --lfs 4 | time ratio | DSSIM kept lfs 1 | "
          "DSSIM kept lfs 4 | metric |", "|---|---|---|---|---|---|---|---|---|"]
    for preset, size, gsteps, g in gen_rows:
        gt.append(f"| {preset} | {size} | {gsteps} | {g[1]['s_per_image']:.3f} | {g[4]['s_per_image']:.3f} | "
                  f"{g[4]['s_per_image'] / g[1]['s_per_image']:.2f}x | {g[1]['dssim_kept']:.4f} | "
                  f"{g[4]['dssim_kept']:.4f} | {g[1]['metric']} |")
    env = environment(args.threads, f"fp32, {args.num} images per LFS setting")
    publish(args.markdown, "bench_defect.py", argv, SECTION, NOTES, "\n".join(t) + "\n\n" + "\n".join(gt), env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
