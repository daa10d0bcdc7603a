"""Outpainting: extend an image past its border, in chunks, with the same engines and guarantees as
inpainting. Outpainting is inpainting on an extended canvas, so this module only adds three things:

1. the canvas: the original at offset ``(left, up)`` and the new area initialised by ``--fill``
   (:func:`extend_canvas`, pure numpy);
2. the plan: a list of model calls (:class:`Window`), each generating one strip of at most
   ``max_step`` new pixels from a window that also holds ``overlap`` already-final pixels, so no call
   ever sees the whole canvas (:func:`plan_windows`, a pure function of sizes);
3. the seam: the model's colour error on each window's known pixels is taken out of its new pixels
   (fully at the border, fading over ``seam_blend`` pixels to the window's mean error), so known
   pixels never change, strips meet smoothly and a colour cast does not pile up (:func:`blend_new`).

    cfg = OutpaintConfig(model="builtin", left=300, up=128, rows=2, seed=7).validate()
    job, engine, written, meta = outpaint_file(cfg, "imgs/mural.png", "outputs/mural_outpaint.png")

:func:`outpaint_file` is the whole job on one file (read, check, load the engine if needed, extend, write),
the same for the ``outpaint`` command, its batch runner and the UI; :func:`outpaint_array` is the
extension alone, on arrays.

The collage row is ``original on the filled canvas | canvas with the new area white | result``,
which is :func:`inpaint_kit.collage.grid` of the job's ``image`` (the filled canvas) and ``mask``
(the new area).

Archive masters (docs/archive.md) are extended as ``infer`` restores them: the model sees the image's sRGB
view, every new pixel is fill, and each row (``save_rows``) is written at the source's depth, colour mode,
profile and metadata, in ``output_format``, with the source's stored values at the offset bit for bit
(:func:`extend_master`); ``record`` and ``mark_fills`` treat the new area as the filled region.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Sequence

import numpy as np
from tqdm import tqdm

from .progress import interactive

from .batch import BatchReport, run_items
from .engine import Engine, call_seed, fill_rows, to_float, to_uint8  # noqa: F401 (call_seed: part of this module's API)
from .errors import InpaintKitError
from .geometry import resize_image, to_work
from .fill import Fill
from .images import Master, output_format
from .inpaint import InferConfig, Job, ModelRows, job_paths, read_source, request, write_job
from .pairing import output_stems, scan
from .record import input_digests, inputs_of

log = logging.getLogger("inpaint_kit")

DIRECTIONS = ("left", "right", "up", "down")
FILLS = ("edge", "blur", "noise", "gray")
# Output names: <stem>_outpaint.png (rows <stem>_outpaint_row<i>_seed<s>.png), so that outpainting and
# inpainting the same image into one folder never collide, nor resume-skip each other's results.
SUFFIX = "_outpaint"


@dataclass
class OutpaintConfig(InferConfig):
    """An inference config plus the extension. ``None`` = that side is not extended; a given side must
    be at least 1 pixel. Validation raises, it never rewrites a value."""

    NOT_RECORDED: ClassVar[tuple[str, ...]] = ("area", "padding", "large_windows", "mask_dilate", "mask_blur",  # the strip planner decides
                                               "blend", "colour_match", "thin_width", "thin_fill", "thin_model")  # infer's seams and thin routing

    seam_blend: int = 8  # new pixels over which the seam is blended (old pixels never change)
    left: int | None = None
    right: int | None = None
    up: int | None = None
    down: int | None = None
    overlap: int = 64
    fill: str = "edge"
    max_step: int = 256
    max_canvas: int = 8192  # largest side of the extended canvas, pixels
    max_megapixels: float = 40.0  # largest area of the extended canvas

    def extension(self) -> dict[str, int]:
        """``{"left": px, "right": px, "up": px, "down": px}`` with 0 for sides not extended."""
        return {d: getattr(self, d) or 0 for d in DIRECTIONS}

    def validate(self) -> "OutpaintConfig":
        super().validate()
        given = {d: getattr(self, d) for d in DIRECTIONS if getattr(self, d) is not None}
        for d, px in given.items():
            if px < 1:
                raise InpaintKitError(f"--{d} {px}: give a positive number of pixels (or leave the side out)")
        if not given:
            raise InpaintKitError(
                "no direction given; pass --left/--right/--up/--down PIXELS or --direction left,up --pixels N")
        checks = [
            (self.overlap >= 0, f"--overlap {self.overlap} must be >= 0"),
            (self.seam_blend >= 0, f"--seam_blend {self.seam_blend} must be >= 0"),
            (self.max_step >= 1, f"--max_step {self.max_step} must be at least 1"),
            (self.fill in FILLS, f"--fill {self.fill!r} must be one of {', '.join(FILLS)}"),
            (self.max_canvas >= 1 and self.max_megapixels > 0, "--max_canvas and --max_megapixels must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise InpaintKitError(message)
        return self

    def check_canvas(self, h: int, w: int, name: str = "image") -> tuple[int, int]:
        """The extended canvas ``(H, W)`` for an ``h x w`` image; raises if it exceeds the limits."""
        e = self.extension()
        ch, cw = h + e["up"] + e["down"], w + e["left"] + e["right"]
        if max(ch, cw) > self.max_canvas or ch * cw > self.max_megapixels * 1e6:
            raise InpaintKitError(
                f"{name}: extending {w}x{h} to {cw}x{ch} exceeds the canvas limit ({self.max_canvas} px per side, "
                f"{self.max_megapixels:g} MP); extend less or raise --max_canvas / --max_megapixels")
        return ch, cw


# --- 1. The canvas -----------------------------------------------------------------------------


def extend_canvas(image: np.ndarray, left: int = 0, right: int = 0, up: int = 0, down: int = 0,
                  fill: str = "edge") -> tuple[np.ndarray, np.ndarray]:
    """Place ``image`` (H, W, 3) at offset ``(left, up)`` of a ``(H+up+down, W+left+right, 3)`` canvas.

    Returns ``(canvas, new)`` where ``new`` is the bool mask of the added area (True = to generate).
    The new area starts as ``fill``: ``edge`` replicates the border pixels outwards, ``blur`` smooths
    those replicated colours, ``noise`` adds strong fixed-seed noise to the blurred colours, ``gray``
    is flat mid-grey. The original's pixels are copied bit for bit."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    h, w = image.shape[:2]
    pad = ((up, down), (left, right), (0, 0))
    if fill == "gray":
        canvas = np.pad(image, pad, mode="constant", constant_values=128)
    else:
        canvas = np.pad(image, pad, mode="edge")
    if fill in ("blur", "noise"):
        canvas = _blurred(canvas, sigma=max(2.0, 0.1 * min(h, w)))
    if fill == "noise":
        # A fixed seed: the fill is shared by all rows, so a row must not depend on which rows run.
        noise = np.random.default_rng(0).normal(0.0, 48.0, canvas.shape)
        canvas = np.clip(canvas + noise, 0, 255).astype(np.uint8)
    new = np.ones(canvas.shape[:2], bool)
    new[up : up + h, left : left + w] = False
    canvas[~new] = image.reshape(-1, 3)  # exact original (blurring touched it)
    return canvas, new


