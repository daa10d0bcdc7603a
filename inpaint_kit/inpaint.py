"""One inpainting job, the same for every engine: load -> mask -> working canvas -> engine -> paste back
-> collage. :class:`InferConfig` is the single typed request that the CLI, the batch runner, the UI and
the Python API all build; its engine options come from the engine registry
(:mod:`inpaint_kit.engine.registry`).

    cfg = InferConfig(model="builtin", rows=3, seed=7).validate()
    job, engine = inpaint_file(cfg, "imgs/a.png", "masks/a.png")
    write_job(job, cfg, engine, "outputs/a_collage.png")
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import ClassVar
from pathlib import Path

import numpy as np

from .version import __version__
from .collage import bands, sheet_shape
from .engine import DEFAULT_MODEL, Canvas, Engine, Sampling, call_seed, registry
from .errors import UsageError
from .fill import Fill
from .geometry import (AREAS, LARGE, Region, compose_values, crop_to_work, dilate_mask, plan_area, resolve_area,
                       split_by_width)
from .images import (MAX_IMAGE_MEGAPIXELS, Master, extension, load_mask_channels, output_format, read_image,
                     save_png_bands, write_image)
from .infotext import a1111
from .masks import MASK_MODES, feather, from_channels
from .seams import BLENDS, COLOUR_MATCHES, fix_seams
from .thinfill import THIN_FILLS, fill_thin, is_thinfill_model, thin_filler
from .record import input_digests

MAX_WORK_MEGAPIXELS = 4.2  # default limit of a working canvas: 2048 x 2048
OUTPUT_FORMATS = ("auto", "png", "tiff")
DETECT_MODES = ("auto", "union")  # the mask is the detected damage / the mask file plus the detected damage
DETECT_FLAGS = ("detect_model", "detect_threshold", "detect_min_area", "detect_dilate")

log = logging.getLogger("inpaint_kit")


@dataclass
class InferConfig(registry.options_dataclass()):
    """Every parameter of an inference run. ``validate()`` raises on bad values, never rewrites them.

    Besides the fields below, every registered engine's options are fields (from the registry's
    :func:`~inpaint_kit.engine.registry.options_dataclass`): SD's ``scheduler``, ``lora``, ``lora_scale``,
    ``cache_dir``, ``controlnet``, ``controlnet_scale``; ``ddpm`` (a :class:`~inpaint_kit.engine.options.DDPMOptions`,
    only for ``--model builtin`` or a trained DDPM folder); one field per other engine with options. Options
    of an engine other than ``model``'s are an error (:func:`~inpaint_kit.engine.registry.check_config`)."""

    NOT_RECORDED: ClassVar[tuple[str, ...]] = ()  # fields a subclass's job does not use (kept out of metadata)

    model: str = DEFAULT_MODEL
    size: int = 768
    steps: int = 30
    guidance: float = 5.0
    prompt: str = ""
    negative_prompt: str = ""
    mask_mode: str = "black"
    rows: int = 4
    seed: int = 0
    collage_spacing_h: int = 20
    collage_spacing_v: int = 20
    mask_blur: int = 0
    device: str | None = None
    dtype: str = "auto"
    save_rows: bool = False
    overwrite: bool = False
    area: str = "auto"  # where the model works: auto | full | crops (see inpaint_kit.geometry)
    padding: int = 64  # crops: context pixels around the damage
    large_windows: str = "tile"  # crops: windows longer than size are tiled at native resolution, or scaled
    mask_dilate: int = 0  # grow the repair region by N pixels at the working scale (stained halos)
    # Seams and thin damage (issue 22): see inpaint_kit.seams and docs/cracks.md.
    blend: str = "laplacian"  # seam correction inside the mask: none | feather | laplacian | poisson
    colour_match: str = "off"  # off | local: colour correction from the known pixels around each region
    thin_width: float = 13.0  # damage components at most this wide (px) go to the thin filler; 0 = none (measured: docs/benchmarks.md)
    thin_fill: str = "auto"  # auto (the thin-filler network) | model (--model fills them) | telea | ns | builtin
    thin_model: str | None = None  # a train-thinfill model folder for --thin_fill auto (default: the shipped one)
    # Limits checked before any model loads (not recorded: they never change a result).
    max_work_megapixels: float = MAX_WORK_MEGAPIXELS  # largest working canvas (--size squared bounds it)
    max_image_megapixels: float = MAX_IMAGE_MEGAPIXELS  # largest input image, checked before decoding
    # Archive masters (docs/archive.md): rows as drop-in replacements of the input file.
    output_format: str = "auto"  # rows: auto (TIFF -> TIFF, else PNG) | png | tiff
    colour_management: str = "on"  # non-sRGB ICC profiles converted to sRGB for the model and back
    record: bool = False  # the conservator's record: mask, fill layers, <stem>_record.json
    mark_fills: bool = False  # a documentation copy of each row with every filled region outlined
    # Damage detection (docs/detection.md): None = the mask file alone; "auto" = the detected damage is the
    # mask (--mask auto, --batch_masks_dir auto); "union" = the mask file plus the detected damage (--detect).
    # The detector options are None when not given (an error without detection: never silently ignored).
    detect: str | None = None
    detect_model: str | None = None  # builtin (the default when detecting) | classical | a train-detect folder
    detect_threshold: float | None = None  # None = the detector's own (chosen on its validation split)
    detect_min_area: int | None = None  # drop detected specks smaller than N pixels (None = 0)
    detect_dilate: int | None = None  # grow the detected damage by N pixels (None = 0)

    def validate(self) -> "InferConfig":
        checks = [
            (self.size >= 64, f"--size {self.size} is too small; use at least 64"),
            (self.steps >= 1, f"--steps {self.steps} must be at least 1"),
            (self.rows >= 1, f"--rows {self.rows} must be at least 1"),
            (self.seed >= 0, f"--seed {self.seed} must be >= 0 (0 = random seeds)"),
            (self.guidance >= 0, f"--guidance {self.guidance} must be >= 0"),
            (self.mask_mode in MASK_MODES, f"--mask_mode {self.mask_mode!r} must be one of {MASK_MODES}"),
            (self.collage_spacing_h >= 0 and self.collage_spacing_v >= 0, "collage spacing must be >= 0"),
            (self.mask_blur >= 0, f"--mask_blur {self.mask_blur} must be >= 0"),
            (self.area in AREAS, f"--area {self.area!r} must be one of {', '.join(AREAS)}"),
            (self.large_windows in LARGE, f"--large_windows {self.large_windows!r} must be one of {', '.join(LARGE)}"),
            (self.padding >= 0, f"--padding {self.padding} must be >= 0 (context pixels around the damage)"),
            (self.mask_dilate >= 0, f"--mask_dilate {self.mask_dilate} must be >= 0 (pixels at the working scale)"),
            (self.max_work_megapixels > 0 and self.max_image_megapixels > 0,
             "--max_work_megapixels and --max_image_megapixels must be positive"),
            (self.size * self.size <= self.max_work_megapixels * 1e6,
             f"--size {self.size}: a {self.size}x{self.size} working canvas is {self.size ** 2 / 1e6:.1f} MP, over the "
             f"{self.max_work_megapixels:g} MP limit; lower --size (crops mode keeps native resolution) or raise "
             f"--max_work_megapixels"),
            (self.blend in BLENDS, f"--blend {self.blend!r} must be one of {', '.join(BLENDS)}"),
            (self.colour_match in COLOUR_MATCHES,
             f"--colour_match {self.colour_match!r} must be one of {', '.join(COLOUR_MATCHES)}"),
            (self.thin_width >= 0, f"--thin_width {self.thin_width} must be >= 0 (0 sends all damage to --model)"),
            (self.thin_fill in THIN_FILLS, f"--thin_fill {self.thin_fill!r} must be one of {', '.join(THIN_FILLS)}"),
            (self.thin_model is None or self.thin_fill == "auto",
             f"--thin_model applies only with --thin_fill auto (not {self.thin_fill}); leave it out"),
            (self.thin_model is None or is_thinfill_model(self.thin_model),
             f"--thin_model {self.thin_model}: not a thin-filler model folder (config.json marked thinfill); "
             "train one with inpaint-kit train-thinfill"),
            (self.output_format in OUTPUT_FORMATS,
             f"--output_format {self.output_format!r} must be one of {', '.join(OUTPUT_FORMATS)}"),
            (self.colour_management in ("on", "off"), f"--colour_management {self.colour_management!r} must be on or off"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        self.check_detection()
        registry.check_config(self)  # engine options: their own checks, then none of another engine's
        return self

    def check_detection(self) -> None:
        """The detection settings (no model loaded): a detector option without detection is an error, and
        ``detect_model`` must be builtin, classical or a detector folder."""
        given = [f"--{name}" for name in DETECT_FLAGS if getattr(self, name) is not None]
        if self.detect is None:
            if given:
                raise UsageError(f"{', '.join(given)}: detector options apply with --mask auto, --batch_masks_dir "
                                 "auto or --detect; add one of those or leave them out")
            return
        checks = [
            (self.detect in DETECT_MODES, f"detect {self.detect!r} must be one of {', '.join(DETECT_MODES)}"),
            (self.detect_threshold is None or 0 < self.detect_threshold < 1,
             f"--detect_threshold {self.detect_threshold}: must be between 0 and 1 (exclusive)"),
            ((self.detect_min_area or 0) >= 0, f"--detect_min_area {self.detect_min_area}: must be >= 0 (pixels)"),
            ((self.detect_dilate or 0) >= 0, f"--detect_dilate {self.detect_dilate}: must be >= 0 (pixels)"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        from .detect.detector import check_model

        check_model(self.detect_model or "builtin", flag="--detect_model")

    def load_detector(self):
        """The damage detector of ``detect_model`` (:func:`inpaint_kit.detect.load_detector`) on ``device``
        (the classical detector runs on the CPU). Load it once and pass it to every :func:`inpaint_file`."""
        from .detect.detector import load_detector

        model = self.detect_model or "builtin"
        return load_detector(model, None if model == "classical" else self.device, self.detect_threshold)

    def engine_spec(self) -> registry.EngineSpec:
        """The registered engine that ``model`` (with these options) selects."""
        return registry.find(self.model, lambda spec: registry.spec_options(spec, self))

    def engine_options(self):
        """The options of :meth:`engine_spec`'s engine (None for an engine without options)."""
        return registry.spec_options(self.engine_spec(), self)

    def seeds(self) -> list[int]:
        """Row i uses ``seed + i``; seed 0 draws random seeds (which are recorded in the outputs)."""
        if self.seed > 0:
            return [self.seed + i for i in range(self.rows)]
        return [secrets.randbelow(2**31 - 1) + 1 for _ in range(self.rows)]

    def sampling(self) -> Sampling:
        return Sampling(self.prompt, self.negative_prompt, self.steps, self.guidance)

    def load_engine(self) -> Engine:
        """Load the engine ``model`` selects, with its options from this config."""
        return registry.load_engine(self.model, device=self.device, dtype=self.dtype, options=self.engine_options())


@dataclass
class Job:
    """One image's inputs and results, at the user's size (display orientation)."""

    name: str
    image: np.ndarray  # (H, W, 3) uint8: the model's view (sRGB, EXIF orientation applied)
    mask: np.ndarray  # (H, W) bool, True = repaint (as repaired: after --mask_dilate)
    seeds: list[int]
    results: Sequence[np.ndarray]  # one (H, W, 3) uint8 per seed, in the model's space (collage, API)
    work_hw: tuple[int, int] | None  # the largest working size; None when the model was not called
    area: str | None = None  # the --area mode used (auto resolved)
    regions: list[Region] = field(default_factory=list)  # where the model worked
    sources: dict = field(default_factory=dict)  # input files as given ({"image": ..., "mask": ...})
    inputs: dict = field(default_factory=dict)  # their and the models' sha256 (record.input_digests): resume compares
    damage: dict = field(default_factory=dict)  # which filler took each damage component (route_damage)
    fills: list[Fill] = field(default_factory=list)  # per row, the restored values (inpaint_kit.fill)
    master: Master | None = None  # the input file at full depth: rows are written as its drop-in replacements
    detection: dict | None = None  # what the damage detector did (--mask auto / --detect): recorded in the outputs

    def row_master(self) -> Master | None:
        """What each row is written as (depth, mode, profile, metadata; stored values outside the fill): the
        input file itself here; an outpainted canvas extends it (:class:`inpaint_kit.outpaint.OutpaintJob`)."""
        return self.master


class ModelRows(Sequence):
    """``Job.results`` built on demand from the model's view and the rows' fills, one at a time: a large
    scan's rows never all sit in memory (the collage and the API read them in turn)."""

    def __init__(self, image: np.ndarray, fills: list[Fill], keep: bool = True):
        self.image, self.fills = image, fills
        self.kept: dict[int, np.ndarray] | None = {} if keep else None  # keep=False: nothing held (collage)

    def __len__(self) -> int:
        return len(self.fills)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        i = range(len(self))[i]
        if self.kept is None:
            return self.fills[i].on_model(self.image)
        if i not in self.kept:  # the same array every time (viewers compare by identity)
            self.kept[i] = self.fills[i].on_model(self.image)
        return self.kept[i]


def load_pair(image_path: str | Path, mask_path: str | Path, mask_mode: str,
              max_megapixels: float = MAX_IMAGE_MEGAPIXELS) -> tuple[np.ndarray, np.ndarray]:
    """``(image, mask)`` of :func:`read_pair` (the model's sRGB view and the repair mask)."""
    _, image, mask = read_pair(image_path, mask_path, mask_mode, max_megapixels)
    return image, mask


def read_pair(image_path: str | Path, mask_path: str | Path, mask_mode: str,
              max_megapixels: float = MAX_IMAGE_MEGAPIXELS,
              colour_management: bool = True) -> tuple[Master, np.ndarray, np.ndarray]:
    """Read an image file (at full depth, :func:`images.read_image`) and its mask file. Returns the
    :class:`~inpaint_kit.images.Master`, the model's view of it (sRGB RGB uint8, display orientation,
    :func:`colour.model_rgb`) and the mask: binarized, converted by ``mask_mode`` (or read from its alpha
    channel when only that is painted, :func:`masks.from_channels`) and, when the sizes differ, resized to
    the image so that no marked pixel is lost (:func:`geometry.cover_mask`). The image itself is never
    changed. Files over ``max_megapixels`` are refused before decoding."""
    from .geometry import cover_mask

    max_pixels = int(max_megapixels * 1e6)
    master, image = read_source(image_path, max_megapixels, colour_management)
    mask = from_channels(*load_mask_channels(mask_path, max_pixels), mask_mode, name=str(mask_path))
    if mask.shape != image.shape[:2]:
        log.info("%s: mask %s resized to the image's %s", mask_path, mask.shape[::-1], image.shape[1::-1])
        mask = cover_mask(mask, image.shape[:2])
    return master, image, mask


def read_source(image_path: str | Path, max_megapixels: float = MAX_IMAGE_MEGAPIXELS,
                colour_management: bool = True) -> tuple[Master, np.ndarray]:
    """An image file at full depth (:func:`images.read_image`, its notes logged) and the model's view of it
    (sRGB RGB uint8, display orientation, :func:`colour.model_rgb`). Files over ``max_megapixels`` are
    refused before decoding."""
    from .colour import model_rgb

    master = read_image(image_path, int(max_megapixels * 1e6))
    for note in master.notes:
        log.warning("%s: %s", image_path, note)
    return master, model_rgb(master, colour_management)


def repair_mask(cfg: InferConfig, mask: np.ndarray) -> np.ndarray:
    """The mask actually repaired: ``mask`` grown by ``cfg.mask_dilate`` working pixels (image pixels in
    crops mode, where the model works at native resolution; scaled by image/working size in full mode)."""
    if cfg.mask_dilate <= 0:
        return mask
    h, w = mask.shape
    per_work_pixel = max(h, w) / cfg.size if resolve_area(cfg.area, h, w, cfg.size) == "full" else 1.0
    return dilate_mask(mask, max(1, round(cfg.mask_dilate * per_work_pixel)))


def inpaint_array(engine: Engine | None, cfg: InferConfig, image: np.ndarray, mask: np.ndarray,
                  seeds: list[int], name: str = "image", progress: bool = True) -> Job:
    """Fill ``mask`` once per seed; results are at the image's size and outside the (dilated) mask and its
    ``mask_blur`` band equal to the image bit for bit.

    Thin damage first (:func:`route_damage`: components at most ``thin_width`` px wide go to the thin
    filler, once per image, or per row with ``thin_fill builtin``), then the model fills the rest where
    :func:`geometry.plan_area` says it works: every region of every row is one
    :class:`~inpaint_kit.engine.Canvas`; regions of one working size go through the engine together (rows x
    regions batched). Region k of the row with seed s uses seed ``call_seed(s, k)``, so a row is the same
    alone or batched, in every area mode. Last, the seams of the model's fill (:mod:`inpaint_kit.seams`),
    inside the wide damage.
    Each row's fill is kept as float32 values at the repair pixels (:class:`~inpaint_kit.fill.Fill`),
    quantised once, when written."""
    if not mask.any():
        log.warning("%s: the mask marks nothing to repair; writing the original unchanged", name)
        none = np.zeros(0, np.intp)
        fills = [Fill(none, none, np.zeros((0, 3), np.float32)) for _ in seeds]
        return Job(name, image, mask, seeds, ModelRows(image, fills), None, fills=fills)
    mask = repair_mask(cfg, mask)
    alpha = feather(mask, cfg.mask_blur) if cfg.mask_blur > 0 else None  # (H, W) blend weights, 1 inside
    ys, xs = np.nonzero(alpha > 0 if alpha is not None else mask)  # the pixels a fill changes (feather band too)
    weights = alpha[ys, xs] if alpha is not None else None
    thin, wide, how = route_damage(cfg, mask)
    bases, values = fill_thin_damage(engine, cfg, image, mask, thin, how, seeds, ys, xs, progress)
    area, regions = None, []
    if wide.any():
        area, regions, filled = fill_regions(engine, cfg, bases, wide, seeds, progress)
        # the model's pixels: all of them without thin damage (the pipeline of before, exactly); beside thin
        # damage, the wide damage and its feather band only (the thin filler keeps its own)
        sel = np.ones(ys.size, bool) if not thin.any() else \
            (~thin[ys, xs]) & (dilate_mask(wide, cfg.mask_blur + 1) if cfg.mask_blur > 0 else wide)[ys, xs]
        out = []
        for base, v, row in zip(bases, values, filled):
            v = v.copy()
            # Only the fill's pixels are composed, as float32 (the engines' precision: quantised once, when written).
            v[sel] = compose_values(base, ys[sel], xs[sel], regions, row)
            out.append(v)
        values = out
    values = fix_seam_values(cfg, bases, wide, ys, xs, values)
    fills = [Fill(ys, xs, v, weights) for v in values]
    largest = max((r.work_hw for r in regions), key=lambda hw: hw[0] * hw[1]) if regions else None
    return Job(name, image, mask, seeds, ModelRows(image, fills), largest, area, regions,
               damage=damage_record(mask, thin, cfg.thin_width, how), fills=fills)


def fix_seam_values(cfg: InferConfig, bases: list[np.ndarray], wide: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                    values: list[np.ndarray]) -> list[np.ndarray]:
    """Each row's values ``(N, 3)`` at ``(ys, xs)`` with the seams of the model's fill corrected
    (``cfg.blend``, ``cfg.colour_match``: :func:`seams.fix_seams` in float) inside ``wide`` only, against the
    row's base (the image with its thin damage filled). The thin filler's fill is left as it is (it is
    trained for fidelity up to its edges: a seam correction cost it 0.6-1 dB on cracks, docs/benchmarks.md),
    and so is ``--mask_blur``'s band outside the mask. Rows sharing one array are corrected once."""
    if (cfg.blend == "none" and cfg.colour_match == "off") or not wide.any():
        return values
    inside = wide[ys, xs]
    done: dict[int, np.ndarray] = {}
    for base, v in zip(bases, values):
        if id(v) not in done:
            row = base.astype(np.float32) / np.float32(255)  # (H, W, 3): the seams need the surroundings
            row[ys, xs] = v
            fixed = fix_seams(base, row, wide, cfg.blend, cfg.colour_match)
            out = v.copy()
            out[inside] = fixed[ys[inside], xs[inside]]
            done[id(v)] = out
    return [done[id(v)] for v in values]


def fill_regions(engine: Engine, cfg: InferConfig, bases: list[np.ndarray], mask: np.ndarray, seeds: list[int],
                 progress: bool, seed_offset: int = 0) -> tuple[str, list[Region], list[list[np.ndarray]]]:
    """The model's pass: ``(area, regions, filled)``: ``mask`` filled in each row's base image (RGB uint8, one
    per seed; rows may share one array) in the regions of :func:`geometry.plan_area`; ``filled[i][k]`` is
    row i's float32 fill of region k at its working size. Region k of the row with seed s uses
    ``call_seed(s, seed_offset + k)``."""
    area, regions = plan_area(mask, cfg.area, cfg.size, cfg.padding, engine.multiple, cfg.large_windows)
    crops: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}  # rows sharing a base share its crops
    for base in bases:
        for k, r in enumerate(regions):
            if (id(base), k) not in crops:
                crops[(id(base), k)] = crop_to_work(base, mask, r)
    filled: list[list[np.ndarray | None]] = [[None] * len(regions) for _ in seeds]
    by_size: dict[tuple[int, int], list[int]] = {}
    for k, r in enumerate(regions):
        by_size.setdefault(r.work_hw, []).append(k)
    for ks in by_size.values():
        items = [(i, k) for i in range(len(seeds)) for k in ks]
        canvases = [Canvas(*crops[(id(bases[i]), k)], call_seed(seeds[i], seed_offset + k)) for i, k in items]
        for (i, k), result in zip(items, engine.fill(canvases, cfg.sampling(), progress)):
            filled[i][k] = result
    return area, regions, filled


THIN_SEED_OFFSET = 100_000  # the builtin's thin pass draws its noise apart from the model's regions


def route_damage(cfg: InferConfig, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Split ``mask`` by component width (:func:`geometry.split_by_width`, ``cfg.thin_width``):
    ``(thin, wide, filler)``, the filler of the thin part being ``thinfill`` (the network), ``ns``, ``telea``,
    ``builtin``, or ``model`` (no thin part: everything goes to ``--model``)."""
    thin, wide = split_by_width(mask, cfg.thin_width)
    how = cfg.thin_fill
    if how == "auto":
        how = "thinfill" if thin_filler(cfg.thin_model) is not None else "ns"
    if how == "model" or not thin.any():
        return np.zeros_like(mask), mask, "model"
    return thin, wide, how


def fill_thin_damage(engine: Engine | None, cfg: InferConfig, image: np.ndarray, mask: np.ndarray, thin: np.ndarray,
                     how: str, seeds: list[int], ys: np.ndarray, xs: np.ndarray,
                     progress: bool) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The thin pass: ``(bases, values)``, per row the image with its thin damage filled (RGB uint8: what
    the model sees around the wide damage) and the row's float32 values ``(N, 3)`` at ``(ys, xs)`` (the
    thin filler's inside ``thin``, the image's elsewhere). Rows share one array unless the filler is the
    builtin's sampler (one fill per seed)."""
    known = image[ys, xs].astype(np.float32) / np.float32(255)
    if how == "model":
        return [image] * len(seeds), [known] * len(seeds)
    on_thin = thin[ys, xs]
    if how != "builtin":  # deterministic: one fill for every row
        net = thin_filler(cfg.thin_model) if how == "thinfill" else None
        base = fill_thin(image, thin, mask, "net" if how == "thinfill" else how, net)
        v = known.copy()
        v[on_thin] = base[ys[on_thin], xs[on_thin]].astype(np.float32) / np.float32(255)
        return [base] * len(seeds), [v] * len(seeds)
    from .colour import quantise

    builtin = engine if getattr(engine, "model_name", None) == "builtin" else builtin_engine(cfg)
    thin_cfg = replace(cfg, model="builtin", area="crops")  # native windows fitted to the cracks
    _, regions, filled = fill_regions(builtin, thin_cfg, [image] * len(seeds), thin, seeds, progress, THIN_SEED_OFFSET)
    ty, tx = ys[on_thin], xs[on_thin]
    bases, values = [], []
    for row in filled:
        thin_values = compose_values(image, ty, tx, regions, row)
        base = image.copy()
        base[ty, tx] = quantise(thin_values, 8)
        v = known.copy()
        v[on_thin] = thin_values
        bases.append(base)
        values.append(v)
    return bases, values


def damage_record(mask: np.ndarray, thin: np.ndarray, thin_width: float, how: str) -> dict:
    """What took which damage: ``components`` = ``[top, left, bottom, right, width, filler index]`` into
    ``fillers`` (``model`` = ``--model``'s sampler) for each piece of damage as routed: the components of the
    thin part (filler 1) and of the wide part (filler 0; with no thin filler, the mask's components)."""
    import cv2

    from .geometry import component_widths

    fillers = ["model"] if how == "model" else ["model", how]
    comps = []
    for index, part in ((0, mask & ~thin), (1, thin)):
        if not part.any():
            continue
        n, _, stats, _ = cv2.connectedComponentsWithStats(part.astype(np.uint8), connectivity=8)
        _, widths = component_widths(part)  # the same 8-connected labelling
        comps += [[int(y), int(x), int(y + h), int(x + w), round(float(widths[k]), 1), index]
                  for k, (x, y, w, h, _) in enumerate(stats) if k > 0]
    return {"thin_width": thin_width, "fillers": fillers, "components": sorted(comps)}


def builtin_engine(cfg: InferConfig) -> Engine:
    """The builtin model for ``--thin_fill builtin`` beside another ``--model`` (loaded once per process)."""
    key = (cfg.device, cfg.dtype)
    if key not in _BUILTIN:
        _BUILTIN[key] = registry.load_engine("builtin", device=cfg.device, dtype=cfg.dtype)
    return _BUILTIN[key]


_BUILTIN: dict = {}


def inpaint_file(cfg: InferConfig, image_path, mask_path, engine: Engine | None = None,
                 seeds=None, progress=True, detector=None) -> tuple[Job, Engine | None]:
    """:func:`inpaint_array` on files. The inputs are read first, so a bad file fails before any model
    is loaded; the engine is loaded from ``cfg`` only if needed and not given. Returns the job and the
    engine (to reuse for the next file).

    Detection (``cfg.detect``): ``mask_path`` None with ``"auto"`` (the detected damage is the mask), a mask
    file with ``"union"`` (the detected damage is added to it). ``detector`` is a loaded
    :class:`~inpaint_kit.detect.Detector` or a callable returning one (called once the files are read; a
    cached loader keeps one detector for a batch); None loads ``cfg.load_detector()``."""
    if mask_path is None:
        if cfg.detect != "auto":
            raise UsageError(f"{image_path}: no mask; give a mask file or detect the damage (--mask auto)")
        master, image = read_source(image_path, cfg.max_image_megapixels, cfg.colour_management == "on")
        mask = np.zeros(image.shape[:2], bool)
    else:
        master, image, mask = read_pair(image_path, mask_path, cfg.mask_mode, cfg.max_image_megapixels,
                                        cfg.colour_management == "on")
    output_format(master, cfg.output_format)  # a format the file cannot be written in fails before the model
    detection = None
    if cfg.detect:
        if detector is None:
            detector = cfg.load_detector()
        elif callable(detector):
            detector = detector()
        found = detected_mask(cfg, detector, image)
        mask = mask | found
        detection = detection_record(cfg, detector, found)
    if engine is None and mask.any():
        engine = cfg.load_engine()
    job = inpaint_array(engine, cfg, image, mask, seeds or cfg.seeds(), Path(image_path).name, progress)
    job.sources = {"image": str(image_path), "mask": "auto" if mask_path is None else str(mask_path)}
    job.inputs = input_digests(job.sources, cfg)
    job.master = master
    job.detection = detection
    return job, engine


def detected_mask(cfg: InferConfig, detector, image: np.ndarray) -> np.ndarray:
    """The damage ``detector`` finds in ``image`` (RGB uint8, at native resolution, in tiles) with
    ``cfg``'s ``detect_min_area`` and ``detect_dilate``: bool ``(H, W)``, True = repair."""
    from .detect.detector import detect_mask

    return detect_mask(image, detector, min_area=cfg.detect_min_area or 0, dilate=cfg.detect_dilate or 0)


def detection_record(cfg: InferConfig, detector, found: np.ndarray) -> dict:
    """What a detection did, for :attr:`Job.detection` (recorded in the outputs' metadata and manifest)."""
    return {"mode": cfg.detect, **detector.describe(), "min_area": cfg.detect_min_area or 0,
            "dilate": cfg.detect_dilate or 0, "pixels_detected": int(found.sum())}


# Fields that never change a result (limits, where to write, caches) or that the engine reports itself
# (engine.describe() records what it used: model, scheduler, LoRA, DDPM options, dtype, device).
NOT_A_SETTING = ("overwrite", "save_rows", "device", "cache_dir", "max_work_megapixels", "max_image_megapixels",
                 "record", "mark_fills")
ENGINE_FIELDS = (*registry.config_fields(), "dtype")  # every engine's options (the registry's), and dtype


def request(cfg: InferConfig) -> dict:
    """The settings a run was asked for, as JSON values: recorded in every output (``request``) and
    compared on resume, so an output made with other settings is never taken as done."""
    import json

    params = {k: v for k, v in asdict(cfg).items() if k not in (*NOT_A_SETTING, *cfg.NOT_RECORDED)}
    for group in registry.option_groups():
        if group.field is not None:  # options kept as one field (ddpm, ...): only the values given
            params[group.field] = registry.given(getattr(cfg, group.field))
    if cfg.detect:  # the detector by content: a new builtin, or a retrained folder, is another detector
        from .detect.detector import model_checksum

        params["detect_model_sha256"] = model_checksum(cfg.detect_model or "builtin")
    return json.loads(json.dumps(params, sort_keys=True))


def same_request(recorded: dict | None, wanted: dict) -> bool:
    """Whether an output recorded as made with ``recorded`` settings was made with ``wanted`` ones. Keys with
    no value (``None``, ``{}``) on either side are left out: an engine installed since (its options group
    empty) or a setting that was not given does not make a finished output differ."""
    def given(d: dict) -> dict:
        return {k: v for k, v in d.items() if v is not None and v != {}}

    return recorded is not None and given(recorded) == given(wanted)


def metadata(cfg: InferConfig, engine: Engine | None, job: Job, **extra) -> dict:
    """The parameters recorded in every PNG (text chunk) and manifest line: the run's settings, what
    the engine says it used (:meth:`Engine.describe`; nothing engine-specific comes from ``cfg``), what
    this job did, and the ``request`` that resume compares."""
    skip = (*NOT_A_SETTING, *ENGINE_FIELDS, "seed", *cfg.NOT_RECORDED)
    params = {k: v for k, v in asdict(cfg).items() if k not in skip}
    params["model"] = cfg.model
    if engine is not None:
        params["engine"] = cfg.engine_spec().name  # the engine's own record below says it too
        params.update(engine.describe())
        spec = registry.get(params["engine"])
        if spec is not None and not spec.prompts:  # no text conditioning: guidance and prompts were not used
            for k in ("guidance", "prompt", "negative_prompt"):
                params.pop(k, None)
        if spec is not None and not spec.steps:  # no sampler (OpenCV): --steps was not used
            params.pop("steps", None)
    params.update(
        seeds=job.seeds,  # the seed of each row in this file (the only seed key: --seed 0 draws them)
        random_seeds=cfg.seed == 0,
        work_size=list(job.work_hw[::-1]) if job.work_hw else None,
        image_size=[int(job.image.shape[1]), int(job.image.shape[0])],
        area_used=job.area,
        windows=[r.record() for r in job.regions],  # top, left, bottom, right, work h, work w
        damage=job.damage,  # thin_width, fillers, components: [top, left, bottom, right, width, filler index]
        inpaint_kit_version=__version__,
        input=job.master.describe() if job.master is not None else None,
        **job.sources,
        inputs_sha256=job.inputs,  # compared on resume (batch.output_state)
        **extra,
        request=request(cfg),
    )
    return params


def row_path(collage_path: Path, stem: str, row: int, seed: int, ext: str = ".png") -> Path:
    return collage_path.with_name(f"{stem}_row{row}_seed{seed}{ext}")


def job_paths(cfg: InferConfig, collage_path, stem: str, seeds, row_format: str = "png") -> list[Path]:
    """Every output of a job: the rows (with ``save_rows``, as ``row_format`` files), the record's files
    (with ``record``: fill layers, mask, record), the marked copies (``mark_fills``) and the collage, which
    is written last, so an existing collage means the item's other files were written too (resume reads
    ``row_format`` from the collage's metadata)."""
    from . import record

    collage_path = Path(collage_path)
    ext = extension(row_format)
    seeds = list(enumerate(seeds))
    paths = [row_path(collage_path, stem, i, s, ext) for i, s in seeds] if cfg.save_rows else []
    if cfg.record:
        paths += [record.layer_path(collage_path, stem, i, s, ext) for i, s in seeds]
        paths += [record.record_path(collage_path, stem)]
    if cfg.record or cfg.detect:  # the mask repaired (with detection: the mask found, so it can be checked)
        paths += [record.mask_path(collage_path, stem)]
    if cfg.mark_fills:
        paths += [record.marked_path(collage_path, stem, i, s) for i, s in seeds]
    return [*paths, collage_path]


def write_job(job: Job, cfg: InferConfig, engine: Engine | None, collage_path, stem: str | None = None,
              **extra) -> tuple[list[Path], dict]:
    """Write each row (with ``save_rows``), the record (``record``), the marked copies (``mark_fills``)
    and then the collage, atomically, each carrying its parameters (plus ``extra`` ones). A job read
    from a file (``job.master``) gets rows that replace that file: its depth, colour mode, alpha, ICC
    profile, resolution, EXIF (orientation included), XMP and text, in ``cfg.output_format``
    (:func:`images.output_format`), every stored value outside the fill the input's. Returns the paths
    written and the parameters (for a manifest; ``record`` points to the record)."""
    from . import record

    collage_path = Path(collage_path)
    stem = stem or collage_path.stem.removesuffix("_collage")
    master = job.master
    fmt = output_format(master, cfg.output_format)
    if (cfg.record or cfg.mark_fills) and len(job.fills) != len(job.seeds):
        raise UsageError("--record and --mark_fills apply to infer jobs (this job keeps no fills); leave them out")
    if master is not None and master.format in ("jpeg", "webp") and cfg.save_rows:
        log.info("%s: %s input: rows written as lossless %s (never a second lossy encoding)",
                 job.name, master.format.upper(), fmt.upper())
    if job.detection is not None:  # the mask used is written beside the outputs (white = repaired)
        extra["detection"] = {**job.detection, "mask_file": record.mask_path(collage_path, stem).name,
                              "mask_file_mode": "white"}
    meta = metadata(cfg, engine, job, row_format=fmt, colour_managed=_managed(master, cfg), **extra)
    rows = _write_rows(job, cfg, collage_path, stem, fmt, meta)
    written = [p for entry in rows for p in (entry.get("output"), entry.get("fill_layer")) if p]
    if cfg.record or job.detection is not None:
        mask_file = record.write_mask(record.mask_path(collage_path, stem), job.mask)
        written.append(mask_file)
    if cfg.mark_fills:
        for entry, seed in zip(rows, job.seeds):
            row = job.fills[entry["row"]].on_model(job.image)  # not kept: a large scan's rows come one at a time
            entry["marked"] = record.write_marked(record.marked_path(collage_path, stem, entry["row"], seed),
                                                  row, job.mask, meta)
            written.append(entry["marked"])
    if cfg.record:
        written.append(record.write_record(record.record_path(collage_path, stem), job, cfg, engine, rows,
                                           mask_file, meta))
    # Written in bands, rows painted from their fills: a large scan's collage is never whole in memory.
    tiles = [partial(f.paint_lines, job.image) for f in job.fills] if isinstance(job.results, ModelRows) else job.results
    h, v = cfg.collage_spacing_h, cfg.collage_spacing_v
    written.append(save_png_bands(collage_path, sheet_shape(job.image.shape[:2], len(tiles), h, v),
                                  bands(job.image, job.mask, tiles, h, v), meta, a1111(meta)))  # last: means "done"
    if cfg.record:  # for the manifest line (the files carry no path: the record names them by sha256)
        meta = {**meta, "record": str(record.record_path(collage_path, stem))}
    return written, meta


def _write_rows(job: Job, cfg: InferConfig, collage_path: Path, stem: str, fmt: str, meta: dict) -> list[dict]:
    """Each row (``save_rows``) and its fill layer (``record``), one row at a time (a large master's rows
    never sit in memory together). Returns ``{"row", "seed", "output", "fill_layer"}`` per row."""
    from . import record

    master = job.row_master()
    mode = master.mode if master is not None else "RGB"
    rows = []
    for i, seed in enumerate(job.seeds):
        row_meta = {**meta, "seeds": [seed], "row": i}
        entry = {"row": i, "seed": seed}
        stored = None
        if master is not None and (cfg.save_rows or cfg.record):
            stored = job.fills[i].stored(master, cfg.colour_management == "on")  # quantised once
        if cfg.save_rows:
            pixels = stored.apply(master.pixels) if stored is not None else job.results[i]
            entry["output"] = write_image(row_path(collage_path, stem, i, seed, extension(fmt)), pixels, mode,
                                          master, fmt, row_meta, a1111(row_meta))
            del pixels
        if cfg.record:
            if stored is None:  # an array job (no file): its layer is the 8-bit sRGB row's fill
                stored = _model_stored(job.fills[i], job.image)
            layer = stored.layer((master.pixels if master is not None else job.image).shape[:2])
            layer_mode = "CMYKA" if mode == "CMYK" else mode.removesuffix("A") + "A"
            entry["fill_layer"] = write_image(record.layer_path(collage_path, stem, i, seed, extension(fmt)), layer,
                                              layer_mode, master, fmt, {**row_meta, "fill_layer": True})
            del layer
        rows.append(entry)
    return rows


def _managed(master: Master | None, cfg: InferConfig) -> bool:
    from .colour import managed

    return master is not None and managed(master, cfg.colour_management == "on")


def _model_stored(fill: Fill, image: np.ndarray):
    """A fill as stored values of the model's own 8-bit sRGB view (jobs without a file)."""
    from .fill import StoredFill

    return StoredFill(fill.ys, fill.xs, fill.on_model(image)[fill.ys, fill.xs])
