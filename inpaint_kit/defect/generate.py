"""``inpaint-kit defect``: paint a learned defect (a ``train-defect`` run) into defect-free images.

Dataset mode writes N synthetic defective images with their masks in the MVTec AD layout::

    <output_dir>/<object>/test/<defect>/000.png             the good image with the defect painted in
    <output_dir>/<object>/ground_truth/<defect>/000_mask.png  white = defect (where the model painted)
    <output_dir>/manifest.jsonl                             one line per item: source, mask, seeds, LFS

Item ``i`` takes good image ``i mod n`` (sorted) and either the mask of that image's stem in ``--masks_dir``
(read as every mask file is: :func:`inpaint_kit.masks.read_mask`) or a generated shape (``--mask_shapes``:
the ``ellipse``, ``stroke``, ``box`` or, for ``random``, ``spot`` generator of :mod:`inpaint_kit.maskgen`,
side a ``--mask_scale`` fraction of the image's short side, drawn from ``(seed, i)``). The mask is filled at the working size (``--size``, from the run) with the prompt
``A <object> with <token>``; candidate ``k`` of item ``i`` has its own seed (``candidate_seed``). Painting is
``infer``'s own job (:func:`inpaint_kit.inpaint.inpaint_array`): ``--area full`` (the default here: the LoRA
learned the defect on whole images scaled to ``--size``) or ``crops`` (windows around the mask at native
resolution, ``--padding`` / ``--large_windows`` as in ``infer``; for images much larger than ``--size``).
Pixels outside the mask are the good image's, bit for bit, at its own depth.

Archive masters (docs/archive.md): a good image is read at full depth; the model sees its sRGB view
(``--colour_management``) and the painted defect is quantised once into the good image's own depth, colour
mode and profile. Dataset items are PNG (the MVTec layout's ``NNN.png``: 8/16-bit grey or RGB(A), with the
good image's ICC profile, resolution and text; written upright, as their masks are); single-mode rows
follow ``--output_format`` as ``infer``'s do. ``infer``'s ``--record`` / ``--mark_fills`` do not apply:
the manifest and each image's metadata are the dataset's record.

Low-Fidelity Selection (``--lfs K``, DefectFill): K candidates per item; the one whose masked region differs
most from the defect-free input is kept. The paper measures this with LPIPS; LPIPS needs the ``lpips``
package and its AlexNet weights, which an offline machine usually lacks, so the fallback is DSSIM
(``(1 - SSIM) / 2``, SSIM with an 11-px Gaussian window, averaged over the mask's pixels). The metric used
is recorded in every item's manifest line and PNG metadata.

A re-run skips items whose image exists (``--overwrite`` redoes them); a bad good image or mask is reported,
the run goes on, and the exit code is 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..batch import BatchReport
from ..errors import InpaintKitError
from ..geometry import AREAS, LARGE
from ..images import atomic_write, extension, output_format, save_png, write_image
from ..maskgen import draw
from ..masks import read_mask
from ..pairing import pair, scan
from ..record import input_digests, model_digests

SHAPE_GENERATORS = {"random": "spot", "ellipse": "ellipse", "stroke": "stroke", "box": "box"}  # --mask_shapes
MASK_SHAPES = tuple(SHAPE_GENERATORS)
METRICS = ("lpips", "dssim")


@dataclass
class GenerateConfig:
    """Settings of one ``inpaint-kit defect`` dataset run (``None`` = taken from the training run)."""

    lora: str
    output_dir: str
    good_dir: str | None = None
    data: str | None = None  # dataset root: good_dir defaults to <data>/<object>/train/good
    masks_dir: str | None = None
    mask_mode: str = "white"
    mask_shapes: str = "random"
    mask_scale: tuple[float, float] = (0.1, 0.3)
    on_foreground: bool = False
    num: int | None = None
    model: str | None = None
    size: int | None = None
    prompt: str | None = None
    negative_prompt: str = ""
    steps: int = 50
    guidance: float = 7.5
    lfs: int = 1
    seed: int = 0
    area: str = "full"  # where the model works (inpaint_kit.geometry); full: the scale the LoRA learned
    padding: int = 64  # crops: context pixels around the defect
    large_windows: str = "tile"  # crops: windows longer than size tiled at native resolution, or scaled
    output_format: str = "auto"  # single-mode rows: auto | png | tiff (dataset items: PNG, the MVTec layout)
    colour_management: str = "on"  # non-sRGB profiles: the model sees sRGB, the defect goes back to the profile
    overwrite: bool = False
    device: str | None = None
    dtype: str = "auto"
    progress: bool = True
    run: dict = field(default_factory=dict)  # the training run's record (filled by check())

    def check(self) -> "GenerateConfig":
        """Read the run, fill the settings left out, and check everything before a model loads."""
        self.run = read_run(self.lora)
        self.model = self.model or self.run["base_model"]
        self.size = self.size or self.run["config"]["size"]
        self.prompt = self.prompt if self.prompt is not None else self.run["object_prompt"]
        if self.mask_shapes not in MASK_SHAPES:
            raise InpaintKitError(f"--mask_shapes {self.mask_shapes}: choose from {', '.join(MASK_SHAPES)}")
        lo, hi = self.mask_scale
        if not 0 < lo <= hi <= 1:
            raise InpaintKitError(f"--mask_scale {lo} {hi}: need 0 < min <= max <= 1 (fractions of the short side)")
        for name in ("steps", "lfs", "size"):
            if getattr(self, name) < 1:
                raise InpaintKitError(f"--{name} {getattr(self, name)}: must be at least 1")
        if self.num is not None and self.num < 1:
            raise InpaintKitError(f"--num {self.num}: must be at least 1")
        self.check_area()
        if self.good_dir is None:
            if self.data is None:
                raise InpaintKitError("give --good_dir (defect-free images) or --data (a dataset root with "
                                      f"{self.run['object_class']}/train/good/)")
            self.good_dir = str(Path(self.data, self.run["object_class"], "train", "good"))
        if not Path(self.good_dir).is_dir():
            raise InpaintKitError(f"--good_dir {self.good_dir}: not a folder of defect-free images")
        if self.on_foreground and self.masks_dir is not None:
            raise InpaintKitError("--on_foreground places generated masks; it does not apply with --masks_dir")
        if self.masks_dir is None and self.num is None:
            raise InpaintKitError("--num N is needed with generated masks (--mask_shapes): how many images to make")
        self.check_output(dataset=True)
        return self

    def check_area(self) -> None:
        """One-line errors for ``--area``, ``--padding`` and ``--large_windows``."""
        if self.area not in AREAS:
            raise InpaintKitError(f"--area {self.area!r} must be one of {', '.join(AREAS)}")
        if self.large_windows not in LARGE:
            raise InpaintKitError(f"--large_windows {self.large_windows!r} must be one of {', '.join(LARGE)}")
        if self.padding < 0:
            raise InpaintKitError(f"--padding {self.padding} must be >= 0 (context pixels around the defect)")

    def check_output(self, dataset: bool) -> None:
        """One-line errors for ``--output_format`` and ``--colour_management`` (dataset items are PNG)."""
        from ..inpaint import OUTPUT_FORMATS

        if self.output_format not in OUTPUT_FORMATS:
            raise InpaintKitError(f"--output_format {self.output_format!r} must be one of {', '.join(OUTPUT_FORMATS)}")
        if dataset and self.output_format == "tiff":
            raise InpaintKitError("--output_format tiff: the MVTec layout is <object>/test/<defect>/NNN.png; dataset "
                                  "items are PNG with the good image's depth, profile and dpi (single mode writes TIFF)")
        if self.colour_management not in ("on", "off"):
            raise InpaintKitError(f"--colour_management {self.colour_management!r} must be on or off")

    def infer_config(self):
        """The :class:`~inpaint_kit.inpaint.InferConfig` of the painting job (what ``inpaint_array`` reads:
        working size, sampling, where the model works). The engine is loaded by :func:`load`, not from it."""
        from ..inpaint import InferConfig

        return InferConfig(model=self.model, size=self.size, steps=self.steps, guidance=self.guidance,
                           prompt=self.prompt, negative_prompt=self.negative_prompt, seed=self.seed,
                           area=self.area, padding=self.padding, large_windows=self.large_windows,
                           output_format=self.output_format, colour_management=self.colour_management,
                           device=self.device, dtype=self.dtype,
                           # a painted defect is the model's alone: no thin filler, no seam correction
                           thin_width=0, blend="none")


def read_run(lora: str | Path) -> dict:
    """The ``training_config.json`` of a ``train-defect`` output folder (one-line errors otherwise)."""
    folder = Path(lora)
    record = folder / "training_config.json"
    if not record.is_file():
        raise InpaintKitError(f"--lora {folder}: no training_config.json; pass a train-defect output folder")
    try:
        run = json.loads(record.read_text())
    except ValueError as e:
        raise InpaintKitError(f"{record}: not valid JSON ({e}); re-run train-defect") from None
    if run.get("kind") != "defectfill":
        raise InpaintKitError(f"--lora {folder}: written by {run.get('trainer', 'another command')}, not train-defect")
    if not (folder / run["weights"]).is_file():
        raise InpaintKitError(f"--lora {folder}: {run['weights']} is missing; the run has not saved weights yet")
    return run


# --- masks ----------------------------------------------------------------------------------------
def foreground(image: np.ndarray) -> np.ndarray:
    """The object's pixels, estimated: colour distance to the median border colour above Otsu's threshold.
    When that finds no clear object (under 1 % or over 99 % of the image), the whole image."""
    import cv2

    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).astype(np.float32)
    dist = np.linalg.norm(image.astype(np.float32) - np.median(border, axis=0), axis=-1)
    dist8 = np.clip(dist * (255.0 / max(float(dist.max()), 1e-6)), 0, 255).astype(np.uint8)
    _, fg = cv2.threshold(dist8, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    fg = fg.astype(bool)
    return fg if 0.01 <= fg.mean() <= 0.99 else np.ones(image.shape[:2], bool)


def shape_mask(shape: str, h: int, w: int, rng: np.random.Generator, scale=(0.1, 0.3),
               center: tuple[int, int] | None = None) -> np.ndarray:
    """A bool defect mask ``(h, w)`` of ``--mask_shapes`` ``shape`` (ellipse, stroke, box; random picks one),
    its extent a ``scale`` fraction of the short side, centred at ``center`` (y, x) or at random in the
    middle 60 % of the image (where the object usually is)."""
    if shape not in SHAPE_GENERATORS:
        raise InpaintKitError(f"--mask_shapes {shape}: choose from {', '.join(MASK_SHAPES)}")
    return draw(SHAPE_GENERATORS[shape], h, w, rng, scale=scale, center=center)


# --- Low-Fidelity Selection -----------------------------------------------------------------------
def dssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """``(1 - SSIM) / 2`` of two RGB uint8 images averaged over the pixels of ``mask`` (SSIM per channel,
    11-px Gaussian window, sigma 1.5, as in Wang et al. 2004)."""
    import cv2

    x, y = a.astype(np.float64) / 255.0, b.astype(np.float64) / 255.0
    c1, c2 = 0.01**2, 0.03**2
    blur = lambda z: cv2.GaussianBlur(z, (11, 11), 1.5)  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    ssim = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(((1 - ssim.mean(-1)) / 2)[mask].mean())


class Distance:
    """The LFS distance: LPIPS (AlexNet) on the mask's bounding box when available, else :func:`dssim`."""

    def __init__(self, prefer: str = "lpips"):
        self.name, self.net = "dssim", None
        if prefer == "lpips":
            try:
                import lpips  # optional; needs its AlexNet weights (a download) the first time

                self.net, self.name = lpips.LPIPS(net="alex", verbose=False).eval(), "lpips"
            except Exception:  # noqa: BLE001 - not installed, or no weights offline: use the stated fallback
                self.net = None

    def __call__(self, original: np.ndarray, candidate: np.ndarray, mask: np.ndarray) -> float:
        if self.net is None:
            return dssim(original, candidate, mask)
        import torch

        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        crop = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        t = [torch.from_numpy(np.ascontiguousarray(x[crop])).permute(2, 0, 1)[None].float() / 127.5 - 1 for x in (original, candidate)]
        with torch.no_grad():
            return float(self.net(*t))


