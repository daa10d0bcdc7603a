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
from dataclasses import asdict, dataclass, field
from typing import ClassVar
from pathlib import Path

import numpy as np

from . import __version__
from .collage import grid
from .engine import DEFAULT_MODEL, Canvas, Engine, Sampling, call_seed, is_ddpm_model, load_engine
from .engine.options import DDPMOptions, SDOptions, check_engine_flags
from .errors import UsageError
from .geometry import AREAS, LARGE, Region, compose, crop_to_work, dilate_mask, paste_back, plan_area, resolve_area
from .images import MAX_IMAGE_MEGAPIXELS, load_image, load_mask_channels, save_png
from .infotext import a1111
from .masks import MASK_MODES, from_channels
from .seams import BLENDS, COLOUR_MATCHES, fix_seams

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
    """Fill ``mask`` once per seed where :func:`geometry.plan_area` says the model works; results are at the
    image's size and outside the (dilated) mask and its ``mask_blur`` band equal to the image bit for bit.

    Every region of every row is one :class:`~inpaint_kit.engine.Canvas`; regions of one working size go
    through the engine together (rows x regions batched). Region k of the row with seed s uses seed
    ``call_seed(s, k)``, so a row is the same alone or batched, in every area mode."""
    if not mask.any():
        log.warning("%s: the mask marks nothing to repair; writing the original unchanged", name)
        return Job(name, image, mask, seeds, [image.copy() for _ in seeds], None)
    mask = repair_mask(cfg, mask)
    area, regions = plan_area(mask, cfg.area, cfg.size, cfg.padding, engine.multiple, cfg.large_windows)
    crops = [crop_to_work(image, mask, r) for r in regions]
    filled: list[list[np.ndarray | None]] = [[None] * len(regions) for _ in seeds]
    by_size: dict[tuple[int, int], list[int]] = {}
    for k, r in enumerate(regions):
        by_size.setdefault(r.work_hw, []).append(k)
    for ks in by_size.values():
        items = [(i, k) for i in range(len(seeds)) for k in ks]
        out = engine.fill([Canvas(*crops[k], call_seed(seeds[i], k)) for i, k in items], cfg.sampling(), progress)
        for (i, k), result in zip(items, out):
            filled[i][k] = result
    need = dilate_mask(mask, cfg.mask_blur + 1) if cfg.mask_blur > 0 else mask  # the feather band too
    fills = [compose(image, need, regions, row) for row in filled]
    # the seam is corrected inside the mask only; --mask_blur's band outside keeps the model's pixels
    fills = [np.where(mask[..., None], fix_seams(image, f, mask, cfg.blend, cfg.colour_match), f) for f in fills]
    results = [paste_back(image, f, mask, cfg.mask_blur) for f in fills]
    largest = max((r.work_hw for r in regions), key=lambda hw: hw[0] * hw[1])
    return Job(name, image, mask, seeds, results, largest, area, regions)


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
    if params.get("engine") == "ddpm":  # no text conditioning: guidance and prompts were not used
        for k in ("guidance", "prompt", "negative_prompt"):
            params.pop(k, None)
    params.update(
        seeds=job.seeds,  # the seed of each row in this file (the only seed key: --seed 0 draws them)
        random_seeds=cfg.seed == 0,
        work_size=list(job.work_hw[::-1]) if job.work_hw else None,
        image_size=[int(job.image.shape[1]), int(job.image.shape[0])],
        area_used=job.area,
        windows=[r.record() for r in job.regions],  # top, left, bottom, right, work h, work w
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
