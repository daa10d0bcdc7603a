"""Large scans (issue 9): does thin damage survive, is native detail kept, and what does it cost?

    .venv/bin/python bench/bench_highres.py                         # both parts, print the tables
    .venv/bin/python bench/bench_highres.py --markdown docs/benchmarks.md --examples docs/

Quality, builtin model: scikit-image's ``coffee`` (held out from the builtin model's training) upscaled to
2560 px on the long side, with 3-px dark cracks and a few larger losses painted in (about 3 % of the
image). ``--area full`` (the whole image at ``--size``) against ``--area crops`` (windows around the
damage at native resolution; large windows tiled or scaled), next to OpenCV Telea and Navier-Stokes at
full resolution. Scored inside the mask against the clean photo: *remnants* (share of mask pixels more than
60 grey levels off in some channel: damage that survived), masked PSNR and masked SSIM.

Cost, random-weight ``small`` SD preset (94 M-param UNet, no meaning in its pixels): masks covering about
1 %, 5 % and 20 % of a 4096x2736 image; UNet latent pixels processed (batch x h/8 x w/8 summed over every
UNet call) and seconds per image for ``full`` at ``--size 768``, ``full`` at native size and ``crops``.
Every number of a table comes from the same run (ratios, not bare times, are what transfers).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from markdown_section import write_section  # bench/ is on sys.path when a bench script runs

SECTION = "## Large scans: --area full vs crops"
REMNANT = 60  # grey levels: a repaired pixel further than this from the clean photo is surviving damage


# --- the test scan -----------------------------------------------------------------------------

def scan_photo(long_side: int) -> np.ndarray:
    """scikit-image's coffee (600x400) upscaled with Lanczos so that its long side is ``long_side``."""
    from skimage import data

    from inpaint_kit.geometry import resize_image

    photo = data.coffee()
    h, w = photo.shape[:2]
    return resize_image(photo, (round(h * long_side / max(h, w)), round(w * long_side / max(h, w))))


