"""What the browser UI does, as plain functions of file paths, numpy arrays and numbers, so tests call them
without a browser and without gradio (nothing here imports it).

Every step is the library's, the same as ``inpaint-kit infer`` / ``outpaint``: :func:`inpaint.load_pair` and
:func:`images.load_image` read the uploads (EXIF, 16-bit, alpha; ``--mask_mode`` on mask files),
:func:`geometry.cover_mask` fits painted strokes, :func:`inpaint.inpaint_array` runs the engine and
:func:`inpaint.write_job` writes the collage and one file per candidate with the CLI's metadata; an outpaint
request is the command's own job function, :func:`outpaint.outpaint_file`. So the same image, mask, seed and
settings give the same pixels and the same files as the CLI. Each candidate is written as the upload's
drop-in replacement (``infer --save_rows``: a 16-bit TIFF gives 16-bit TIFF rows with its profile and tags;
docs/archive.md), and every run writes the conservator's record (``--record``: mask, fill layers,
``<stem>_record.json``), offered for download with the rows. Engines and the model list come from the
engine registry (:mod:`inpaint_kit.engine.registry`).

    cache = EngineCache()
    run = restore(cache, "outputs/ui", "mural.png", mask_path="mural_mask.png", model="builtin", seed=3)
    run.rows  # [outputs/ui/<run>/mural_row0_seed3.png, ...], run.collage, run.metadata
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import InpaintKitError
from ..record import input_digests

log = logging.getLogger("inpaint_kit")

# The UI's own bounds (the CLI trusts its user more): a slip of the finger must not start an hour-long job.
LIMITS = {"size": (64, 2048), "steps": (1, 500), "rows": (1, 16)}
PAINTED = "painted in the browser"  # recorded as the mask source when strokes made the mask


class EngineCache:
    """Loaded engines, one per model, device, dtype and engine options (LoRA, scheduler, ControlNet, DDPM
    sampler, ...: whatever the registry says the selected engine takes), reused across requests. At most
    ``capacity`` are kept (least recently used dropped first), so switching models back and forth does not
    fill memory."""

    def __init__(self, capacity: int = 2):
        self.capacity = capacity
        self.engines: OrderedDict[str, object] = OrderedDict()
        self.loads = 0  # how many times a model was actually loaded (tests read it)
        self._lock = threading.Lock()

    @staticmethod
    def key(cfg) -> str:
        """What load_engine is given (the engine, model, device, dtype and that engine's options);
        everything else (steps, prompt, rows, ...) is per request."""
        from dataclasses import asdict

        spec = cfg.engine_spec()
        options = cfg.engine_options()
        values = {"engine": spec.name, "model": cfg.model, "device": cfg.device, "dtype": cfg.dtype,
                  **(asdict(options) if options is not None else {})}
        if "lora" in values and not values["lora"]:
            values["lora_scale"] = None  # no LoRA: its scale changes nothing
        return repr(sorted(values.items()))

    def get(self, cfg):
        """The engine for ``cfg`` (an :class:`~inpaint_kit.inpaint.InferConfig`), loaded on first use."""
        key = self.key(cfg)
        with self._lock:
            if key in self.engines:
                self.engines.move_to_end(key)
                return self.engines[key]
            engine = cfg.load_engine()
            self.loads += 1
            self.engines[key] = engine
            while len(self.engines) > self.capacity:
                self.engines.popitem(last=False)
            return engine


class DetectorCache:
    """Loaded damage detectors (:func:`inpaint_kit.detect.load_detector`), one per model and device, reused
    across clicks of "Detect damage"."""

    def __init__(self):
        self.detectors: dict[tuple, object] = {}
        self.loads = 0  # how many times a detector was actually loaded (tests read it)
        self._lock = threading.Lock()

    def get(self, model: str = "builtin", device=None, threshold: float | None = None):
        """The detector ``model`` (builtin, classical or a train-detect folder) on ``device``, loaded on first
        use; ``threshold`` None = the detector's own (one-line errors for a bad model or threshold)."""
        from ..detect.detector import check_model, load_detector

        model = model or "builtin"
        device = None if model == "classical" else device  # the classical detector runs on the CPU
        key = (model, device, threshold)
        with self._lock:
            if key not in self.detectors:
                check_model(model, flag="detector")
                self.detectors[key] = load_detector(model, device, threshold)
                self.loads += 1
            return self.detectors[key]


def detect_damage(detectors: DetectorCache, image_path, layers=None, model: str = "builtin", threshold=None,
                  device=None, colour: tuple[int, int, int] = (255, 0, 255)) -> tuple[dict, str]:
    """The "Detect damage" button: the damage found in the uploaded image (at native resolution, as ``infer
    --mask auto`` finds it) painted into the mask layer, opaque in the brush ``colour``, on top of the strokes
    already painted (kept: the union), for the user to correct with brush and eraser before Run. Returns the
    editor's new value ``{"background": image (H, W, 3), "layers": [RGBA (H, W, 4)], "composite": None}`` and
    a one-line summary. ``threshold`` None or 0 = the detector's own."""
    from ..detect.detector import detect_mask

    image = load_preview(image_path)
    with as_uploaded(image_path):
        detector = detectors.get(model, device, threshold or None)
        found = detect_mask(image, detector)
    strokes = painted_mask(layers, image.shape[:2])
    layer = np.zeros((*image.shape[:2], 4), np.uint8)
    layer[found | strokes] = (*colour, 255)
    share = 100 * found.mean()
    note = (f"{detector.name} detector (threshold {detector.threshold:g}) marked {int(found.sum())} pixels "
            f"({share:.2f} % of the image)" + ("; your strokes are kept" if strokes.any() else "")
            + ": correct the mask with the brush and eraser, then Run")
    return {"background": image, "layers": [layer], "composite": None}, note


@dataclass
class Run:
    """One request's results: the files written (exactly the CLI's) and the arrays to show."""

    folder: Path
    collage: Path
    rows: list[Path]  # one file per candidate as the upload's drop-in (CLI metadata, seeds = [its seed])
    before: np.ndarray  # (H, W, 3) what the candidates are compared with (outpaint: the filled canvas)
    results: list[np.ndarray]  # one (H, W, 3) uint8 per candidate (the 8-bit sRGB view, for the page)
    seeds: list[int]
    metadata: dict
    record: list[Path] = field(default_factory=list)  # the conservator's record: mask, fill layers, record.json

    def summary(self) -> str:
        h, w = self.results[0].shape[:2]
        return (f"{len(self.rows)} candidate(s), {w}x{h}, seeds {', '.join(map(str, self.seeds))}; "
                f"{rows_note(self.metadata)}; saved in {self.folder} with the conservator's record")


def rows_note(meta: dict) -> str:
    """What the candidate files are, and why when they are not the upload's format: "rows: 16-bit RGB TIFF,
    as the upload" or "rows: 8-bit RGB PNG (lossless: a JPEG upload is never encoded lossily again)"."""
    src, fmt = meta.get("input") or {}, meta.get("row_format", "png")
    what = f"rows: {src.get('bits', 8)}-bit {src.get('mode', 'RGB')} {fmt.upper()}"
    if src.get("format") == fmt:
        return f"{what}, as the upload (same depth, profile and metadata)"
    if src.get("format") in ("jpeg", "webp"):
        return f"{what} (lossless: a {src['format'].upper()} upload is never encoded lossily again)"
    if src.get("mode") == "CMYK":
        return f"{what} (PNG cannot hold CMYK)"
    return f"{what} (lossless; same depth, profile and metadata as the {str(src.get('format', '?')).upper()} upload)"


def _run(folder: Path, collage: Path, written: list[Path], job, meta: dict, stem: str) -> Run:
    """The :class:`Run` of a written job: candidate files, the record's files, the collage."""
    from ..images import extension
    from ..inpaint import row_path

    ext = extension(meta.get("row_format", "png"))
    rows = [row_path(collage, stem, i, s, ext) for i, s in enumerate(job.seeds)]
    record = [p for p in written if p != collage and p not in rows]
    return Run(folder, collage, rows, job.image, job.results, job.seeds, meta, record)


def check_limits(values: dict) -> None:
    """One-line errors for settings outside :data:`LIMITS` (before any file is read or model loaded)."""
    for name, (lo, hi) in LIMITS.items():
        v = values.get(name)
        if v is not None and not lo <= v <= hi:
            raise InpaintKitError(f"{name} {v} is outside what the UI allows ({lo}..{hi}); pick a value in that range")


def build_config(cls, values: dict):
    """``cls(**values).validate()`` (InferConfig or OutpaintConfig), with the UI's limits checked first.
    Empty strings from text boxes mean "not given" for LoRA; numbers from sliders arrive as floats."""
    check_limits(values)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise TypeError(f"unknown settings {unknown}")
    clean = dict(values)
    optional = ("lora", "cache_dir", "device", "left", "right", "up", "down")
    for name, v in clean.items():
        if v is None and name not in optional:
            raise InpaintKitError(f"{name} is empty; enter a value")
    for name in ("size", "steps", "rows", "seed", "padding", "mask_dilate", "mask_blur", "seam_blend", "overlap",
                 "max_step", "left", "right", "up", "down"):
        if clean.get(name) is not None:
            clean[name] = int(clean[name])
    if not clean.get("lora"):
        clean["lora"] = None
    return cls(**clean).validate()


def painted_mask(layers, hw: tuple[int, int]) -> np.ndarray:
    """The repair mask drawn with the brush: every pixel any layer covers (alpha > 0; the eraser clears
    alpha), bool ``(H, W)``. Layers of another size are fitted with :func:`geometry.cover_mask` (a marked
    pixel is never lost)."""
    from ..geometry import cover_mask

    mask = np.zeros(hw, bool)
    for layer in layers or []:
        if layer is None:
            continue
        layer = np.asarray(layer)
        if layer.ndim == 3 and layer.shape[2] == 4:
            drawn = layer[..., 3] > 0  # RGBA: what the brush covered
        else:
            drawn = layer.reshape(*layer.shape[:2], -1).max(axis=2) > 0  # no alpha: any non-black pixel
        mask |= drawn if drawn.shape == hw else cover_mask(drawn, hw)
    return mask


@contextmanager
def as_uploaded(*paths):
    """Errors name the user's file (``mural.png``), not the server's temporary copy of the upload."""
    try:
        yield
    except InpaintKitError as e:
        message = str(e)
        for p in paths:
            if p:
                message = message.replace(str(p), Path(p).name)
        raise InpaintKitError(message) from None


def load_preview(image_path) -> np.ndarray:
    """The image as the model will see it (:func:`images.load_image`: EXIF rotation, grey/16-bit/alpha
    handled), to paint on. A bad file is a one-line :class:`InpaintKitError`."""
    from ..images import load_image

    if not image_path:
        raise InpaintKitError("no image: upload an image file first")
    with as_uploaded(image_path):
        return load_image(image_path)


def read_inputs(image_path, mask_path=None, layers=None, mask_mode: str = "black") -> tuple[np.ndarray, np.ndarray, dict]:
    """The image, the repair mask (the mask file read with ``mask_mode``, as ``infer --mask`` does, plus any
    painted strokes) and the sources to record. An empty mask is an error here (the CLI writes the
    original back; in the UI that is always a forgotten stroke)."""
    from ..images import load_image
    from ..inpaint import load_pair

    if not image_path:
        raise InpaintKitError("no image: upload an image file first")
    with as_uploaded(image_path, mask_path):
        if mask_path:
            image, mask = load_pair(image_path, mask_path, mask_mode)
        else:
            image = load_image(image_path)
            mask = np.zeros(image.shape[:2], bool)
    strokes = painted_mask(layers, image.shape[:2])
    if not (mask.any() or strokes.any()):
        where = f"{Path(mask_path).name} (--mask_mode {mask_mode}) marks nothing to repair; " if mask_path else ""
        raise InpaintKitError(f"the mask is empty: {where}paint over the damage with the brush or upload a mask file "
                              f"in which {mask_mode} marks the repair region")
    sources = {"image": Path(image_path).name}
    if mask_path:
        sources["mask"] = Path(mask_path).name + (f" + {PAINTED}" if strokes.any() else "")
    else:
        sources["mask"] = PAINTED
    return image, mask | strokes, sources


def run_folder(output_dir) -> Path:
    """A new folder per request under ``output_dir`` (UTC time stamp), so runs never overwrite each other."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    folder = Path(output_dir) / stamp
    folder.mkdir(parents=True, exist_ok=False)
    return folder


def restore(cache: EngineCache, output_dir, image_path, mask_path=None, layers=None, progress: bool = True,
            **settings) -> Run:
    """Inpaint an uploaded image where the mask file and/or painted ``layers`` mark it, one candidate per seed
    (``settings``: :class:`~inpaint_kit.inpaint.InferConfig` fields). Writes ``<stem>_collage.png``, the
    rows ``<stem>_row<i>_seed<s>.png|.tif`` and the record into a new folder of ``output_dir``, as
    ``infer --save_rows --record`` does."""
    from ..images import read_image
    from ..inpaint import InferConfig, inpaint_array, write_job

    cfg = replace(build_config(InferConfig, settings), save_rows=True, record=True)
    image, mask, sources = read_inputs(image_path, mask_path, layers, cfg.mask_mode)
    engine = cache.get(cfg)
    stem = Path(image_path).stem
    job = inpaint_array(engine, cfg, image, mask, cfg.seeds(), Path(image_path).name, progress)
    job.sources = sources
    job.inputs = input_digests({"image": image_path, "mask": mask_path}, cfg)
    with as_uploaded(image_path):  # rows replace the upload: its depth, mode, profile (docs/archive.md)
        job.master = read_image(image_path, int(cfg.max_image_megapixels * 1e6))
    folder = run_folder(output_dir)
    collage = folder / f"{stem}_collage.png"
    written, meta = write_job(job, cfg, engine, collage, stem=stem)
    return _run(folder, collage, written, job, meta, stem)


def outpaint(cache: EngineCache, output_dir, image_path, progress: bool = True, **settings) -> Run:
    """Extend an uploaded image (``settings``: :class:`~inpaint_kit.outpaint.OutpaintConfig` fields, sides in
    ``left/right/up/down``; 0 or None = that side is not extended). Writes ``<stem>_outpaint.png``, its
    rows and the record (the new area is the fill), as ``outpaint --save_rows --record`` does."""
    from ..outpaint import DIRECTIONS, SUFFIX, OutpaintConfig, outpaint_file

    settings = {k: (None if k in DIRECTIONS and not v else v) for k, v in settings.items()}
    if "mask_blur" in settings:  # its old name, as the outpaint command's hidden --mask_blur
        settings.setdefault("seam_blend", settings.pop("mask_blur"))
    cfg = replace(build_config(OutpaintConfig, settings), save_rows=True, record=True)
    if not image_path:
        raise InpaintKitError("no image: upload an image file first")
    name = Path(image_path).name
    folder = run_folder(output_dir)
    collage = folder / f"{Path(image_path).stem}{SUFFIX}.png"
    try:
        with as_uploaded(image_path):  # errors name the upload, not the server's copy
            job, _, written, meta = outpaint_file(cfg, image_path, collage, progress=progress, load_engine=cache.get,
                                                  source=name)
    except BaseException:
        with suppress(OSError):
            folder.rmdir()  # a refused request leaves no empty run folder
        raise
    return _run(folder, collage, written, job, meta, collage.stem)


def model_choices(weights_dir="weights", extra: tuple[str, ...] = ()) -> list[str]:
    """Models to offer: ``builtin``, the given ones (the server's ``--model``), and the folders under
    ``weights_dir`` that a registered engine recognises (a diffusers ``model_index.json``, a DDPM
    ``config.json``, ...). Any other hub id or path can be typed in."""
    from ..engine import registry

    found = []
    root = Path(weights_dir)
    if root.is_dir():
        for d in sorted(p for p in root.iterdir() if p.is_dir()):
            if registry.recognizes(str(d)):
                found.append(str(d))
    return list(dict.fromkeys(["builtin", *extra, *found]))


def lora_choices(weights_dir="weights") -> list[str]:
    """LoRA outputs under ``weights_dir`` (folders holding the files ``--lora`` reads); "" = none."""
    from ..engine.lora import LORA_NAMES, PARTIAL_NAME

    found = []
    root = Path(weights_dir)
    if root.is_dir():
        for name in (*LORA_NAMES, PARTIAL_NAME):
            found += [str(p.parent) for p in root.rglob(name)]
    return ["", *sorted(set(found))]
