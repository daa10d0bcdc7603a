"""Detection runs on files: one image, or a whole tree (mirrored as ``<stem>_mask.png``, which
``infer --batch_masks_dir`` pairs with the image by stem), on the shared batch loop
(:func:`inpaint_kit.batch.run_items`: resume, manifest, bad items reported, ``--shard`` and launched
processes).

Resume never trusts a file name: every mask carries the ``request`` that made it (model and the checksum of
its config.json and weights, threshold, min_area, dilate, mask mode, tiling); an existing mask counts as done only when that
request equals this run's and every asked-for file (probability map, preview) exists. The mask is written
last, so its presence means the item's other files were written.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import InpaintKitError, OutputError
from ..images import load_image
from ..record import input_digests
from .config import DetectConfig
from .detector import BUILTIN_DIR, Detector, model_checksum, to_mask
from .files import save_mask, save_preview, save_probability

log = logging.getLogger("inpaint_kit")
# not compared on resume: where the files go, and how the same network is computed (device, dtype: like a
# GPU's, bf16's probabilities differ from fp32's only in the last digits; the metadata records them)
NOT_A_SETTING = ("save_prob", "preview", "device", "dtype", "overwrite", "max_image_megapixels")


def request(cfg: DetectConfig, checksum: str | None) -> dict:
    """The settings that decide a mask (recorded in it, compared on resume)."""
    params = {k: v for k, v in asdict(cfg).items() if k not in NOT_A_SETTING}
    params["model"] = "builtin" if cfg.model == "builtin" else cfg.model
    params["model_sha256"] = checksum
    return params


def side_paths(cfg: DetectConfig, mask_path: Path, rel_dir: Path = Path(".")) -> dict[str, Path]:
    """Where the probability map and preview of the item whose mask is ``mask_path`` go: beside the mask
    (flag given bare) or under the flag's folder with the tree mirrored (``rel_dir``)."""
    name = mask_path.name
    stem = name[: -len("_mask.png")] if name.endswith("_mask.png") else mask_path.stem
    out = {}
    for key, flag, suffix in (("prob", cfg.save_prob, "_prob.png"), ("preview", cfg.preview, "_preview.png")):
        if flag is not None:
            folder = mask_path.parent if flag == "" else Path(flag) / rel_dir
            out[key] = folder / f"{stem}{suffix}"
    return out


def detect_image(detector: Detector, cfg: DetectConfig, image: np.ndarray, progress: bool = False):
    """``(probability uint16 (H, W), mask bool (H, W))`` of one RGB uint8 image with the run's settings."""
    bar = None
    if progress:
        from ..progress import steps_bar

        bar = steps_bar(detector.tiles(*image.shape[:2]), desc="tiles")
    try:
        prob = detector.probability(image, progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    return prob, to_mask(prob, detector.threshold, cfg.min_area, cfg.dilate)


def write_item(detector: Detector, cfg: DetectConfig, image_path: Path, mask_path: Path, extra: dict[str, Path],
               want: dict, progress: bool = False) -> tuple[list[Path], dict]:
    """Detect one file and write its outputs (side files first, the mask last). Returns the paths written
    and the recorded metadata."""
    image = load_image(image_path, int(cfg.max_image_megapixels * 1e6))
    prob, mask = detect_image(detector, cfg, image, progress)
    meta = {**detector.describe(), "image": str(image_path), "inputs_sha256": input_digests({"image": image_path}),
            "image_size": [int(image.shape[1]), int(image.shape[0])],
            "flagged": round(float(mask.mean()), 6), "inpaint_kit_version": __version__, "request": want}
    written = []
    if "prob" in extra:
        written.append(save_probability(extra["prob"], prob, meta))
    if "preview" in extra:
        written.append(save_preview(extra["preview"], image, mask, meta))
    written.append(save_mask(mask_path, mask, cfg.mask_mode, meta))
    return written, meta


def detect_file(cfg: DetectConfig, image_path, output, detector: Detector | None = None,
                progress: bool = False) -> tuple[list[Path] | None, Detector | None]:
    """One image -> ``output`` (the mask) and its side files. Skipped (returns ``(None, detector)``) when
    ``output`` was made with the same settings; an output made with other settings is a one-line
    :class:`OutputError` unless ``cfg.overwrite``."""
    from ..batch import output_state, refusal

    output = Path(output)
    extra = side_paths(cfg, output)
    want = request(cfg, model_checksum(cfg.model))
    if not cfg.overwrite:
        inputs = input_digests({"image": image_path})
        state, meta = output_state(output, want, lambda m: [*extra.values(), output], inputs)
        if state in ("differs", "changed"):
            raise OutputError(f"{output} exists, {refusal(state, meta, inputs)}")
        if state == "done":
            return None, detector
    image_path = Path(image_path)
    load_image(image_path, int(cfg.max_image_megapixels * 1e6))  # a bad file fails before the model loads
    detector = detector or cfg.load()
    written, _ = write_item(detector, cfg, image_path, output, extra, want, progress)
    return written, detector


def mask_path(output_dir: Path, rel_image: Path, stem: str) -> Path:
    """``<output_dir>/<sub/folders>/<stem>_mask.png`` (the tree mirrored)."""
    return output_dir / rel_image.parent / f"{stem}_mask.png"


def run_detect_batch(cfg: DetectConfig, imgs_dir, output_dir, detector: Detector | None = None,
                     progress: bool = True, shard=None):
    """Detect every image under ``imgs_dir`` into ``output_dir`` (tree mirrored); the detector is loaded
    once, on the first item that needs it. Returns a :class:`~inpaint_kit.batch.BatchReport`."""
    from ..batch import BatchReport, run_items
    from ..pairing import output_stems, scan

    imgs_dir, output_dir = Path(imgs_dir), Path(output_dir)
    images = scan(imgs_dir)
    if not images:
        raise InpaintKitError(f"--batch_imgs_dir {imgs_dir}: no images found (png/jpg/webp/bmp/tif, recursively)")
    if output_dir.resolve() == imgs_dir.resolve() or imgs_dir.resolve() in output_dir.resolve().parents:
        raise InpaintKitError(f"--output_dir {output_dir} is inside --batch_imgs_dir {imgs_dir}; the masks would be "
                              "taken for images on the next run: choose a folder outside it")
    stems, clashes = output_stems(images)
    items, extras = [], {}
    for image in images:
        rel = image.relative_to(imgs_dir)
        out = mask_path(output_dir, rel, stems[image])
        extras[out] = side_paths(cfg, out, rel.parent)
        items.append((image, out, {"image": str(image), "output": str(out)}))
    want = request(cfg, model_checksum(cfg.model))

    def work(image_path: Path, out: Path, _seeds):
        nonlocal detector
        load_image(image_path, int(cfg.max_image_megapixels * 1e6))  # a bad file fails before the model loads
        detector = detector or cfg.load()
        return write_item(detector, cfg, image_path, out, extras[out], want, progress)

    outs = {image: out for image, out, _ in items}
    report = BatchReport(clashes=[(group, [outs[i] for i in group]) for group in clashes])
    return run_items(items, output_dir, cfg.overwrite, work, progress, report, want=want,
                     expected=lambda out, meta: [*extras[out].values(), out], shard=shard)


__all__ = ["BUILTIN_DIR", "detect_file", "run_detect_batch", "request", "side_paths", "write_item"]
