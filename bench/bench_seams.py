"""Seams (issue 22): what --blend and --colour_match do to a fill's edge, measured in one run.

    .venv/bin/python bench/bench_seams.py --threads 1 --markdown docs/benchmarks.md

Three held-out photos (scikit-image's coffee, chelsea, rocket; long side 256), one mask per photo and kind
(``thin``, ``cracks``, LaMa's ``lama_medium`` / ``lama_thick``, ``center``), three fills: a fill with a
deliberate colour cast (the clean photo tinted: what a VAE's colour drift looks like), OpenCV
Navier-Stokes, and the builtin model (through ``inpaint_array``, ``--thin_width 0 --blend none``: the model's
own fill on all damage).
Every seam mode corrects the same fill. Scores: masked PSNR, the boundary band's mean CIEDE2000 (3 px
either side of the edge; the outer half is exact by construction), the gradient jump across the edge
(grey levels, result minus truth: 0 = as smooth as the photo) and milliseconds per image for the correction.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from markdown_section import write_section  # bench/ is on sys.path when a bench script runs

SECTION = "## Seams: --blend and --colour_match"
KINDS = ("thin", "cracks", "lama_medium", "lama_thick", "center")
MODES = (("none", "off"), ("feather", "off"), ("laplacian", "off"), ("poisson", "off"), ("none", "local"),
         ("laplacian", "local"))


def tint(image: np.ndarray) -> np.ndarray:
    """The colour cast of the test fill: warmer and brighter (as tests/test_seams.py)."""
    return np.clip(image.astype(np.float32) * np.array([1.08, 1.0, 0.9]) + np.array([12, 4, -8]), 0, 255).astype(np.uint8)


def photos() -> list[np.ndarray]:
    from skimage import data

    from inpaint_kit.geometry import resize_image, work_size

    out = []
    for im in (data.coffee(), data.chelsea(), data.rocket()):
        out.append(resize_image(im, work_size(*im.shape[:2], size=256, multiple=1)))
    return out


def run(fills: list[str], steps: int) -> list[dict]:
    from inpaint_kit.classical import cv2_inpaint
    from inpaint_kit.maskgen import draw, kind_index
    from inpaint_kit.evaluate import band_delta_e, masked_psnr, seam_jump
    from inpaint_kit.inpaint import InferConfig, inpaint_array
    from inpaint_kit.seams import fix_seams

    # the model's own fill on all damage (--thin_width 0): by default thin damage goes to the thin filler,
    # whose fill the seam correction leaves alone, so the default routing would not show what it does
    cfg = InferConfig(model="builtin", size=256, steps=steps, rows=1, blend="none", thin_width=0).validate()
    engine = cfg.load_engine() if "builtin" in fills else None
    rows = []
    for fill_name in fills:
        for kind in KINDS:
            acc = {m: [] for m in MODES}
            for i, image in enumerate(photos()):
                index = kind_index(kind)
                mask = draw(kind, *image.shape[:2], np.random.default_rng([0, i, index]))
                if fill_name == "tinted":
                    fill = np.where(mask[..., None], tint(image), image)
                elif fill_name == "ns":
                    fill = cv2_inpaint(image, mask, "ns")
                else:
                    fill = inpaint_array(engine, cfg, image, mask, [1], progress=False).results[0]
                for blend, colour in MODES:
                    t0 = time.perf_counter()
                    out = fix_seams(image, fill, mask, blend, colour)
                    dt = time.perf_counter() - t0
                    assert np.array_equal(out[~mask], image[~mask])
                    acc[(blend, colour)].append((masked_psnr(image, out, mask), band_delta_e(image, out, mask),
                                                 seam_jump(image, out, mask), dt))
            for (blend, colour), v in acc.items():
                psnr, de, jump, dt = np.array(v).mean(axis=0)
                rows.append(dict(fill=fill_name, kind=kind, blend=blend, colour=colour, psnr=psnr, de=de, jump=jump,
                                 ms=1000 * dt))
            print(f"  {fill_name} {kind} done", file=sys.stderr)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| fill | mask | --blend | --colour_match | PSNR in mask (dB) | band CIEDE2000 | vs none | gradient jump | ms / image |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]
    base = {(r["fill"], r["kind"]): r["de"] for r in rows if r["blend"] == "none" and r["colour"] == "off"}
    for r in rows:
        rel = r["de"] / max(base[(r["fill"], r["kind"])], 1e-9)
        lines.append(f"| {r['fill']} | {r['kind']} | {r['blend']} | {r['colour']} | {r['psnr']:.2f} | {r['de']:.2f} | "
                     f"{rel:.2f}x | {r['jump']:+.2f} | {r['ms']:.0f} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fills", default="tinted,ns,builtin")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--markdown", type=Path, default=None, help="write the section into this file")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rows = run(args.fills.split(","), args.steps)
    text = table(rows)
    print(text)
    if args.markdown:
        import os

        load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        cmd = "python bench/bench_seams.py --threads 1 --markdown docs/benchmarks.md"
        write_section(args.markdown, SECTION, f"`{cmd}`\n\n{__doc__.split(chr(10) * 2, 2)[2].strip()}\n\n{text}\n\n"
                      f"Load average at the end: {load} (2 cores shared with other jobs: read the milliseconds as an "
                      "order of magnitude).\n\n<!-- reading -->\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
