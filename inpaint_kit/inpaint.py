"""One inpainting job, the same for every engine: load -> mask -> working canvas -> engine -> paste back
-> collage. :class:`InferConfig` is the single typed request that the CLI, the batch runner and the
Python API all build.

    cfg = InferConfig(model="builtin", rows=3, seed=7).validate()
    job, engine = inpaint_file(cfg, "imgs/a.png", "masks/a.png")
    write_job(job, cfg, engine, "outputs/a_collage.png")
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import asdict, dataclass, field, replace
from typing import ClassVar
from pathlib import Path

import numpy as np

from . import __version__
from .collage import grid
from .engine import DEFAULT_MODEL, Canvas, Engine, Sampling, call_seed, is_ddpm_model, load_engine
from .engine.options import DDPMOptions, SDOptions, check_engine_flags
from .errors import UsageError
from .geometry import (AREAS, LARGE, Region, compose, crop_to_work, dilate_mask, paste_back, plan_area, resolve_area,
                       split_by_width)
from .images import MAX_IMAGE_MEGAPIXELS, load_image, load_mask_channels, save_png
from .infotext import a1111
from .masks import MASK_MODES, from_channels
from .seams import BLENDS, COLOUR_MATCHES, fix_seams
from .thinfill import THIN_FILLS, fill_thin, is_thinfill_model, thin_filler

MAX_WORK_MEGAPIXELS = 4.2  # default limit of a working canvas: 2048 x 2048

log = logging.getLogger("inpaint_kit")


@dataclass
class InferConfig:
    """Every parameter of an inference run. ``validate()`` raises on bad values, never rewrites them."""

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
    lora: str | None = None
    lora_scale: float = 1.0
    cache_dir: str | None = None
    scheduler: str = "default"
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
    controlnet: str | None = None  # inpaint ControlNet (folder or hub id) for SD 1.5-family models
    controlnet_scale: float = 1.0
    # Only for the from-scratch DDPM engine (`--model builtin` or a trained DDPM folder).
    ddpm: DDPMOptions = field(default_factory=DDPMOptions)
    # Limits checked before any model loads (not recorded: they never change a result).
    max_work_megapixels: float = MAX_WORK_MEGAPIXELS  # largest working canvas (--size squared bounds it)
    max_image_megapixels: float = MAX_IMAGE_MEGAPIXELS  # largest input image, checked before decoding

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
            (self.controlnet_scale >= 0, f"--controlnet_scale {self.controlnet_scale} must be >= 0"),
            (self.controlnet is not None or self.controlnet_scale == 1.0,
             "--controlnet_scale applies only with --controlnet; pass --controlnet or leave the scale out"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        check_engine_flags(self.model, self.sd_options(), self.ddpm,
                           {"prompt": self.prompt, "negative_prompt": self.negative_prompt})
        return self

    def sd_options(self) -> SDOptions:
        return SDOptions(self.scheduler, self.lora, self.lora_scale, self.cache_dir, self.controlnet,
                         self.controlnet_scale)

    def seeds(self) -> list[int]:
        """Row i uses ``seed + i``; seed 0 draws random seeds (which are recorded in the outputs)."""
        if self.seed > 0:
            return [self.seed + i for i in range(self.rows)]
        return [secrets.randbelow(2**31 - 1) + 1 for _ in range(self.rows)]

    def sampling(self) -> Sampling:
        return Sampling(self.prompt, self.negative_prompt, self.steps, self.guidance)

    def load_engine(self) -> Engine:
        options = self.ddpm if is_ddpm_model(self.model) else self.sd_options()
        return load_engine(self.model, device=self.device, dtype=self.dtype, options=options)


@dataclass
class Job:
    """One image's inputs and results, at the user's size."""

    name: str
    image: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) bool, True = repaint
    seeds: list[int]
    results: list[np.ndarray]  # one (H, W, 3) uint8 per seed
    work_hw: tuple[int, int] | None  # the largest working size; None when the model was not called
    area: str | None = None  # the --area mode used (auto resolved)
    regions: list[Region] = field(default_factory=list)  # where the model worked
    sources: dict = field(default_factory=dict)  # input files as given ({"image": ..., "mask": ...})
    damage: dict = field(default_factory=dict)  # which filler took each damage component (route_damage)


def load_pair(image_path: str | Path, mask_path: str | Path, mask_mode: str,
              max_megapixels: float = MAX_IMAGE_MEGAPIXELS) -> tuple[np.ndarray, np.ndarray]:
    """Read an image and its mask file; the mask is binarized, converted by ``mask_mode`` (or read from
    its alpha channel when only that is painted, :func:`masks.from_channels`) and, when the sizes differ,
    resized to the image so that no marked pixel is lost (:func:`geometry.cover_mask`). The image itself
    is never changed. Files over ``max_megapixels`` are refused before decoding."""
    from .geometry import cover_mask

    max_pixels = int(max_megapixels * 1e6)
    image = load_image(image_path, max_pixels)
    mask = from_channels(*load_mask_channels(mask_path, max_pixels), mask_mode, name=str(mask_path))
    if mask.shape != image.shape[:2]:
        log.info("%s: mask %s resized to the image's %s", mask_path, mask.shape[::-1], image.shape[1::-1])
        mask = cover_mask(mask, image.shape[:2])
    return image, mask


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
    alone or batched, in every area mode. Last, the seams (:mod:`inpaint_kit.seams`), inside the mask."""
    if not mask.any():
        log.warning("%s: the mask marks nothing to repair; writing the original unchanged", name)
        return Job(name, image, mask, seeds, [image.copy() for _ in seeds], None)
    mask = repair_mask(cfg, mask)
    bases, wide, damage = route_damage(engine, cfg, image, mask, seeds, progress)
    area, regions = None, []
    fills = bases
    if wide.any():
        need = dilate_mask(wide, cfg.mask_blur + 1) if cfg.mask_blur > 0 else wide  # the feather band too
        area, regions, fills = fill_regions(engine, cfg, bases, wide, need, seeds, progress)
    # the seam is corrected inside the mask only; --mask_blur's band outside keeps the model's pixels
    fills = [np.where(mask[..., None], fix_seams(image, f, mask, cfg.blend, cfg.colour_match), f) for f in fills]
    results = [paste_back(image, f, mask, cfg.mask_blur) for f in fills]
    largest = max((r.work_hw for r in regions), key=lambda hw: hw[0] * hw[1]) if regions else None
    return Job(name, image, mask, seeds, results, largest, area, regions, damage=damage)