def select(distances: list[float]) -> int:
    """Low-Fidelity Selection: the candidate farthest from the defect-free input (first on ties)."""
    return int(np.argmax(distances))


def candidate_seed(seed: int, item: int, k: int) -> int:
    """Seed of candidate ``k`` of item ``item``: independent of ``--lfs`` and of the other items."""
    return int(np.random.SeedSequence([int(seed), int(item), int(k)]).generate_state(1)[0]) % (2**31 - 1) + 1


# --- the run --------------------------------------------------------------------------------------
class Report(BatchReport):
    """What happened to every item of a run (``unpaired_images``: good images without a mask in
    ``--masks_dir``)."""


@dataclass(frozen=True)
class Item:
    index: int
    good: Path
    mask: Path | None  # a given mask, or None for a generated shape


def plan(cfg: GenerateConfig, report: Report) -> list[Item]:
    """The items of the run: good images cycled to ``--num``, or every (good image, mask) pair."""
    goods = scan(cfg.good_dir)
    if not goods:
        raise InpaintKitError(f"--good_dir {cfg.good_dir}: no images")
    if cfg.masks_dir is None:
        return [Item(i, goods[i % len(goods)], None) for i in range(cfg.num)]
    pairing = pair(cfg.good_dir, cfg.masks_dir)
    report.unpaired_images += pairing.unpaired_images
    if not pairing.pairs:
        raise InpaintKitError(f"--masks_dir {cfg.masks_dir}: no mask has the stem of an image in {cfg.good_dir}")
    pairs = pairing.pairs[: cfg.num] if cfg.num else pairing.pairs
    return [Item(i, img, m) for i, (img, m, _) in enumerate(pairs)]