def damage_mask(h: int, w: int, coverage: float, rng: np.random.Generator, width: int = 3,
                blobs: int = 4) -> np.ndarray:
    """Meandering ``width``-px cracks until they cover ``coverage`` of the image, plus ``blobs`` larger
    losses (ellipses of 1.5-4 % of the short side): what a cracked, flaking print looks like."""
    import cv2

    m = np.zeros((h, w), np.uint8)
    side = min(h, w)
    while m.mean() < coverage:
        pts = [np.array([rng.uniform(0, w), rng.uniform(0, h)])]
        angle = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(15, 45))):
            angle += rng.normal(0, 0.35)
            pts.append(pts[-1] + rng.uniform(0.01, 0.03) * side * np.array([np.cos(angle), np.sin(angle)]))
        cv2.polylines(m, [np.array(pts, np.int32)], False, 1, width)
    for _ in range(blobs):
        axes = tuple(int(v) for v in rng.uniform(0.015, 0.04, 2) * side)
        centre = (int(rng.uniform(0.1, 0.9) * w), int(rng.uniform(0.1, 0.9) * h))
        cv2.ellipse(m, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return m.astype(bool)


def damaged(clean: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The scan as the restorer gets it: dark, grainy damage where ``mask`` is."""
    out = clean.copy()
    out[mask] = np.clip(rng.normal(35, 10, (int(mask.sum()), 3)), 0, 255).astype(np.uint8)
    return out


def scores(clean: np.ndarray, result: np.ndarray, mask: np.ndarray) -> dict:
    from inpaint_kit.evaluate import masked_psnr, masked_ssim

    off = np.abs(result.astype(np.int16) - clean.astype(np.int16)).max(axis=2)[mask]
    return {"remnants": 100.0 * float((off > REMNANT).mean()), "psnr": masked_psnr(clean, result, mask),
            "ssim": masked_ssim(clean, result, mask)}


# --- part 1: quality (builtin) ------------------------------------------------------------------

def quality(long_side: int, coverage: float, seed: int, steps: int, examples: Path | None) -> list[dict]:
    from inpaint_kit.classical import cv2_inpaint
    from inpaint_kit.inpaint import InferConfig, inpaint_array

    rng = np.random.default_rng(seed)
    clean = scan_photo(long_side)
    mask = damage_mask(*clean.shape[:2], coverage, rng)
    scan = damaged(clean, mask, rng)
    rows = []
    for name in ("telea", "ns"):
        t0 = time.perf_counter()
        result = cv2_inpaint(scan, mask, name)
        rows.append({"method": f"OpenCV {name} (full resolution)", **scores(clean, result, mask),
                     "seconds": time.perf_counter() - t0, "result": result})
    engine = None
    for label, kw in (("builtin --area full --size 512", dict(area="full", size=512)),
                      ("builtin --area full --size 768", dict(area="full", size=768)),
                      ("builtin --area crops (tile large windows)", dict(area="crops", size=768)),
                      ("builtin --area crops, large windows scaled", dict(area="crops", size=768, large_windows="scale"))):
        cfg = InferConfig(model="builtin", rows=1, seed=1, steps=steps, **kw).validate()
        engine = engine or cfg.load_engine()
        t0 = time.perf_counter()
        job = inpaint_array(engine, cfg, scan, mask, cfg.seeds(), progress=False)
        rows.append({"method": label, **scores(clean, job.results[0], mask), "seconds": time.perf_counter() - t0,
                     "windows": len(job.regions), "result": job.results[0]})
        print(f"  {label}: {rows[-1]['remnants']:.2f} % remnants, {rows[-1]['psnr']:.2f} dB", file=sys.stderr)
    if examples is not None:
        _write_examples(examples, clean, scan, mask, rows)
    return rows


def _write_examples(folder: Path, clean, scan, mask, rows) -> None:
    """A before/after crop around the densest damage: damaged | full @768 | crops | clean."""
    import cv2

    from inpaint_kit.images import save_png

    density = cv2.boxFilter(mask.astype(np.float32), -1, (256, 256))
    y, x = np.unravel_index(int(density.argmax()), density.shape)
    t, l = int(np.clip(y - 128, 0, mask.shape[0] - 256)), int(np.clip(x - 128, 0, mask.shape[1] - 256))
    crop = lambda im: im[t : t + 256, l : l + 256]  # noqa: E731
    pick = {r["method"]: r["result"] for r in rows}
    tiles = [crop(scan), crop(pick["builtin --area full --size 768"]), crop(pick["builtin --area crops (tile large windows)"]),
             crop(clean)]
    gap = np.full((256, 8, 3), 255, np.uint8)
    strip = np.concatenate([tiles[0], gap, tiles[1], gap, tiles[2], gap, tiles[3]], axis=1)
    save_png(folder / "highres_before_after.png", strip,
             {"tiles": ["damaged scan", "--area full --size 768", "--area crops", "clean photo"],
              "crop_box": [t, l, t + 256, l + 256], "image_size": list(mask.shape[::-1])})


# --- part 2: cost (small preset) ----------------------------------------------------------------

def cost(size_hw: tuple[int, int], coverages: list[float], steps: int, seed: int, native: bool) -> list[dict]:
    from inpaint_kit.engine import load_engine
    from inpaint_kit.inpaint import InferConfig, inpaint_array
    from inpaint_kit.presets import write_tiny_model

    h, w = size_hw
    rng = np.random.default_rng(seed)
    image = (np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        model = str(write_tiny_model(Path(tmp) / "small", preset="small", seed=0))
        engine = load_engine(model)
        rows = []
        modes = [("full --size 768", dict(area="full", size=768)), ("crops --size 768", dict(area="crops", size=768))]
        if native:
            modes.insert(1, ("full at native size", dict(area="full", size=max(h, w),
                                                          max_work_megapixels=max(h, w) ** 2 / 1e6)))
        native_row = None
        for coverage in coverages:
            mask = damage_mask(h, w, coverage, rng, blobs=2)
            for label, kw in modes:
                if label == "full at native size" and native_row is not None:  # independent of the mask
                    rows.append({**native_row, "coverage": 100 * float(mask.mean())})
                    continue
                cfg = InferConfig(model=model, rows=1, seed=1, steps=steps, **kw).validate()
                before = engine.unet_latent_pixels
                t0 = time.perf_counter()
                job = inpaint_array(engine, cfg, image, mask, [1], progress=False)
                row = {"coverage": 100 * float(mask.mean()), "mode": label, "seconds": time.perf_counter() - t0,
                       "latent_pixels": engine.unet_latent_pixels - before, "windows": len(job.regions)}
                rows.append(row)
                if label == "full at native size":
                    native_row = row
                print(f"  {row}", file=sys.stderr)
    return rows


def batching(rows: int, steps: int) -> dict:
    """The builtin engine's batching: every row and window of an image through shared network calls,
    against one :meth:`fill` call per canvas (as rows were sampled before), on the shipped ``coffee``
    sample in ``crops`` mode. Both must give the same pixels (a row is the same alone or batched)."""
    from inpaint_kit.api import to_mask, to_rgb
    from inpaint_kit.engine import Canvas, call_seed
    from inpaint_kit.geometry import crop_to_work, plan_area
    from inpaint_kit.inpaint import InferConfig

    repo = Path(__file__).resolve().parents[1]
    image = to_rgb(repo / "imgs/coffee.png")
    mask = to_mask(repo / "masks/coffee.png", "black", image.shape[:2])
    cfg = InferConfig(model="builtin", size=128, steps=steps, rows=rows, seed=1, area="crops")
    engine = cfg.load_engine()
    _, regions = plan_area(mask, cfg.area, cfg.size, cfg.padding, engine.multiple, cfg.large_windows)
    crops = [crop_to_work(image, mask, r) for r in regions]
    items = [Canvas(*crops[k], call_seed(1 + i, k)) for i in range(rows) for k in range(len(regions))]
    by_size: dict = {}
    for it in items:
        by_size.setdefault(it.mask.shape, []).append(it)
    t0 = time.perf_counter()
    together = [out for group in by_size.values() for out in engine.fill(group, cfg.sampling(), progress=False)]
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    alone = [engine.fill([it], cfg.sampling(), progress=False)[0] for group in by_size.values() for it in group]
    t_alone = time.perf_counter() - t0
    same = all(np.array_equal(a, b) for a, b in zip(together, alone))
    return {"canvases": len(items), "rows": rows, "windows": len(regions), "batched": t_batched, "alone": t_alone,
            "same": same}


def latent_counts(size_hw: tuple[int, int], coverages: list[float], seed: int, multiple: int = 8) -> list[dict]:
    """UNet latent pixels per denoising call of each mode, from the planner alone (no model): the sum of
    (h/8 x w/8) over the working canvases :func:`inpaint_kit.geometry.plan_area` hands the engine. This is
    what the SD engine's counter adds up per step, so ratios between modes are exact; it takes seconds
    where running the ``small`` preset over a 4096-px scan takes many minutes on 2 cores."""
    from inpaint_kit.geometry import plan_area

    h, w = size_hw
    rng = np.random.default_rng(seed)
    rows = []
    masks = []
    for coverage in coverages:
        masks.append(("cracks across the scan", damage_mask(h, w, coverage, rng, blobs=2)))
    for coverage in coverages[:2]:  # the same amount of damage confined to one region (a water stain, a tear)
        local = np.zeros((h, w), bool)
        lh, lw = h * 2 // 5, w * 2 // 5
        local[h // 4 : h // 4 + lh, w // 3 : w // 3 + lw] = damage_mask(lh, lw, coverage * (h * w) / (lh * lw), rng, blobs=2)
        masks.append(("the same in one region", local))
    from inpaint_kit.geometry import plan_crops

    for kind, mask in masks:
        for label, area, size in (("full --size 768", "full", 768), ("full at native size", "full", max(h, w)),
                                  ("crops --size 768, tiles (before fitting)", "tiles", 768),
                                  ("crops --size 768, windows fitted to the damage", "crops", 768)):
            if area == "tiles":
                regions = plan_crops(mask, size, 64, multiple, "tile", fit=False)
            else:
                _, regions = plan_area(mask, area, size, 64, multiple, "tile")
            latent = sum((r.work_hw[0] // 8) * (r.work_hw[1] // 8) for r in regions)
            rows.append({"coverage": 100 * float(mask.mean()), "kind": kind, "mode": label, "latent_per_call": latent,
                         "windows": len(regions)})
    return rows


# --- tables -------------------------------------------------------------------------------------

def quality_table(rows: list[dict]) -> str:
    telea = next(r for r in rows if "telea" in r["method"])
    best = max((r for r in rows if "OpenCV" in r["method"]), key=lambda r: r["psnr"])
    lines = ["| method | windows | remnants (% of mask > 60 levels off) | masked PSNR (dB) | masked SSIM | s / image |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r.get('windows', '')} | {r['remnants']:.2f} | {r['psnr']:.2f} | "
                     f"{r['ssim']:.3f} | {r['seconds']:.1f} |")
    crops = next(r for r in rows if r["method"].startswith("builtin --area crops ("))
    lines += ["", f"Targets for `crops`: remnants within 1 point of Telea's ({telea['remnants']:.2f} %): "
              f"{'**met**' if crops['remnants'] <= telea['remnants'] + 1 else '**missed**'} ({crops['remnants']:.2f} %); "
              f"masked PSNR no more than 1 dB below the better OpenCV method ({best['method']}, {best['psnr']:.2f} dB): "
              f"{'**met**' if crops['psnr'] >= best['psnr'] - 1 else '**missed**'} ({crops['psnr'] - best['psnr']:+.2f} dB)."]
    return "\n".join(lines)


def cost_table(rows: list[dict]) -> str:
    lines = ["| mask coverage | mode | windows | UNet latent pixels | vs full at native | s / image | vs full at native |",
             "|---|---|---|---|---|---|---|"]
    by_cov: dict[float, list[dict]] = {}
    for r in rows:
        by_cov.setdefault(round(r["coverage"], 1), []).append(r)
    notes = []
    for cov, group in by_cov.items():
        native = next((r for r in group if r["mode"] == "full at native size"), None)
        for r in group:
            lp = f"{native['latent_pixels'] / r['latent_pixels']:.1f}x fewer" if native and r is not native else ""
            sec = f"{native['seconds'] / r['seconds']:.1f}x faster" if native and r is not native else ""
            lines.append(f"| {cov:.1f} % | {r['mode']} | {r['windows']} | {r['latent_pixels']:,} | {lp} | {r['seconds']:.1f} | {sec} |")
        crops = next(r for r in group if r["mode"].startswith("crops"))
        if native and cov <= 5.5:
            ratio = native["latent_pixels"] / crops["latent_pixels"]
            notes.append(f"{cov:.1f} %: crops processes {ratio:.1f}x fewer latent pixels than full at native size "
                         f"({'**met**' if ratio >= 4 else '**missed**'}, target >= 4x)")
    return "\n".join(lines + ([""] + ["Target: " + "; ".join(notes) + "."] if notes else []))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--long_side", type=int, default=2560, help="quality part: the scan's long side")
    p.add_argument("--coverage", type=float, default=0.025, help="quality part: share of the scan covered by cracks")
    p.add_argument("--steps", type=int, default=30, help="quality part: --steps of the builtin model")
    p.add_argument("--cost_size", default="2736x4096", help="cost part: HxW of the image")
    p.add_argument("--cost_steps", type=int, default=2, help="cost part: denoising steps (cost is linear in them)")
    p.add_argument("--no_native", action="store_true", help="cost part: skip full at native size (minutes per call)")
    p.add_argument("--parts", default="quality,cost,batching")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--markdown", type=Path, default=None, help="update this benchmark's section of this file")
    p.add_argument("--examples", type=Path, default=None, help="write a before/after crop PNG into this folder")
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    parts = args.parts.split(",")
    out = []
    if "quality" in parts:
        print("quality (builtin model)...", file=sys.stderr)
        q = quality(args.long_side, args.coverage, args.seed, args.steps, args.examples)
        out += [f"### Quality: builtin model, a {args.long_side}-px scan with 3-px cracks and larger losses", "",
                quality_table(q), ""]
    if "cost" in parts:
        print("cost (small preset)...", file=sys.stderr)
        h, w = (int(v) for v in args.cost_size.split("x"))
        c = cost((h, w), [0.01, 0.05, 0.20], args.cost_steps, args.seed, not args.no_native)
        out += [f"### Cost: random-weight `small` preset, {w}x{h} image, {args.cost_steps} steps", "", cost_table(c), ""]
    if "counts" in parts:
        h, w = (int(v) for v in args.cost_size.split("x"))
        c = latent_counts((h, w), [0.01, 0.05, 0.20], args.seed)
        lines = [f"### UNet latent pixels per denoising call, {w}x{h} image (planner count, no model)", "",
                 "| damage | coverage | mode | windows | latent pixels per call | vs full at native size |",
                 "|---|---|---|---|---|---|"]
        for r in c:
            native = next(x for x in c if x["coverage"] == r["coverage"] and x["kind"] == r["kind"]
                          and x["mode"] == "full at native size")
            lines.append(f"| {r['kind']} | {r['coverage']:.1f} % | {r['mode']} | {r['windows']} | {r['latent_per_call']:,} | "
                         f"{native['latent_per_call'] / r['latent_per_call']:.1f}x fewer |")
        out += lines + [""]
    if "batching" in parts:
        print("batching (builtin model)...", file=sys.stderr)
        b = batching(4, args.steps)
        out += ["### Builtin engine: rows and windows batched vs one canvas per call", "",
                "| canvases (rows x windows) | one call per canvas (s) | batched (s) | speed-up | same pixels |",
                "|---|---|---|---|---|",
                f"| {b['canvases']} ({b['rows']} x {b['windows']}) | {b['alone']:.1f} | {b['batched']:.1f} | "
                f"{b['alone'] / b['batched']:.2f}x | {b['same']} |", ""]
    body = "\n".join(out)
    print(body)
    if args.markdown:
        cmd = "python bench/bench_highres.py " + " ".join(a for a in (argv or sys.argv[1:]))
        write_section(args.markdown, SECTION, f"Command: `{cmd.strip()}` (torch threads: {torch.get_num_threads()}, "
                      f"{os.cpu_count()} CPUs)\n\n{body}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