def fill_regions(engine: Engine, cfg: InferConfig, bases: list[np.ndarray], mask: np.ndarray, need: np.ndarray,
                 seeds: list[int], progress: bool, seed_offset: int = 0):
    """The model's pass: ``(area, regions, fills)``: ``mask`` filled in each row's base image (one per seed;
    rows may share one array) in the regions of :func:`geometry.plan_area`; ``need`` pixels are composed
    from the regions. Region k of the row with seed s uses ``call_seed(s, seed_offset + k)``."""
    area, regions = plan_area(mask, cfg.area, cfg.size, cfg.padding, engine.multiple, cfg.large_windows)
    crops: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}  # rows sharing a base share its crops
    for i, base in enumerate(bases):
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
    return area, regions, [compose(base, need, regions, row) for base, row in zip(bases, filled)]


THIN_SEED_OFFSET = 100_000  # the builtin's thin pass draws its noise apart from the model's regions


def route_damage(engine: Engine, cfg: InferConfig, image: np.ndarray, mask: np.ndarray, seeds: list[int],
                 progress: bool) -> tuple[list[np.ndarray], np.ndarray, dict]:
    """Split ``mask`` by component width (:func:`geometry.split_by_width`, ``cfg.thin_width``) and fill the
    thin part: ``(bases, wide, record)`` with one base image per row (thin damage filled; rows share one
    array unless the filler is the builtin's sampler), the wide mask left for ``--model``, and the record
    of which filler took each component (``damage`` in the output metadata)."""
    thin, wide = split_by_width(mask, cfg.thin_width)
    how = cfg.thin_fill
    if how == "auto":
        how = "thinfill" if thin_filler(cfg.thin_model) is not None else "ns"
    if how == "model" or not thin.any():
        bases, how = [image] * len(seeds), "model"
        thin, wide = np.zeros_like(mask), mask
    elif how == "builtin":
        builtin = engine if getattr(engine, "model_name", None) == "builtin" else builtin_engine(cfg)
        thin_cfg = replace(cfg, model="builtin", area="crops")  # native windows fitted to the cracks
        bases = fill_regions(builtin, thin_cfg, [image] * len(seeds), thin, thin, seeds, progress, THIN_SEED_OFFSET)[2]
    else:
        net = thin_filler(cfg.thin_model) if how == "thinfill" else None
        base = fill_thin(image, thin, mask, "net" if how == "thinfill" else how, net)
        bases = [base] * len(seeds)
    return bases, wide, damage_record(mask, thin, cfg.thin_width, how)


def damage_record(mask: np.ndarray, thin: np.ndarray, thin_width: float, how: str) -> dict:
    """The per-component record: ``components`` = ``[top, left, bottom, right, width, filler index]`` into
    ``fillers`` (``model`` = ``--model``'s sampler)."""
    import cv2

    from .geometry import component_widths

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    _, widths = component_widths(mask)  # the same 8-connected labelling
    fillers = ["model"] if how == "model" else ["model", how]
    thin_of = np.zeros(n, bool)
    thin_of[np.unique(labels[thin])] = True
    comps = [[int(y), int(x), int(y + h), int(x + w), round(float(widths[k]), 1), int(thin_of[k] and len(fillers) > 1)]
             for k, (x, y, w, h, _) in enumerate(stats) if k > 0]
    return {"thin_width": thin_width, "fillers": fillers, "components": comps}


def builtin_engine(cfg: InferConfig) -> Engine:
    """The builtin model for ``--thin_fill builtin`` beside another ``--model`` (loaded once per process)."""
    key = (cfg.device, cfg.dtype)
    if key not in _BUILTIN:
        _BUILTIN[key] = load_engine("builtin", device=cfg.device, dtype=cfg.dtype)
    return _BUILTIN[key]