def output_paths(cfg: GenerateConfig, index: int) -> tuple[Path, Path]:
    """``(image, mask)`` paths of item ``index`` in the MVTec layout."""
    root, obj, defect = Path(cfg.output_dir), cfg.run["object_class"], cfg.run["defect_type"]
    return (root / obj / "test" / defect / f"{index:03d}.png",
            root / obj / "ground_truth" / defect / f"{index:03d}_mask.png")


def item_mask(cfg: GenerateConfig, item: Item, image: np.ndarray) -> np.ndarray:
    """The item's defect mask at the good image's size: the given file, or a shape drawn from ``(seed, index)``
    (with ``on_foreground``: centred on an object pixel and clipped to the object)."""
    hw = image.shape[:2]
    if item.mask is not None:
        mask = read_mask(item.mask, cfg.mask_mode, hw)
    else:
        rng = np.random.default_rng([cfg.seed, item.index, 5])
        if cfg.on_foreground:
            fg = foreground(image)
            ys, xs = np.nonzero(fg)
            pick = int(rng.integers(len(ys)))
            mask = shape_mask(cfg.mask_shapes, *hw, rng, cfg.mask_scale, center=(int(ys[pick]), int(xs[pick])))
            mask = mask & fg if (mask & fg).any() else mask
        else:
            mask = shape_mask(cfg.mask_shapes, *hw, rng, cfg.mask_scale)
    if not mask.any():
        raise InpaintKitError(f"{item.mask}: empty mask (no {'white' if cfg.mask_mode == 'white' else 'black'} "
                              "pixel); --mask_mode says which colour marks the defect")
    return mask


