"""ControlNet inpainting cost, in one run on random-weight presets: training (s/step, trainable parameters,
peak memory) of ``train-controlnet`` vs ``train-lora`` (LoRA) vs ``train-lora --train attn``, and inference
(s/image) of a plain SD base inpainting by latent blending (img2img-style) vs the same base with the inpaint
ControlNet vs an SD-inpainting (9-channel) UNet, with masked error and seam numbers.

Random weights make every picture noise: the quality columns only show that the numbers are measured the same
way for all three; they say nothing about which method fills better. The cost columns are real (cost does not
depend on the weights).

Each training configuration runs in its own child process (memory numbers do not mix), measured exactly as
``bench/bench_train.py`` measures LoRA (median wall time, CPU time per update, Linux peak RSS ``VmHWM`` and its
growth during the timed updates).

    python bench/bench_controlnet.py                          # tiny preset
    python bench/bench_controlnet.py --presets tiny small --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_train import SIZES, make_data  # bench/ is on sys.path when a bench script runs
from measure import environment, publish, time_updates

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECTION = "## ControlNet inpainting: cost vs LoRA / --train attn, and vs plain SD and an inpainting UNet"
NOTES = (
    "Random-weight pipelines of the presets: a 4-channel SD base (`tiny-model --base`) for ControlNet and plain "
    "SD, the 9-channel inpainting pipeline of the same preset for LoRA / `--train attn` / the inpainting UNet. "
    "Training: batch 1, AdamW, generated masks; *trainable params* are what the optimizer updates (the whole "
    "ControlNet: a copy of the UNet encoder + zero convolutions + the conditioning embedding, vs rank-16 LoRA "
    "adapters vs the UNet attention projections). *s/step* is the median wall time of an update, *CPU s/step* "
    "the process CPU time per update (one thread: what an idle machine's wall time would be); *peak RSS* / "
    "*train +RSS* as in the Training section (+RSS is measured after a warm-up update, so the optimizer state "
    "is in *peak RSS*, not in +RSS). Inference: one 1-row call per repeat at the preset's size, "
    "20 % centre hole, empty prompt (guidance skipped), *overhead* = CPU s/image relative to plain SD on the "
    "same base (one thread; the wall time suffers from other jobs). *masked MAE* is the mean absolute error "
    "(0-255) inside the hole against the original image, *seam* "
    "the mean absolute jump across the hole's border minus the original's: both measured on the sample photo "
    "`imgs/chelsea.png`, and **meaningless for quality here: the weights are random** (real ControlNet seams "
    "need the real `control_v11p_sd15_inpaint` or a trained one)."
)


def _threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def child_controlnet(args) -> None:
    """Train the ControlNet configuration and print a JSON line of measurements (as bench_train's child)."""
    import torch

    from inpaint_kit.train.controlnet.trainer import ControlNetTrainer
    from inpaint_kit.train.controlnet.config import ControlNetTrainConfig

    _threads(args.threads)
    cfg = ControlNetTrainConfig(data=args.data, model=args.model, output_dir=args.out, size=args.size,
                                steps=args.steps + 1, save_every=10**6, progress=False, device="cpu",
                                gradient_checkpointing=args.gradient_checkpointing)
    trainer = ControlNetTrainer(cfg)
    print(json.dumps({**time_updates(trainer, args.steps), "trainable": trainer.trainable_params,
                      "unet_params": sum(p.numel() for p in trainer.unet.parameters())}))
    del torch


def train_rows(tmp: Path, preset: str, base: Path, inpainting: Path, args) -> list[tuple]:
    size = SIZES[preset]
    data = make_data(tmp / f"data_{preset}", size)
    steps = args.steps or (6 if preset == "tiny" else 3)
    rows = []
    for mode in ("controlnet", "lora", "attn"):
        common = ["--data", str(data), "--out", str(tmp / f"out_{preset}_{mode}"), "--size", str(size),
                  "--steps", str(steps), "--threads", str(args.threads)]
        if args.gradient_checkpointing:
            common.append("--gradient_checkpointing")
        if mode == "controlnet":
            cmd = [sys.executable, __file__, "--child", "--model", str(base), *common]
        else:
            cmd = [sys.executable, str(Path(__file__).with_name("bench_train.py")), "--child", "--model",
                   str(inpainting), "--mode", mode, "--rank", "16", *common]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode:
            raise SystemExit(run.stderr[-3000:])
        r = json.loads(run.stdout.strip().splitlines()[-1])
        rows.append((preset, size, mode, steps, r))
        print(f"# train {preset} {mode}: {r['s_per_step']:.3f} s/step", file=sys.stderr, flush=True)
    return rows


def quality(image, mask, result) -> tuple[float, float]:
    """(masked MAE, seam): mean |result - image| inside ``mask``, and the mean |jump| between horizontally or
    vertically adjacent pixels across the mask border in ``result`` minus the same in ``image`` (0-255)."""
    import numpy as np

    img, res = image.astype(np.float64), result.astype(np.float64)
    mae = float(np.abs(res - img)[mask].mean())
    jumps = []
    for axis in (0, 1):
        a = np.take(mask, range(mask.shape[axis] - 1), axis=axis)
        b = np.take(mask, range(1, mask.shape[axis]), axis=axis)
        border = a != b
        for arr, sign in ((res, 1), (img, -1)):
            d = np.abs(np.diff(arr, axis=axis)).mean(-1)[border]
            jumps.append(sign * float(d.mean()))
    return mae, (jumps[0] + jumps[1] + jumps[2] + jumps[3]) / 2


def infer_rows(preset: str, base: Path, inpainting: Path, controlnet: Path, args) -> list[tuple]:
    """s/image and quality of the three ways to inpaint with an SD 1.5-family model (one process, same canvas)."""
    import numpy as np
    import torch
    from diffusers import StableDiffusionInpaintPipeline
    from PIL import Image

    from inpaint_kit.engine import Sampling, load_engine
    from inpaint_kit.engine.options import SDOptions
    from inpaint_kit.geometry import block_mask, paste_back, resize_image

    _threads(args.threads)
    size = SIZES[preset]
    image = resize_image(np.asarray(Image.open(ROOT / "imgs" / "chelsea.png").convert("RGB")), (size, size))
    mask = np.zeros((size, size), bool)
    q = size // 2 - int(size * 0.2 ** 0.5) // 2
    mask[q : size - q, q : size - q] = True  # ~20 % centre hole
    sampling = Sampling(steps=args.infer_steps)

    plain = StableDiffusionInpaintPipeline.from_pretrained(base, local_files_only=True, safety_checker=None,
                                                           requires_safety_checker=False)
    plain.set_progress_bar_config(disable=True)
    blocks = block_mask(mask, 8)

    def run_plain(seed):  # 4-channel UNet: the pipeline's latent blending (img2img-style inpainting)
        g = torch.Generator("cpu").manual_seed(seed)
        latents = torch.randn((1, 4, size // 8, size // 8), generator=g)
        out = plain(prompt="", image=Image.fromarray(image), mask_image=Image.fromarray(blocks.astype(np.uint8) * 255),
                    height=size, width=size, num_inference_steps=args.infer_steps, guidance_scale=1.0, latents=latents,
                    generator=g, output_type="np").images[0]
        return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)

    cn = load_engine(str(base), device="cpu", options=SDOptions(controlnet=str(controlnet)))
    inp = load_engine(str(inpainting), device="cpu")
    ways = [("plain SD (latent blending)", run_plain),
            ("SD + inpaint ControlNet", lambda s: cn.inpaint(image, mask, [s], sampling, progress=False)[0]),
            ("SD-inpainting UNet (9 ch)", lambda s: inp.inpaint(image, mask, [s], sampling, progress=False)[0])]
    rows = []
    for name, fn in ways:
        fn(1)  # warm-up
        times, cpus, maes, seams = [], [], [], []
        for r in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn(100 + r)
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            mae, seam = quality(image, mask, paste_back(image, out, mask))
            maes.append(mae)
            seams.append(seam)
        times.sort()
        rows.append((preset, size, name, times[len(times) // 2], sum(cpus) / len(cpus), sum(maes) / len(maes),
                     sum(seams) / len(seams)))
        print(f"# infer {preset} {name}: {times[len(times) // 2]:.3f} s/image", file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["tiny"], choices=("tiny", "small", "sd15"))
    p.add_argument("--steps", type=int, default=None, help="timed training updates (default 6 tiny, 3 otherwise)")
    p.add_argument("--infer_steps", type=int, default=4, help="denoising steps per image")
    p.add_argument("--repeats", type=int, default=3, help="timed images per inference way")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core machine)")
    p.add_argument("--gradient_checkpointing", action="store_true")
    p.add_argument("--markdown", type=Path, help="update this benchmark's section of docs/benchmarks.md")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("model", "data", "out"):
        p.add_argument(f"--{name}", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child_controlnet(args)
        return 0

    from inpaint_kit.engine.controlnet import write_random_controlnet
    from inpaint_kit.presets import write_tiny_model

    train, infer = [], []
    with tempfile.TemporaryDirectory(prefix="bench_controlnet_") as tmp:
        tmp = Path(tmp)
        for preset in args.presets:
            base = write_tiny_model(tmp / f"{preset}_base", preset=preset, seed=0, base=True)
            inpainting = write_tiny_model(tmp / f"{preset}_inpaint", preset=preset, seed=0)
            controlnet = write_random_controlnet(tmp / f"{preset}_cn", base, seed=1, zero=False)
            train += train_rows(tmp, preset, base, inpainting, args)
            infer += infer_rows(preset, base, inpainting, controlnet, args)
    mib = 2**20
    lines = ["| preset | size | trains | timed updates | trainable params | % of base UNet | s/step (median) | "
             "CPU s/step | peak RSS (MiB) | train +RSS (MiB) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for preset, size, mode, steps, r in train:
        label = {"controlnet": "ControlNet", "lora": "LoRA r16", "attn": "--train attn"}[mode]
        lines.append(f"| {preset} | {size} | {label} | {steps} | {r['trainable']:,} | "
                     f"{100 * r['trainable'] / r['unet_params']:.1f} | {r['s_per_step']:.3f} | "
                     f"{r['cpu_s_per_step']:.3f} | {r['peak_rss'] / mib:.0f} | {r['train_rss'] / mib:.0f} |")
    plain = {pr: c for pr, _, name, _, c, _, _ in infer if name.startswith("plain")}
    lines += ["", "| preset | size | inpainting with | s/image (median) | CPU s/image | CPU overhead vs plain SD | "
              "masked MAE | seam |", "|---|---|---|---|---|---|---|---|"]
    for preset, size, name, t, c, mae, seam in infer:
        lines.append(f"| {preset} | {size} | {name} | {t:.3f} | {c:.3f} | {c / plain[preset]:.2f}x | {mae:.1f} | "
                     f"{seam:+.1f} |")
    env = environment(args.threads, f"fp32{', gradient checkpointing' if args.gradient_checkpointing else ''}, "
                                    f"{args.infer_steps} denoising steps")
    publish(args.markdown, "bench_controlnet.py", argv, SECTION, NOTES, "\n".join(lines), env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
