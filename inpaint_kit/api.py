"""The Python API: the CLI's inference (:class:`InferConfig`, :func:`load_engine`, :func:`restore` returning a
:class:`Restoration`), on PIL images, arrays or file paths.

    from PIL import Image
    from inpaint_kit import InferConfig, load_engine, restore

    cfg = InferConfig(model="builtin", size=256, steps=10, rows=2, seed=1)
    engine = load_engine(cfg)                     # load once, reuse for many images
    result = restore(Image.open("imgs/chelsea.png"), Image.open("masks/chelsea.png"), cfg, engine=engine)
    first = result.images[0]                      # a PIL image at the input's size; .info has its parameters
    result.save_row(0, "outputs/chelsea_api.png")  # that row as a PNG with the parameters in its text chunks
    result.save("outputs", "chelsea")             # chelsea_collage.png (+ rows), exactly as `infer` writes

The same ``InferConfig`` with the same inputs gives the same pixels as ``inpaint-kit infer`` (the CLI
builds this config and calls the same :func:`inpaint_kit.inpaint.inpaint_array`). Images follow the
CLI's conventions: any PIL mode (16-bit, palette, alpha, EXIF orientation applied), output at the
input's exact size, pixels outside the mask unchanged. A mask is a PIL image, a grey ``uint8`` array
(read with ``cfg.mask_mode``: black = repaint by default) or a ``bool`` array (True = repaint), or
``"auto"``: the damage a detector finds is the mask (``detect_model``, ``detect_threshold``, ... as for
``infer --mask auto``; ``detect="union"`` adds it to a mask given instead; docs/detection.md).

An image given as a file path is read as an archive master (:func:`inpaint_kit.images.read_image`):
``save`` and ``save_row`` then write rows at its depth, colour mode, profile and metadata, as ``infer``
does (docs/archive.md); ``images`` stay the 8-bit sRGB view.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from .engine import Engine
from .errors import InpaintKitError
from .geometry import cover_mask
from .images import METADATA_KEY, load_image, load_mask_channels, mask_channels, read_image, rgb_array, save_png, write_image
from .infotext import a1111
from .inpaint import InferConfig, Job, inpaint_array, metadata, write_job
from .masks import from_channels, to_repair
from .record import input_digests

__all__ = ["InferConfig", "Restoration", "load_engine", "restore"]


def load_engine(cfg: InferConfig | None = None, **fields) -> Engine:
    """Load the engine ``cfg`` names (``model``, ``device``, ``dtype``, ``lora``, ``scheduler``, ...);
    ``fields`` override or replace the config: ``load_engine(model="builtin")``."""
    return _config(cfg, fields).load_engine()


@dataclass
class Restoration:
    """What :func:`restore` returns: one PIL image per row (each carrying its parameters in ``.info``,
    written into PNG text chunks by ``.save``), the collage, and the run's parameters."""

    images: list[Image.Image]
    collage: Image.Image
    metadata: dict
    job: Job
    config: InferConfig
    engine: Engine | None

    @property
    def seeds(self) -> list[int]:
        return list(self.job.seeds)

    def save_row(self, row: int, path: str | Path) -> Path:
        """Write row ``row`` as a PNG (atomically) with its parameters in the ``parameters`` (A1111
        infotext) and ``inpaint-kit`` (JSON) text chunks, as ``inpaint-kit infer --save_rows`` does."""
        meta = json.loads(self.images[row].info[METADATA_KEY])
        master = self.job.master
        if master is not None:  # read from a file: the row at its depth, mode and profile (.png or .tif by suffix)
            stored = self.job.fills[row].stored(master, self.config.colour_management == "on")
            return write_image(path, stored.apply(master.pixels), master.mode, master, None, meta, a1111(meta))
        return save_png(path, np.asarray(self.images[row]), meta, a1111(meta))

    def save(self, output_dir: str | Path, stem: str = "image") -> list[Path]:
        """Write ``<stem>_collage.png`` (and, with ``config.save_rows``, the rows) into ``output_dir``,
        atomically and with the same metadata as ``inpaint-kit infer``. Returns the paths written."""
        written, _ = write_job(self.job, self.config, self.engine, Path(output_dir) / f"{stem}_collage.png", stem)
        return written