def paint(engine, cfg: GenerateConfig, image: np.ndarray, mask: np.ndarray, seeds: list[int], distance: Distance):
    """Fill ``mask`` of ``image`` once per seed through ``infer``'s job (:func:`inpaint_kit.inpaint.inpaint_array`,
    ``cfg.area``); returns the job (its ``results`` are the full-size candidates) and their LFS distances."""
    from ..inpaint import inpaint_array

    job = inpaint_array(engine, cfg.infer_config(), image, mask, seeds, progress=False)
    return job, [distance(image, c, mask) for c in job.results]


def area_record(job) -> dict:
    """Where the model worked, for an item's metadata (as ``infer`` records it)."""
    return {"area_used": job.area, "windows": [r.record() for r in job.regions]}


def read_good(cfg: GenerateConfig, path: Path):
    """``(master, model view)`` of a good image (:func:`inpaint_kit.inpaint.read_source`)."""
    from ..inpaint import read_source

    return read_source(path, colour_management=cfg.colour_management == "on")


def dataset_master(master, path: Path):
    """The good image as a dataset item is written: PNG-able (CMYK is a one-line error) and upright (EXIF
    orientation applied, so that any loader pairs it with its upright mask)."""
    if master.mode == "CMYK":
        raise InpaintKitError(f"{path}: CMYK; the MVTec layout is PNG, which cannot hold CMYK: convert the good "
                              "image to RGB, or paint it in single mode (--image) with --output_format tiff")
    return master.upright()