def _blurred(image: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REPLICATE)


# --- 2. The plan -------------------------------------------------------------------------------

Box = tuple[int, int, int, int]  # (top, left, bottom, right) in canvas pixels, exclusive ends


@dataclass(frozen=True)
class Window:
    """One model call: the model sees ``box`` and generates the pixels of ``new`` (inside ``box``);
    everything else in ``box`` is already final. ``pass_index`` counts strips over the whole plan."""

    direction: str
    pass_index: int
    box: Box
    new: Box

    @property
    def shape(self) -> tuple[int, int]:
        return self.box[2] - self.box[0], self.box[3] - self.box[1]

    def mask(self) -> np.ndarray:
        """Bool ``(h, w)`` over ``box``: True on the pixels this call generates."""
        t, l, _, _ = self.box
        m = np.zeros(self.shape, bool)
        m[self.new[0] - t : self.new[2] - t, self.new[1] - l : self.new[3] - l] = True
        return m


def even_split(total: int, n: int) -> list[int]:
    """``total`` cut into ``n`` integer parts differing by at most one, larger ones first."""
    return [total // n + (1 if i < total % n else 0) for i in range(n)]


def strip_sizes(total: int, max_step: int) -> list[int]:
    """Split ``total`` new pixels into the fewest strips of at most ``max_step``, as even as possible
    (600 with 256 gives 200, 200, 200: no thin last sliver with little to go on)."""
    return even_split(total, math.ceil(total / max_step))


def segments(start: int, end: int, span: int, overlap: int) -> list[tuple[int, int, int]]:
    """Cut ``[start, end)`` along a strip into pieces whose windows are at most ``span`` long.

    Returns ``(context_start, new_start, new_end)``: piece j > 0 also sees ``overlap`` pixels of
    piece j-1 (generated just before), so neighbouring pieces continue each other."""
    length = end - start
    if length <= span:
        return [(start, start, end)]
    o = min(overlap, span // 2)  # keep at least half of every window new, so pieces make progress
    out, pos = [], start
    for size in even_split(length, math.ceil(length / (span - o))):
        out.append((max(start, pos - o), pos, pos + size))
        pos += size
    return out


def plan_windows(h: int, w: int, left: int = 0, right: int = 0, up: int = 0, down: int = 0,
                 max_step: int = 256, overlap: int = 64, span: int = 768) -> list[Window]:
    """Every model call, in order, to extend an ``h x w`` image (a pure function of sizes).

    Horizontal growth comes first, over the original's rows; vertical growth then runs over the full
    new width, so corners are generated from final pixels and never left as gaps. Each strip adds at
    most ``max_step`` pixels and its window reaches ``overlap`` pixels back into final pixels, so on
    the growing side a window is at most ``max_step + overlap`` long. Along the strip, windows are at
    most ``max(span, max_step + overlap)`` long; longer strips are generated in overlapping pieces."""
    span = max(span, max_step + overlap)
    top, bottom, lft, rgt = up, up + h, left, left + w  # the final region so far
    windows: list[Window] = []
    for direction, amount in (("left", left), ("right", right), ("up", up), ("down", down)):
        for step in strip_sizes(amount, max_step) if amount else []:
            k = len({win.pass_index for win in windows})
            if direction in ("left", "right"):
                along = segments(top, bottom, span, overlap)
                if direction == "left":
                    box_cols, new_cols = (lft - step, min(lft + overlap, rgt)), (lft - step, lft)
                    lft -= step
                else:
                    box_cols, new_cols = (max(rgt - overlap, lft), rgt + step), (rgt, rgt + step)
                    rgt += step
                for ctx, s, e in along:
                    windows.append(Window(direction, k, (ctx, box_cols[0], e, box_cols[1]),
                                          (s, new_cols[0], e, new_cols[1])))
            else:
                along = segments(lft, rgt, span, overlap)
                if direction == "up":
                    box_rows, new_rows = (top - step, min(top + overlap, bottom)), (top - step, top)
                    top -= step
                else:
                    box_rows, new_rows = (max(bottom - overlap, top), bottom + step), (bottom, bottom + step)
                    bottom += step
                for ctx, s, e in along:
                    windows.append(Window(direction, k, (box_rows[0], ctx, box_rows[1], e),
                                          (new_rows[0], s, new_rows[1], e)))
    return windows


# --- 3. The seam -------------------------------------------------------------------------------


def blend_new(crop: np.ndarray, result: np.ndarray, new: np.ndarray, blur: int) -> np.ndarray:
    """Combine a model result with the window it was made from: pixels outside ``new`` stay ``crop``'s
    bit for bit; inside, the result is shifted by the model's own error on the known pixels
    (``crop - result``): next to the border by the error of the nearest known pixel (lightly smoothed),
    fading linearly over ``blur`` new pixels to the mean error of the window. So the feathering lives
    only on the new side, a model that returns the known pixels with a colour cast (an SD VAE does)
    still meets them without a step, and the cast does not pile up strip after strip. ``blur`` 0
    pastes the model's pixels untouched. ``crop`` and ``result`` are both ``uint8`` (the result rounded once)
    or both float in [0, 1] (the engines' fills: no rounding here)."""
    out = crop.copy()
    if blur <= 0 or new.all():
        out[new] = result[new]
        return out
    import cv2

    known = ~new
    residual = crop.astype(np.float32) - result.astype(np.float32)  # (h, w, 3), meaningful on known pixels
    # Smooth over known pixels only (normalised convolution), so one noisy pixel does not become a streak.
    weight = cv2.GaussianBlur(known.astype(np.float32), (0, 0), 1.5)
    smooth = cv2.GaussianBlur(residual * known[..., None], (0, 0), 1.5) / np.maximum(weight, 1e-6)[..., None]
    # For every new pixel: distance to, and index of, the nearest known pixel.
    dist, labels = cv2.distanceTransformWithLabels(new.astype(np.uint8), cv2.DIST_L2, 5,
                                                   labelType=cv2.DIST_LABEL_PIXEL)
    lut = np.zeros((labels.max() + 1, 3), np.float32)
    lut[labels[known]] = smooth[known]
    mean = residual[known].mean(axis=0)  # (3,) the window's colour cast
    fade = np.clip(1.0 - (dist - 1.0) / float(blur), 0.0, 1.0)[..., None]  # 1 next to the border, 0 beyond blur
    correction = mean + fade * (lut[labels] - mean)
    shifted = result.astype(np.float32) + correction
    if out.dtype == np.uint8:
        out[new] = np.clip(np.rint(shifted[new]), 0, 255).astype(np.uint8)
    else:
        out[new] = np.clip(shifted[new], 0.0, 1.0)
    return out


# --- The runner --------------------------------------------------------------------------------


@dataclass
class Call:
    """Record of one model call: its window and the working size the model saw, (h, w)."""

    window: Window
    work_hw: tuple[int, int]
    batched_rows: int  # rows filled by this one engine call (all of them: diverged rows bring their own crops)


@dataclass
class OutpaintJob(Job):
    """A :class:`Job` whose ``image`` is the filled canvas and ``mask`` the new area, plus the calls."""

    original: np.ndarray = None  # (H, W, 3) uint8, the user's image
    offset: tuple[int, int] = (0, 0)  # (left, up) of the original on the canvas
    calls: list[Call] = field(default_factory=list)

    def row_master(self) -> Master | None:
        """The source file extended to the canvas (:func:`extend_master`): what each row is written as."""
        if self.master is None:
            return None
        (h, w), (ch, cw), (left, up) = self.original.shape[:2], self.image.shape[:2], self.offset
        return extend_master(self.master, left, cw - w - left, up, ch - h - up)


def extend_master(master: Master, left: int = 0, right: int = 0, up: int = 0, down: int = 0) -> Master:
    """``master`` on a canvas extended by the given pixels on each displayed side: its stored values at
    offset ``(left, up)`` of the displayed canvas, bit for bit; the new area zero (every new pixel is then
    filled) with opaque alpha; the same orientation (the canvas stored as the source is), profile,
    resolution and metadata."""
    from dataclasses import replace

    from .orientation import unorient

    shown = master.display()
    h, w, c = shown.shape
    canvas = np.zeros((h + up + down, w + left + right, c), master.pixels.dtype)
    if master.mode.endswith("A"):
        canvas[..., -1] = master.maxval  # generated pixels are opaque
    canvas[up:up + h, left:left + w] = shown
    return replace(master, pixels=np.ascontiguousarray(unorient(canvas, master.orientation)))


def outpaint_array(engine: Engine, cfg: OutpaintConfig, image: np.ndarray, seeds: Sequence[int],
                   name: str = "image", progress: bool = True) -> OutpaintJob:
    """Extend ``image`` once per seed along ``cfg``'s plan. Results are exactly the canvas size, with
    the original at ``(left, up)`` bit for bit; each row's new pixels are its fill (``job.fills``, float32 as
    the engine made them: the model sees them rounded to 8 bits as context for the next strips, but the
    fill is quantised once, when written)."""
    h, w = image.shape[:2]
    cfg.check_canvas(h, w, name)
    e = cfg.extension()
    canvas, new_area = extend_canvas(image, **e, fill=cfg.fill)
    plan = plan_windows(h, w, **e, max_step=cfg.max_step, overlap=cfg.overlap, span=cfg.size)
    rows = [to_float(canvas) for _ in seeds]  # (H, W, 3) float32 in [0, 1] per row
    sampling, calls = cfg.sampling(), []
    for n, win in enumerate(tqdm(plan, desc=f"outpaint {name}", unit="call", disable=not (progress and interactive()), leave=False)):
        t, l, b, r = win.box
        crops = [row[t:b, l:r] for row in rows]  # views: written back only after all rows are filled
        results, work_hw, batched = _fill_window(engine, cfg, sampling, win, crops, [call_seed(s, n) for s in seeds])
        for row, res in zip(rows, results):
            row[t:b, l:r] = res
        calls.append(Call(win, work_hw, batched))
    largest = max((c.work_hw for c in calls), key=lambda hw: hw[0] * hw[1], default=None)
    ys, xs = np.nonzero(new_area)  # every new pixel is fill
    fills = [Fill(ys, xs, row[ys, xs]) for row in rows]
    del rows
    return OutpaintJob(name, canvas, new_area, list(seeds), ModelRows(canvas, fills), largest, fills=fills,
                       original=image, offset=(e["left"], e["up"]), calls=calls)


def _fill_window(engine: Engine, cfg: OutpaintConfig, sampling, win: Window, crops: list[np.ndarray],
                 seeds: list[int]) -> tuple[list[np.ndarray], tuple[int, int], int]:
    """Generate ``win``'s new pixels in every row's crop, all rows in ONE engine call (each row brings
    its own crop once rows have diverged). Returns the blended crops, the working size and the rows
    served by the call."""
    mask = win.mask()
    works = [to_work(to_uint8(c), mask, cfg.size, engine.multiple) for c in crops]  # the model sees 8 bits
    work_mask = works[0][1]  # the same window for every row, so the same mask
    shared = all(np.array_equal(crops[0], c) for c in crops[1:])  # first strip: one encoding for all
    image = works[0][0] if shared else [w for w, _ in works]
    filled = fill_rows(engine, image, work_mask, seeds, sampling, progress=False)  # float32 fills
    results = [blend_new(c, resize_image(f, win.shape), mask, cfg.seam_blend) for c, f in zip(crops, filled)]
    return results, work_mask.shape, len(crops)


def job_metadata(job: OutpaintJob) -> dict:
    """Outpaint-specific parameters recorded beside :func:`inpaint_kit.inpaint.metadata`'s."""
    h, w = job.original.shape[:2]
    return {
        "original_size": [int(w), int(h)],
        "offset": list(job.offset),
        "calls": [[*c.window.box, *c.work_hw] for c in job.calls],  # top, left, bottom, right, work h, work w
        "passes": len({c.window.pass_index for c in job.calls}),
    }


def outpaint_file(cfg: OutpaintConfig, image_path, output, engine: Engine | None = None, seeds=None,
                  progress: bool = True, load_engine: Callable[[OutpaintConfig], Engine] | None = None,
                  source: str | None = None) -> tuple[OutpaintJob, Engine, list[Path], dict]:
    """The outpaint job on one file: read the image at full depth (:func:`inpaint_kit.inpaint.read_source`)
    and check the extended canvas and the row format (a bad file, an oversized canvas or a format the file
    cannot be written in fails before any model loads), load the engine unless given (``load_engine(cfg)``,
    default ``cfg.load_engine()``), extend the image once per seed (``seeds``, default the config's) and
    write the collage (and, with ``save_rows``, the rows as the source's drop-in extensions; ``record``,
    ``mark_fills``) to ``output`` with the job's metadata, the image recorded as ``source`` (default its
    path). Returns ``(job, engine, paths written, metadata)``."""
    output = Path(output)
    master, image = read_source(image_path, cfg.max_image_megapixels, cfg.colour_management == "on")
    cfg.check_canvas(*image.shape[:2], name=str(image_path))  # before loading any model
    output_format(master, cfg.output_format)
    if engine is None:
        engine = load_engine(cfg) if load_engine is not None else cfg.load_engine()
    job = outpaint_array(engine, cfg, image, seeds or cfg.seeds(), Path(image_path).name, progress)
    job.sources = {"image": source or str(image_path)}
    job.inputs = input_digests({"image": image_path}, cfg)
    job.master = master
    written, meta = write_job(job, cfg, engine, output, stem=output.stem, **job_metadata(job))
    return job, engine, written, meta


def default_stem(image_path, cfg: OutpaintConfig) -> str:
    """Single-image default output stem: ``<stem>_outpaint_<side><px>...`` (e.g. ``chelsea_outpaint_left256_up128``),
    so runs extending the same image differently never target one file."""
    sides = "_".join(f"{d}{px}" for d, px in cfg.extension().items() if px)
    return f"{Path(image_path).stem}{SUFFIX}_{sides}"


def run_outpaint_batch(cfg: OutpaintConfig, imgs_dir, output_dir, engine: Engine | None = None,
                       progress: bool = True, shard=None) -> BatchReport:
    """Extend every image under ``imgs_dir`` into ``<output_dir>/<sub/folders>/<stem>_outpaint.png``:
    the engine is loaded once (not at all if everything is done), outputs done with the same settings
    are skipped unless ``cfg.overwrite`` (others are reported as differing), bad items are reported and
    the run goes on, one manifest line per item. Images of one folder sharing a stem get
    ``<stem>_<extension>_outpaint.png``."""
    output_dir = Path(output_dir)
    images = scan(imgs_dir)
    if not images:
        raise InpaintKitError(f"{imgs_dir}: no images found; pass a folder of .png/.jpg/... files")
    names, clashes = output_stems(images)
    items, stems = [], {}
    for image_path in images:
        rel = image_path.relative_to(imgs_dir)
        out = output_dir / rel.parent / f"{names[image_path]}{SUFFIX}.png"
        stems[out] = out.stem
        items.append((image_path, out, {"image": str(image_path), "output": str(out)}))
    outs = {image: out for image, out, _ in items}

    def work(image_path: Path, out: Path, seeds):
        nonlocal engine
        _, engine, written, meta = outpaint_file(cfg, image_path, out, engine, seeds, progress)
        return written, meta

    report = BatchReport(clashes=[(group, [outs[i] for i in group]) for group in clashes])
    return run_items(items, output_dir, cfg.overwrite, work, progress, report, want=request(cfg),
                     expected=lambda out, meta: job_paths(cfg, out, stems[out], meta.get("seeds", []),
                                                          meta.get("row_format", "png")), shard=shard,
                     inputs=inputs_of(cfg))