def restore(image, mask, cfg: InferConfig | None = None, *, engine: Engine | None = None,
            progress: bool = False, detector=None, **fields) -> Restoration:
    """Repaint ``mask`` in ``image`` once per row of ``cfg`` (``fields`` override it:
    ``restore(img, m, model="builtin", rows=1, seed=3)``). ``engine`` (from :func:`load_engine`) is
    loaded from the config when not given and the mask marks something. ``mask="auto"``: the detected
    damage is the mask; ``detector`` (``cfg.load_detector()``, load once for many images) is loaded when
    not given and detection is asked for."""
    from .inpaint import detected_mask, detection_record

    auto = isinstance(mask, str) and mask == "auto"
    if auto:
        if (cfg.detect if cfg else fields.get("detect")) == "union":
            raise InpaintKitError("mask 'auto' repairs only the detected damage; detect='union' adds it to a mask "
                                  "given: pass a mask, or leave detect out")
        fields = {**fields, "detect": "auto"}
    cfg = _config(cfg, fields)
    master = read_image(image) if isinstance(image, (str, Path)) else None  # a file: rows replace it (docs/archive.md)
    rgb = to_rgb(image) if master is None else _model_view(master, cfg)
    repair = np.zeros(rgb.shape[:2], bool) if auto else to_mask(mask, cfg.mask_mode, rgb.shape[:2])
    detection = None
    if cfg.detect:
        detector = detector or cfg.load_detector()
        found = detected_mask(cfg, detector, rgb)
        repair, detection = repair | found, detection_record(cfg, detector, found)
    if engine is None and repair.any():
        engine = cfg.load_engine()
    name = Path(image).name if isinstance(image, (str, Path)) else "image"
    job = inpaint_array(engine, cfg, rgb, repair, cfg.seeds(), name, progress)
    job.sources = {k: str(v) for k, v in (("image", image), ("mask", mask)) if isinstance(v, (str, Path))}
    job.inputs = input_digests(job.sources, cfg)
    job.master = master
    job.detection = detection
    meta = metadata(cfg, engine, job, **({"detection": detection} if detection else {}))
    images = []
    for i, (seed, result) in enumerate(zip(job.seeds, job.results)):
        im = Image.fromarray(result, "RGB")
        row_meta = {**meta, "seeds": [seed], "row": i}
        im.info.update({METADATA_KEY: json.dumps(row_meta, sort_keys=True), "parameters": a1111(row_meta)})
        images.append(im)
    from .collage import grid

    sheet = grid(job.image, job.mask, job.results, cfg.collage_spacing_h, cfg.collage_spacing_v)
    return Restoration(images, Image.fromarray(sheet, "RGB"), meta, job, cfg, engine)


def _config(cfg: InferConfig | None, fields: dict) -> InferConfig:
    cfg = cfg or InferConfig()
    unknown = sorted(set(fields) - set(cfg.__dataclass_fields__))
    if unknown:
        raise TypeError(f"unknown InferConfig field(s): {', '.join(unknown)}")
    return replace(cfg, **fields).validate()


def _model_view(master, cfg: InferConfig) -> np.ndarray:
    from .colour import model_rgb

    return model_rgb(master, cfg.colour_management == "on")


def to_rgb(image) -> np.ndarray:
    """An RGB uint8 ``(H, W, 3)`` array from a path, a PIL image (any mode, EXIF orientation applied)
    or an array (``(H, W)`` grey or ``(H, W, 3|4)``, uint8)."""
    if isinstance(image, (str, Path)):
        return load_image(image)
    if isinstance(image, Image.Image):
        return rgb_array(image)
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise InpaintKitError(f"image array must be uint8, got {a.dtype}; convert with (x * 255).round().astype(np.uint8)")
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise InpaintKitError(f"image array must be (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    return np.ascontiguousarray(a[..., :3])


def to_mask(mask, mask_mode: str, hw: tuple[int, int]) -> np.ndarray:
    """A bool repair mask (True = repaint) at ``hw`` from a path, a PIL image or a grey uint8 array (read
    with ``mask_mode``), or a bool array (taken as is). A mask of another size is scaled so that no
    marked pixel is lost, as for mask files."""
    if isinstance(mask, (str, Path)):
        repair = from_channels(*load_mask_channels(mask), mask_mode, name=str(mask))
    elif isinstance(mask, Image.Image):
        repair = from_channels(*mask_channels(mask), mask_mode, name="mask image")
    else:
        a = np.asarray(mask)
        if a.dtype == bool:
            repair = a
        elif a.dtype == np.uint8 and a.ndim == 2:
            repair = to_repair(a, mask_mode)
        else:
            raise InpaintKitError(f"mask array must be bool (True = repaint) or grey uint8 (H, W), got {a.dtype} {a.shape}")
    if repair.ndim != 2:
        raise InpaintKitError(f"mask must be 2-D, got shape {repair.shape}")
    return repair if repair.shape == tuple(hw) else cover_mask(repair, hw)