def write_row(path: Path, job, row: int, master, cfg: GenerateConfig, fmt: str, meta: dict) -> Path:
    """Row ``row`` of ``job`` as ``master``'s drop-in: its stored values with the fill quantised once into its
    depth, mode and profile (:meth:`inpaint_kit.fill.Fill.stored`), in ``fmt``."""
    from ..colour import managed

    cm = cfg.colour_management == "on"
    stored = job.fills[row].stored(master, cm)
    meta = {**meta, "input": master.describe(), "row_format": fmt, "colour_managed": managed(master, cm)}
    return write_image(path, stored.apply(master.pixels), master.mode, master, fmt, meta)


def load(cfg: GenerateConfig):
    """The SD engine of the run's base model with its LoRA (UNet and text encoder)."""
    from ..engine.sd import load_sd_engine

    return load_sd_engine(cfg.model, device=cfg.device, dtype=cfg.dtype, lora=str(cfg.lora))


def request(cfg: GenerateConfig) -> dict:
    """The settings that make a dataset item (recorded in each image and compared on resume, so an item
    made with other settings is reported as differing, never taken as done)."""
    import json
    from dataclasses import asdict

    skip = ("overwrite", "device", "progress", "run", "output_dir", "num")  # --num: how many items, not what each is
    return json.loads(json.dumps({k: v for k, v in asdict(cfg).items() if k not in skip}, sort_keys=True, default=str))