_BUILTIN: dict = {}


def inpaint_file(cfg: InferConfig, image_path, mask_path, engine: Engine | None = None,
                 seeds=None, progress=True) -> tuple[Job, Engine | None]:
    """:func:`inpaint_array` on files. The inputs are read first, so a bad file fails before any model
    is loaded; the engine is loaded from ``cfg`` only if needed and not given. Returns the job and the
    engine (to reuse for the next file)."""
    image, mask = load_pair(image_path, mask_path, cfg.mask_mode, cfg.max_image_megapixels)
    if engine is None and mask.any():
        engine = cfg.load_engine()
    job = inpaint_array(engine, cfg, image, mask, seeds or cfg.seeds(), Path(image_path).name, progress)
    job.sources = {"image": str(image_path), "mask": str(mask_path)}
    return job, engine


# Fields that never change a result (limits, where to write, caches) or that the engine reports itself
# (engine.describe() records what it used: model, scheduler, LoRA, DDPM options, dtype, device).
NOT_A_SETTING = ("overwrite", "save_rows", "device", "cache_dir", "max_work_megapixels", "max_image_megapixels")
ENGINE_FIELDS = ("scheduler", "lora", "lora_scale", "ddpm", "dtype")


def request(cfg: InferConfig) -> dict:
    """The settings a run was asked for, as JSON values: recorded in every output (``request``) and
    compared on resume, so an output made with other settings is never taken as done."""
    import json

    params = {k: v for k, v in asdict(cfg).items() if k not in (*NOT_A_SETTING, *cfg.NOT_RECORDED)}
    params["ddpm"] = {k: v for k, v in params["ddpm"].items() if v != getattr(DDPMOptions(), k)}
    return json.loads(json.dumps(params, sort_keys=True))


def metadata(cfg: InferConfig, engine: Engine | None, job: Job, **extra) -> dict:
    """The parameters recorded in every PNG (text chunk) and manifest line: the run's settings, what
    the engine says it used (:meth:`Engine.describe`; nothing engine-specific comes from ``cfg``), what
    this job did, and the ``request`` that resume compares."""
    skip = (*NOT_A_SETTING, *ENGINE_FIELDS, "seed", *cfg.NOT_RECORDED)
    params = {k: v for k, v in asdict(cfg).items() if k not in skip}
    params["model"] = cfg.model
    params.update(engine.describe() if engine is not None else {})
    if params.get("engine") in ("ddpm", "opencv"):  # no text conditioning: guidance and prompts were not used
        for k in ("guidance", "prompt", "negative_prompt") + (("steps",) if params["engine"] == "opencv" else ()):
            params.pop(k, None)
    params.update(
        seeds=job.seeds,  # the seed of each row in this file (the only seed key: --seed 0 draws them)
        random_seeds=cfg.seed == 0,
        work_size=list(job.work_hw[::-1]) if job.work_hw else None,
        image_size=[int(job.image.shape[1]), int(job.image.shape[0])],
        area_used=job.area,
        windows=[r.record() for r in job.regions],  # top, left, bottom, right, work h, work w
        damage=job.damage,  # thin_width, fillers, components: [top, left, bottom, right, width, filler index]
        inpaint_kit_version=__version__,
        **job.sources,
        **extra,
        request=request(cfg),
    )
    return params


def row_path(collage_path: Path, stem: str, row: int, seed: int) -> Path:
    return collage_path.with_name(f"{stem}_row{row}_seed{seed}.png")


def job_paths(cfg: InferConfig, collage_path, stem: str, seeds) -> list[Path]:
    """Every output of a job: the rows (with ``save_rows``) and the collage, in the order they are
    written. The collage comes last, so an existing collage means the item's other files exist too."""
    collage_path = Path(collage_path)
    rows = [row_path(collage_path, stem, i, s) for i, s in enumerate(seeds)] if cfg.save_rows else []
    return [*rows, collage_path]


def write_job(job: Job, cfg: InferConfig, engine: Engine | None, collage_path, stem: str | None = None,
              **extra) -> tuple[list[Path], dict]:
    """Write each row (with ``save_rows``) and then the collage, atomically, each PNG carrying its
    parameters (plus ``extra`` ones). Returns the paths written and the parameters (for a manifest)."""
    collage_path = Path(collage_path)
    stem = stem or collage_path.stem.removesuffix("_collage")
    meta = metadata(cfg, engine, job, **extra)
    written = []
    if cfg.save_rows:
        for i, (seed, result) in enumerate(zip(job.seeds, job.results)):
            row_meta = {**meta, "seeds": [seed], "row": i}
            written.append(save_png(row_path(collage_path, stem, i, seed), result, row_meta, a1111(row_meta)))
    sheet = grid(job.image, job.mask, job.results, cfg.collage_spacing_h, cfg.collage_spacing_v)
    written.append(save_png(collage_path, sheet, meta, a1111(meta)))  # last: its presence means "done"
    return written, meta
