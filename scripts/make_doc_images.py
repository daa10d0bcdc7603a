#!/usr/bin/env python
"""Rebuild every picture the README and the guides in docs/ show, from the shipped samples (imgs/, masks/,
train_data/) with the offline builtin model and OpenCV, fixed seeds; and the benchmark plots from the tables
published in docs/benchmarks.md (so a plot never shows other numbers than its table).

    .venv/bin/python scripts/make_doc_images.py                 # everything (a few minutes on 2 CPU cores)
    .venv/bin/python scripts/make_doc_images.py front plots     # only these parts (names below)

Parts and what they write into docs/images/:

    front    front.jpg (damaged | builtin | OpenCV Telea, the three samples) and collage.jpg (what
             `make demo` writes for chelsea), both from `infer --model builtin --size 320 --rows 3 --seed 1`
    builtin  builtin.jpg: damaged | builtin (its defaults) | builtin from pure noise | Telea | Navier-Stokes
    archive  record.jpg: damaged | restored row | --mark_fills copy | --record's fill layer
    outpaint outpaint.jpg: the original on the extended canvas above `outpaint --left 96 --right 96` on the builtin
    masks    mask_kinds.png: one mask of each named generator of inpaint_kit/maskgen.py
    finetune finetune_inputs.jpg: a training pair, a generated hole, the ControlNet's control image
    defect   defect_masks.jpg: `defect --mask_shapes` on a sample, with and without --on_foreground
    plots    bench_builtin.png, bench_highres.png, bench_costs.png (matplotlib) from docs/benchmarks.md
    ui       docs/ui.png: a screenshot of the web UI ($UI_SCREENSHOT, default docs/ui.png) scaled to 1050 px
             wide and reduced to 256 colours (not part of the default run: the screenshot is taken in a browser)

The builtin model's pixels depend slightly on the CPU and thread count (float sums), so a rebuild may differ
by a grey level here and there; everything else is exact.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "images"
SAMPLES = ("chelsea", "coffee", "rocket")
GAP, LABEL_H, PAPER = 6, 24, (255, 255, 255)


# --- sheets of labelled tiles ---------------------------------------------------------------------------
def sheet(rows: list[list[np.ndarray]], labels: list[str] | None = None, gap: int = GAP) -> Image.Image:
    """Tiles (RGB uint8 arrays; each row's tiles share a height) laid out in rows with white gaps, a label
    above each column of the first row."""
    widths = [sum(t.shape[1] for t in row) + gap * (len(row) - 1) for row in rows]
    top = LABEL_H if labels else 0
    height = top + sum(row[0].shape[0] for row in rows) + gap * (len(rows) - 1)
    canvas = Image.new("RGB", (max(widths), height), PAPER)
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default(size=15)
    y = top
    for r, row in enumerate(rows):
        x = 0
        for c, tile in enumerate(row):
            canvas.paste(Image.fromarray(tile), (x, y))
            if labels and r == 0 and c < len(labels):
                draw.text((x + tile.shape[1] / 2, top / 2), labels[c], fill=(0, 0, 0), font=font, anchor="mm")
            x += tile.shape[1] + gap
        y += row[0].shape[0] + gap
    return canvas


def save(image: Image.Image, name: str) -> None:
    """JPEG (quality 88) for photographs, optimised PNG for line art; prints the size written."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    if path.suffix == ".jpg":
        image.convert("RGB").save(path, quality=88, optimize=True, progressive=True)
    else:
        image.save(path, optimize=True)
    print(f"{path.relative_to(ROOT)}: {image.width}x{image.height}, {path.stat().st_size // 1024} KiB")


def sample(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A shipped sample as (RGB uint8, bool mask True = repair), read as `infer` reads them."""
    from inpaint_kit.images import load_image
    from inpaint_kit.masks import read_mask

    image = load_image(ROOT / "imgs" / f"{name}.png")
    return image, read_mask(ROOT / "masks" / f"{name}.png", "black", image.shape[:2])


def run_cli(*argv: str) -> None:
    from inpaint_kit.cli import main

    code = main([str(a) for a in argv])
    if code:
        raise SystemExit(f"inpaint-kit {' '.join(map(str, argv))} exited with {code}")


# --- parts ---------------------------------------------------------------------------------------------
def front(tmp: Path) -> None:
    """The README's picture row and the demo collage: `make demo`'s settings, row 0 beside OpenCV's Telea."""
    from inpaint_kit import InferConfig, load_engine, restore
    from inpaint_kit.classical import cv2_inpaint

    cfg = InferConfig(model="builtin", size=320, rows=3, seed=1)
    engine = load_engine(cfg)
    rows = []
    for name in SAMPLES:
        image, mask = sample(name)
        result = restore(str(ROOT / "imgs" / f"{name}.png"), str(ROOT / "masks" / f"{name}.png"), cfg, engine=engine)
        rows.append([image, np.asarray(result.images[0].convert("RGB")), cv2_inpaint(image, mask, "telea")])
        if name == "chelsea":
            result.save(str(tmp), name)
            collage = Image.open(tmp / f"{name}_collage.png").convert("RGB")
    save(sheet(rows, ["damaged (imgs/, masks/)", "builtin model (row 0, seed 1)", "OpenCV Telea"]), "front.jpg")
    save(collage.resize((collage.width * 3 // 4, collage.height * 3 // 4), Image.LANCZOS), "collage.jpg")


def builtin(tmp: Path) -> None:
    """The builtin model's default (Telea, noised to 0.5, then the network) against the network from pure
    noise and the two OpenCV fills, on one sample."""
    from inpaint_kit import InferConfig, restore
    from inpaint_kit.classical import cv2_inpaint
    from inpaint_kit.engine.options import DDPMOptions

    image, mask = sample("chelsea")
    path, mpath = str(ROOT / "imgs/chelsea.png"), str(ROOT / "masks/chelsea.png")
    default = restore(path, mpath, InferConfig(model="builtin", size=320, rows=1, seed=1)).images[0]
    noise = restore(path, mpath, InferConfig(model="builtin", size=320, rows=1, seed=1,
                                            ddpm=DDPMOptions(init="noise"))).images[0]
    tiles = [image, np.asarray(default.convert("RGB")), np.asarray(noise.convert("RGB")),
             cv2_inpaint(image, mask, "telea"), cv2_inpaint(image, mask, "ns")]
    save(sheet([tiles], ["damaged", "builtin (defaults)", "builtin --init noise", "OpenCV Telea", "OpenCV NS"]),
         "builtin.jpg")


def archive(tmp: Path) -> None:
    """`infer --save_rows --record --mark_fills` on the builtin: the row, its outlined copy and its fill layer."""
    run_cli("infer", "--model", "builtin", "--image", ROOT / "imgs/chelsea.png", "--mask", ROOT / "masks/chelsea.png",
            "--size", 320, "--rows", 1, "--seed", 42, "--save_rows", "--record", "--mark_fills",
            "--output_dir", tmp, "--no_progress")
    image, _ = sample("chelsea")
    row = np.asarray(Image.open(tmp / "chelsea_row0_seed42.png").convert("RGB"))
    marked = np.asarray(Image.open(tmp / "chelsea_row0_seed42_marked.png").convert("RGB"))
    layer = Image.open(tmp / "chelsea_fill_row0_seed42.png").convert("RGBA")
    checks = (np.indices(layer.size[::-1]) // 8).sum(0) % 2
    board = Image.fromarray(np.where(checks[..., None], 236, 200).astype(np.uint8).repeat(3, -1))
    board.paste(layer, (0, 0), layer)
    save(sheet([[image, row, marked, np.asarray(board)]],
               ["damaged", "row (--save_rows)", "--mark_fills", "fill layer (--record)"]), "record.jpg")


def outpaint(tmp: Path) -> None:
    """`outpaint --left 96 --right 96` on the builtin, beside the original placed on the extended canvas."""
    out = tmp / "chelsea_wide.png"
    run_cli("outpaint", "--model", "builtin", "--image", ROOT / "imgs/chelsea.png", "--left", 96, "--right", 96,
            "--size", 320, "--rows", 1, "--seed", 1, "--save_rows", "--output", out, "--no_progress")
    result = np.asarray(Image.open(tmp / "chelsea_wide_row0_seed1.png").convert("RGB"))
    image, _ = sample("chelsea")
    placed = np.full_like(result, 255)
    placed[:, 96:96 + image.shape[1]] = image
    save(sheet([[placed], [result]]), "outpaint.jpg")


def masks(tmp: Path) -> None:
    """One mask of each named generator (dark = repaint), 128 px, drawn with seed = its position in the registry."""
    from inpaint_kit.maskgen import GENERATORS, draw

    font = ImageFont.load_default(size=13)
    side, cols, label = 128, 6, 18
    names = list(GENERATORS)
    rows = -(-len(names) // cols)
    canvas = Image.new("L", (cols * (side + GAP) - GAP, rows * (side + label + GAP) - GAP), 255)
    pen = ImageDraw.Draw(canvas)
    for i, name in enumerate(names):
        mask = draw(name, side, side, np.random.default_rng(i))
        tile = np.where(mask, 40, 235).astype(np.uint8)
        x, y = (i % cols) * (side + GAP), (i // cols) * (side + label + GAP)
        canvas.paste(Image.fromarray(tile), (x, y + label))
        pen.text((x + side / 2, y + label / 2), name, fill=0, font=font, anchor="mm")
    save(canvas.convert("P", palette=Image.ADAPTIVE, colors=16), "mask_kinds.png")


def finetune(tmp: Path) -> None:
    """What the fine-tuning commands read and feed: a train_data pair, a generated `assorted` hole (train-lora's
    --mask_source random) and the ControlNet control image (repaint pixels = -1, shown black)."""
    from inpaint_kit.engine.controlnet import control_image
    from inpaint_kit.images import load_image
    from inpaint_kit.maskgen import draw
    from inpaint_kit.masks import read_mask

    image = load_image(ROOT / "train_data/imgs/astronaut.png")
    mask = read_mask(ROOT / "train_data/masks/astronaut.png", "black", image.shape[:2])
    hole = draw("assorted", *image.shape[:2], np.random.default_rng(3))
    control = control_image(image, mask)  # (3, h, w) in [0, 1], -1 where the model repaints
    shown = (np.clip(control, 0, 1).transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)
    tiles = [image, np.where(mask, 0, 255).astype(np.uint8)[..., None].repeat(3, -1),
             np.where(hole, 0, 255).astype(np.uint8)[..., None].repeat(3, -1), shown]
    save(sheet([tiles], ["train_data/imgs", "train_data/masks", "a generated hole", "ControlNet's view"]),
         "finetune_inputs.jpg")


def defect(tmp: Path) -> None:
    """`defect --mask_shapes` drawn as `defect` draws them (items 0..3, seed 1) on a shipped picture of objects on
    a plain ground (train_data/imgs/coins.png), without and with --on_foreground; outlined in red."""
    import cv2

    from inpaint_kit.defect.generate import MASK_SHAPES, foreground, shape_mask

    from inpaint_kit.images import load_image

    image = load_image(ROOT / "train_data/imgs/coins.png")
    fg = foreground(image)
    rows = []
    for on_foreground in (False, True):
        tiles = []
        for i, shape in enumerate(MASK_SHAPES):
            rng = np.random.default_rng([1, i, 5])
            if on_foreground:
                ys, xs = np.nonzero(fg)
                pick = int(rng.integers(len(ys)))
                mask = shape_mask(shape, *image.shape[:2], rng, center=(int(ys[pick]), int(xs[pick])))
                mask = mask & fg if (mask & fg).any() else mask
            else:
                mask = shape_mask(shape, *image.shape[:2], rng)
            tile = image.copy()
            tile[mask] = (0.5 * tile[mask] + 0.5 * np.array([230, 30, 30])).astype(np.uint8)
            edge = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
            tile[edge] = (230, 30, 30)
            tiles.append(tile)
        rows.append(tiles)
    save(sheet(rows, [f"--mask_shapes {s}" for s in MASK_SHAPES]), "defect_masks.jpg")
    print("   (top row: placed in the middle 60 % of the image; bottom row: --on_foreground)")


# --- benchmark plots, from the tables of docs/benchmarks.md ---------------------------------------------------
def table(section: str, header: str) -> list[dict[str, str]]:
    """The markdown table under heading ``section`` of docs/benchmarks.md whose header line starts with
    ``header`` (e.g. ``"| mask | method"``), as one dict per row (bold marks dropped)."""
    text = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    lines = text[text.index(section):].splitlines()
    at = next((i for i, line in enumerate(lines) if line.startswith(header)), None)
    if at is None:
        raise SystemExit(f"docs/benchmarks.md: no table starting {header!r} under {section!r}")
    cells = lambda line: [c.strip().strip("*") for c in line.strip().strip("|").split("|")]  # noqa: E731
    rows = []
    for line in lines[at + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(cells(lines[at]), cells(line))))
    return rows


def number(cell: str) -> float:
    return float(re.match(r"[-+]?[\d.,]+", cell.replace(",", "").strip(" *")).group(0))


def plots(tmp: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
    colours = {"builtin": "#c0392b", "telea": "#7f8c8d", "ns": "#34495e"}

    # 1. the builtin model vs OpenCV on held-out photos, per mask kind: PSNR and gradient-energy ratio
    rows = table("## Builtin model (from-scratch DDPM) vs OpenCV", "| mask | method")
    kinds = list(dict.fromkeys(r["mask"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 2.9))
    for ax, column, title in ((axes[0], "PSNR in mask (dB)", "PSNR in the mask (dB), higher is better"),
                              (axes[1], "gradient-energy ratio", "gradient-energy ratio (1.0 = the photo's texture)")):
        for j, method in enumerate(("builtin", "telea", "ns")):
            values = [number(next(r[column] for r in rows if r["mask"] == k and r["method"] == method)) for k in kinds]
            ax.bar(np.arange(len(kinds)) + (j - 1) * 0.27, values, 0.27, label=method, color=colours[method])
        ax.set_xticks(range(len(kinds)), kinds)
        ax.set_title(title, fontsize=9)
    axes[1].axhline(1.0, color="black", lw=0.8, ls="--")
    axes[0].set_ylim(15, None)
    axes[0].legend(frameon=False, ncol=3, loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "bench_builtin.png", dpi=110)
    plt.close(fig)
    print("docs/images/bench_builtin.png")

    # 2. large scans: remnants and masked PSNR per method
    rows = table("### Quality: builtin model, a 2560-px scan", "| method")
    names = [r["method"].replace(" (full resolution)", "\n(full res.)").replace("builtin --area ", "builtin\n")
             .replace(" (tile large windows)", "\n(tiles)").replace(", large windows scaled", "\n(scaled)")
             for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.0))
    shades = ["#7f8c8d", "#34495e", "#e6b0aa", "#d98880", "#c0392b", "#e6b0aa"]
    for ax, column, title in ((axes[0], "remnants (% of mask > 60 levels off)", "damage left (% of mask), lower is better"),
                              (axes[1], "masked PSNR (dB)", "PSNR in the mask (dB), higher is better")):  # noqa: E501
        ax.barh(range(len(rows)), [number(r[column]) for r in rows], color=shades)
        ax.set_yticks(range(len(rows)), names, fontsize=7.5)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=9)
    axes[1].set_xlim(20, None)
    axes[1].set_yticks([])
    fig.tight_layout()
    fig.savefig(OUT / "bench_highres.png", dpi=110)
    plt.close(fig)
    print("docs/images/bench_highres.png")

    # 3. what things cost (ratios measured in one run each): training updates and inference calls
    train = table("## ControlNet inpainting: cost", "| preset | size | trains")
    infer = table("## ControlNet inpainting: cost", "| preset | size | inpainting with")
    small_train = [r for r in train if r["preset"] == "small"]
    small_infer = [r for r in infer if r["preset"] == "small"]
    fig, axes = plt.subplots(1, 3, figsize=(9.6, 2.6))
    axes[0].barh([r["trains"] for r in small_train], [number(r["trainable params"]) / 1e6 for r in small_train],
                 color="#c0392b")
    axes[0].set_title("trainable parameters (M), small preset", fontsize=9)
    axes[1].barh([r["trains"] for r in small_train], [number(r["peak RSS (MiB)"]) for r in small_train],
                 color="#34495e")
    axes[1].set_title("peak memory in training (MiB)", fontsize=9)
    axes[1].set_yticks([])
    labels = [r["inpainting with"].replace(" (latent blending)", "").replace("SD-inpainting UNet (9 ch)", "9-ch UNet")
              for r in small_infer]
    axes[2].barh(labels, [number(r["CPU overhead vs plain SD"]) for r in small_infer], color="#7f8c8d")
    axes[2].axvline(1.0, color="black", lw=0.8, ls="--")
    axes[2].set_title("inference CPU time vs plain SD", fontsize=9)
    for ax in axes:
        ax.invert_yaxis()
        ax.tick_params(labelsize=7.5)
    fig.tight_layout()
    fig.savefig(OUT / "bench_costs.png", dpi=110)
    plt.close(fig)
    print("docs/images/bench_costs.png")


def ui(tmp: Path) -> None:
    """docs/ui.png made small: a screenshot of the page (``$UI_SCREENSHOT``, default docs/ui.png itself), scaled
    to 1050 px wide and reduced to 256 colours. Take one by hand (the Restore tab after a run on a sample), or
    with ``UI_SCREENSHOT=/tmp/ui.png pytest tests/test_ui_browser.py`` (the test's own synthetic picture)."""
    import os

    shot = Path(os.environ.get("UI_SCREENSHOT", ROOT / "docs" / "ui.png"))
    if not shot.exists():
        raise SystemExit(f"{shot}: no screenshot there; take one (see `ui` above) and set UI_SCREENSHOT to it")
    save_screenshot(Image.open(shot), ROOT / "docs" / "ui.png")


def save_screenshot(image: Image.Image, path: Path, width: int = 1050) -> None:
    """A screenshot at most ``width`` px wide in 256 colours (flat UI colours survive; a few hundred KB at most)."""
    image = image.convert("RGB")
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
    image.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"{path.relative_to(ROOT)}: {image.width}x{image.height}, {path.stat().st_size // 1024} KiB")


PARTS = {"front": front, "builtin": builtin, "archive": archive, "outpaint": outpaint, "masks": masks,
         "finetune": finetune, "defect": defect, "plots": plots, "ui": ui}
DEFAULT = [p for p in PARTS if p != "ui"]  # a screenshot is taken in a browser first: asked for by name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", metavar="PART", help=f"parts to rebuild: {', '.join(PARTS)} (default: all but ui)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadiest on a busy machine)")
    args = parser.parse_args()
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    import torch

    torch.set_num_threads(args.threads)
    OUT.mkdir(parents=True, exist_ok=True)
    for name in args.parts or DEFAULT:
        with tempfile.TemporaryDirectory() as tmp:
            PARTS[name](Path(tmp))


if __name__ == "__main__":
    main()