def generate(cfg: GenerateConfig, engine=None, shard=None) -> Report:
    """Write the synthetic defect dataset (see the module docstring); the engine loads on the first item
    that needs it (a fully resumed run loads nothing). Items are shared between processes as in every batch
    command (``shard``: :mod:`inpaint_kit.shard`); resume skips an item only when its image and mask exist
    and were made with the same settings."""
    cfg.check()
    want = request(cfg)  # as asked: --seed 0 (random, drawn below) resumes like any seed
    if not cfg.seed:
        cfg.seed = int(np.random.SeedSequence().generate_state(1)[0] % (2**31 - 1)) + 1
    report = Report()
    items = plan(cfg, report)
    state = {"engine": engine, "distance": None}
    out_root = Path(cfg.output_dir)
    models = model_digests(cfg)  # the base model and the DefectFill run's weights, hashed once

    def sources(item: Item) -> dict:
        """The sha256 of what an item is made from (compared on resume): good image, mask file, weights."""
        return {**input_digests({"image": item.good, "mask": item.mask}), **models}

    def work(item: Item, out: Path):
        master, image = read_good(cfg, item.good)
        target = dataset_master(master, item.good)
        mask = item_mask(cfg, item, image)
        if state["engine"] is None:
            state["engine"] = load(cfg)
        if state["distance"] is None:
            state["distance"] = Distance()
        seeds = [candidate_seed(cfg.seed, item.index, k) for k in range(cfg.lfs)]
        job, distances = paint(state["engine"], cfg, image, mask, seeds, state["distance"])
        best = select(distances)
        meta = {"good_image": str(item.good), "mask_source": str(item.mask) if item.mask else cfg.mask_shapes,
                "on_foreground": cfg.on_foreground,
                "seed": seeds[best], "candidate_seeds": seeds, "lfs": cfg.lfs, "lfs_metric": state["distance"].name,
                "lfs_distances": [round(d, 6) for d in distances], "chosen": best, "prompt": cfg.prompt,
                "negative_prompt": cfg.negative_prompt, "steps": cfg.steps, "guidance": cfg.guidance,
                "size": cfg.size, **area_record(job), "lora": str(cfg.lora), "model": cfg.model,
                "object_class": cfg.run["object_class"], "defect_type": cfg.run["defect_type"],
                "inputs_sha256": sources(item), "request": want}
        _, mask_path = output_paths(cfg, item.index)
        from PIL import Image

        # mask first, image last: an existing image means a finished item (resume skips it)
        atomic_write(mask_path, lambda p: Image.fromarray(mask.astype(np.uint8) * 255, "L").save(p, format="PNG"))
        write_row(out, job, best, target, cfg, "png", meta)
        return [out, mask_path], meta

    from ..batch import run_items

    by_out = {output_paths(cfg, item.index)[0]: item for item in items}
    rows = [(item, out, {"index": item.index, "good_image": str(item.good), "output": str(out)})
            for out, item in by_out.items()]
    masks = {out: output_paths(cfg, item.index)[1] for out, item in by_out.items()}

    def work_item(item: Item, out: Path, seeds):
        paths, meta = work(item, out)
        return paths, meta

    return run_items(rows, out_root, cfg.overwrite, work_item, cfg.progress, report, want=want,
                     expected=lambda out, meta: [out, masks[out]], shard=shard, inputs=lambda item, _: sources(item))


def paint_single(cfg: GenerateConfig, image_path: str, mask_path: str, rows: int, output: str, engine=None) -> Path:
    """Single mode: ``rows`` candidates for one good image and mask -> a collage (original | mask | result
    per row, seeds ``candidate_seed(seed, 0, k)``) plus each row as ``<output stem>_row<k>.png``."""
    from ..collage import grid

    cfg.run = read_run(cfg.lora)
    cfg.model, cfg.size = cfg.model or cfg.run["base_model"], cfg.size or cfg.run["config"]["size"]
    cfg.prompt = cfg.prompt if cfg.prompt is not None else cfg.run["object_prompt"]
    cfg.check_area()
    cfg.check_output(dataset=False)
    if not cfg.seed:
        cfg.seed = int(np.random.SeedSequence().generate_state(1)[0] % (2**31 - 1)) + 1
    master, image = read_good(cfg, Path(image_path))
    fmt = output_format(master, cfg.output_format)  # a format the file cannot be written in fails before the model
    mask = item_mask(cfg, Item(0, Path(image_path), Path(mask_path)), image)
    engine = engine or load(cfg)
    seeds = [candidate_seed(cfg.seed, 0, k) for k in range(rows)]
    distance = Distance()
    job, distances = paint(engine, cfg, image, mask, seeds, distance)
    candidates = list(job.results)
    out = Path(output)
    meta = {"seeds": seeds, "lfs_metric": distance.name, "lfs_distances": [round(d, 6) for d in distances],
            "prompt": cfg.prompt, "lora": str(cfg.lora), "model": cfg.model, "steps": cfg.steps,
            "size": cfg.size, **area_record(job)}
    for k in range(len(candidates)):  # each row as the good image's drop-in (depth, mode, profile, format)
        path = out.with_name(f"{out.stem}_row{k}{extension(fmt)}")
        write_row(path, job, k, master, cfg, fmt, {**meta, "seed": seeds[k]})
    return save_png(out, grid(image, mask, candidates), meta)
