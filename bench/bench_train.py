"""Fine-tuning cost: steps/s, peak memory and trainable parameters of LoRA vs ``--train attn`` on the
``tiny`` and ``small`` presets (random weights), in one run. Prints a markdown table.

Each configuration trains in its own child process so that memory numbers do not mix. Speed is the
median wall time per update and the process CPU time per update (with one thread, the CPU time is what
an idle machine's wall time would be; the wall time suffers from other jobs on a shared box). Memory is the
Linux peak resident set size (``VmHWM``): ``peak RSS`` for the whole process, and ``train +RSS`` for the
growth during training alone (the peak is reset through ``/proc/self/clear_refs`` once the model is
loaded and measured against the RSS at that moment: activations, gradients, optimizer state).

    python bench/bench_train.py                       # tiny + small, lora + attn
    python bench/bench_train.py --presets tiny --steps 5
    python bench/bench_train.py --markdown docs/benchmarks.md  # also update the Training section there
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from measure import environment, publish, time_updates  # bench/ is on sys.path when a bench script runs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SIZES = {"tiny": 64, "small": 256, "sd15": 512, "sd2": 512}
SECTION = "## Training: LoRA vs --train attn"
NOTES = (
    "Random-weight pipelines of the presets (the cost does not depend on the weights), `--mask_source random`, "
    "batch 1, AdamW. *trainable params* are what the optimizer updates: LoRA rank-16 adapters on the UNet "
    "attention projections (`to_q/to_k/to_v/to_out.0`) vs those projections themselves (`--train attn`); "
    "*% of UNet* is relative to the base UNet. *s/step* is the median wall time of one update (VAE encode "
    "of image and masked image, text encoder, UNet forward + backward, optimizer step); *CPU s/step* is the "
    "process CPU time per update, which is what an idle machine's wall time would be with one thread. "
    "*peak RSS* is the process's peak resident memory (Linux `VmHWM`), *train +RSS* its growth during the "
    "timed updates alone (the peak is reset via `/proc/self/clear_refs` once the model is loaded): "
    "gradients, AdamW state and activations."
)


def make_data(root: Path, size: int, n: int = 4) -> Path:
    """``n`` random images of ``size`` px with a damage mask each."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "imgs").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / "imgs" / f"b{i}.png")
        m = np.full((size, size), 255, np.uint8)
        m[size // 4 : size // 2, size // 3 : size // 2] = 0
        Image.fromarray(m).save(root / "masks" / f"b{i}.png")
    return root


def child(args) -> None:
    """Train one configuration and print a JSON line of measurements."""
    import torch

    from inpaint_kit.train.lora.config import LoraTrainConfig
    from inpaint_kit.train.lora.trainer import LoraTrainer

    torch.set_num_threads(args.threads)
    cfg = LoraTrainConfig(data=args.data, model=args.model, output_dir=args.out, size=args.size, steps=args.steps + 1,
                          rank=args.rank, train=[args.mode], mask_source="random", save_every=10**6,
                          progress=False, gradient_checkpointing=args.gradient_checkpointing, lr=1e-4)
    trainer = LoraTrainer(cfg)
    print(json.dumps({**time_updates(trainer, args.steps), "trainable": trainer.trainable_params,
                      "unet_params": sum(p.numel() for n, p in trainer.unet.named_parameters() if "lora_" not in n)}))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["tiny", "small"])
    p.add_argument("--modes", nargs="+", default=["lora", "attn"])
    p.add_argument("--steps", type=int, default=None, help="timed updates (default 10 for tiny, 5 otherwise)")
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core machine)")
    p.add_argument("--gradient_checkpointing", action="store_true")
    p.add_argument("--markdown", type=Path, help="update the Training section of this file (docs/benchmarks.md)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("model", "data", "out", "mode"):
        p.add_argument(f"--{name}", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args)
        return 0

    from inpaint_kit.presets import write_tiny_model

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        tmp = Path(tmp)
        for preset in args.presets:
            size = SIZES[preset]
            model = write_tiny_model(tmp / preset, preset=preset, seed=0)
            data = make_data(tmp / f"data_{preset}", size)
            steps = args.steps or (10 if preset == "tiny" else 5)
            for mode in args.modes:
                cmd = [sys.executable, __file__, "--child", "--model", str(model), "--data", str(data),
                       "--out", str(tmp / f"out_{preset}_{mode}"), "--mode", mode, "--size", str(size),
                       "--steps", str(steps), "--rank", str(args.rank), "--threads", str(args.threads)]
                if args.gradient_checkpointing:
                    cmd.append("--gradient_checkpointing")
                run = subprocess.run(cmd, capture_output=True, text=True)
                if run.returncode:
                    print(run.stderr[-2000:], file=sys.stderr)
                    return run.returncode
                r = json.loads(run.stdout.strip().splitlines()[-1])
                rows.append((preset, size, mode, steps, r))
                print(f"# {preset} {mode}: {r['s_per_step']:.3f} s/step", file=sys.stderr, flush=True)
    mib = 2**20
    lines = [
        "| preset | size | mode | timed updates | trainable params | % of UNet | steps/s | s/step (median) | CPU s/step "
        "| peak RSS (MiB) | train +RSS (MiB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for preset, size, mode, steps, r in rows:
        lines.append(f"| {preset} | {size} | {mode} | {steps} | {r['trainable']:,} | "
                     f"{100 * r['trainable'] / r['unet_params']:.2f} | {r['steps_per_s']:.2f} | {r['s_per_step']:.3f} | "
                     f"{r['cpu_s_per_step']:.3f} | {r['peak_rss'] / mib:.0f} | {r['train_rss'] / mib:.0f} |")
    env = environment(args.threads, f"fp32{', gradient checkpointing' if args.gradient_checkpointing else ''}, "
                                    f"rank {args.rank}")
    publish(args.markdown, "bench_train.py", argv, SECTION, NOTES, "\n".join(lines), env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
