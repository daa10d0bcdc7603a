"""The honest quality benchmark (issue 22): every method through the real infer path, side by side in one run,
with confidence intervals, and a quality-against-time plot.

    .venv/bin/python bench/bench_eval.py --seeds 3 --markdown docs/benchmarks.md --plot docs/quality_vs_time.png

Photos: scikit-image's coffee, chelsea and rocket (held out from every shipped model's training), long side
256. Masks: LaMa's protocol (``lama_thin``, ``lama_medium``, ``lama_thick``: LaMa's own generator settings,
see ``inpaint_kit/maskgen.py``), branching thin ``cracks``, and the package's ``thin`` and ``thick``;
``--seeds`` masks per photo and kind. Methods run by ``inpaint-kit eval`` (``inpaint_kit.evaluate``): the
bare OpenCV baselines, and the builtin model and OpenCV engines through ``inpaint_array`` with the default
settings and each new mode switched off in turn. Seconds per image are measured in the same run with
methods taking turns on each image (a loaded machine slows them alike: compare ratios, not bare times).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from markdown_section import write_section  # bench/ is on sys.path when a bench script runs

SECTION = "## Quality against time: builtin, OpenCV and each new mode (eval through infer)"
KINDS = "thin,cracks,lama_thin,lama_medium,lama_thick,thick"
METHODS = {  # method spec -> label in the plot
    "telea": "OpenCV Telea",
    "ns": "OpenCV Navier-Stokes",
    "ns+blend=laplacian": "NS + thin filler + laplacian (--model ns)",
    "builtin": "builtin, defaults (thin filler, laplacian)",
    "builtin+blend=none": "builtin, thin filler, no blend",
    "builtin+thin_width=0": "builtin on all damage, laplacian",
    "builtin+thin_width=0+blend=none": "builtin on all damage, no blend (before issue 22)",
}


def held_out(folder: Path) -> Path:
    from skimage import data

    src = Path(data.__file__).parent
    for name in ("coffee.png", "chelsea.png", "rocket.jpg"):
        shutil.copy(src / name, folder / name)
    return folder


def plot(scores, path: Path, labels: dict) -> None:
    """One panel per mask kind: masked PSNR minus OpenCV Navier-Stokes' on the same fills (paired 95 %
    interval) against seconds per image (log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(dict.fromkeys(s.kind for s in scores))
    cols = min(3, len(kinds))
    rows = -(-len(kinds) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.0 * rows), squeeze=False)
    methods = list(dict.fromkeys(s.method for s in scores))
    markers = "osD^v<>ph*"
    for ax, kind in zip(axes.flat, kinds):
        for j, method in enumerate(methods):
            s = next(x for x in scores if x.kind == kind and x.method == method)
            ax.errorbar(max(s.seconds, 1e-3), s.vs_reference, yerr=s.vs_reference_ci, fmt=markers[j % len(markers)],
                        capsize=3, label=labels.get(method, method))
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(kind)
        ax.set_xlabel("seconds per image (log)")
        ax.set_ylabel("masked PSNR minus Navier-Stokes' (dB)")
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(kinds):]:
        ax.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(4, len(names)), fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=90)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=Path, default=None, help="folder of photos (default: the three held-out ones)")
    p.add_argument("--kinds", default=KINDS)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--markdown", type=Path, default=None)
    p.add_argument("--plot", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None, help="also write the raw scores here")
    args = p.parse_args()
    import torch

    from inpaint_kit.evaluate import EvalConfig, format_table, run_eval

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        images = args.images or held_out(Path(tmp))
        cfg = EvalConfig(data=str(images), mask_kinds=tuple(args.kinds.split(",")), methods=tuple(args.methods.split(",")),
                         seed=0, seeds=args.seeds, size=args.size, steps=args.steps,
                         output=str(args.json) if args.json else None)
        scores = run_eval(cfg, progress=False)
    table = format_table(scores)
    print(table)
    if args.plot:
        plot(scores, args.plot, METHODS)
    if args.markdown:
        load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        cmd = "python bench/bench_eval.py " + " ".join(sys.argv[1:])
        legend = "\n".join(f"- `{m}`: {label}" for m, label in METHODS.items() if m in cfg.methods)
        write_section(args.markdown, SECTION, f"`{cmd.strip()}`\n\n{__doc__.split(chr(10) * 2, 2)[2].strip()}\n\n"
                      f"{legend}\n\n{table}\n\nPSNR and band CIEDE2000 are means over {len(scores and [1]) and scores[0].images} "
                      f"fills (3 photos x {args.seeds} masks) with 95 % confidence intervals (Student's t). Load average "
                      f"at the end: {load} (2 cores shared with other jobs, 1 torch thread).\n\n<!-- reading -->\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
