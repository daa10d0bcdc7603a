"""The conservator's record of a restoration (``--record``) and the marked documentation copy
(``--mark_fills``): what was filled, with what, by which model and settings, so that every fill can be
seen, reproduced and undone.

Beside each output (``<stem>`` = the output stem):

* ``<stem>_mask.png``: the mask actually repaired (after ``--mask_dilate``), white = repaired, at the
  image's native size in display orientation (as the mask file given);
* ``<stem>_fill_row<i>_seed<seed>.png|.tif``: per row, the restored stored values inside the repair region
  with full alpha, transparent elsewhere, at the row's depth, colour space and stored orientation (same
  EXIF): laid over the master it reproduces the row bit for bit; removed, the master is back;
* ``<stem>_record.json``: sha256 of the input, the mask and every output; the model (and LoRA,
  ControlNet) with the sha256 of its weight files; every setting and seed; the versions of inpaint-kit,
  torch, diffusers and the image libraries; the repaired regions (id, bounding box, area in pixels and,
  when the resolution is known, in mm^2).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata as dist
from pathlib import Path

import numpy as np

from .images import atomic_write, save_png

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".onnx")
VERSIONED = ("inpaint-kit", "torch", "diffusers", "transformers", "numpy", "pillow", "tifffile", "imagecodecs")


def mask_path(collage_path: Path, stem: str) -> Path:
    return collage_path.with_name(f"{stem}_mask.png")


def layer_path(collage_path: Path, stem: str, row: int, seed: int, ext: str) -> Path:
    return collage_path.with_name(f"{stem}_fill_row{row}_seed{seed}{ext}")


def record_path(collage_path: Path, stem: str) -> Path:
    return collage_path.with_name(f"{stem}_record.json")


def marked_path(collage_path: Path, stem: str, row: int, seed: int) -> Path:
    return collage_path.with_name(f"{stem}_row{row}_seed{seed}_marked.png")


def sha256(path: str | Path) -> str:
    """The sha256 of a file (:func:`inpaint_kit.model_source.file_sha256`: what ``sha256sum`` prints)."""
    from .model_source import file_sha256

    return file_sha256(path)


@lru_cache(maxsize=64)
def _cached_sha256(path: str, size: int, mtime: float) -> str:
    return sha256(path)


def cached_sha256(path: str | Path) -> str:
    """:func:`sha256` of a file, cached per process by its real path, size and modification time (a batch
    that records a model's hash for every item reads the file once)."""
    real = Path(path).resolve()
    st = real.stat()
    return _cached_sha256(str(real), st.st_size, st.st_mtime)


INPUTS = ("image", "mask")  # the input files an output is made from (keys of a job's sources)


def input_digests(sources: dict, cfg=None) -> dict:
    """``{"image": sha256, "mask": sha256}`` of the input files named in ``sources`` that are files (a
    detected mask, ``"auto"``, or a painted one has none), with ``cfg``'s :func:`model_digests` when given:
    recorded in every output (``inputs_sha256``) and compared on resume, so an output is never taken as
    done when its image, mask or model was replaced under the same name (:func:`cached_sha256`: each file
    is read once per process)."""
    found = {k: cached_sha256(sources[k]) for k in INPUTS
             if isinstance(sources.get(k), (str, Path)) and Path(sources[k]).is_file()}
    return {**found, **(model_digests(cfg) if cfg is not None else {})}


def inputs_of(cfg):
    """``run_items``' ``inputs`` for a batch whose records name the ``image`` and ``mask`` files: those and
    ``cfg``'s models, which are hashed once here."""
    models = model_digests(cfg)
    return lambda _source, record: {**input_digests(record), **models}


MODELS = ("model", "lora", "controlnet", "thin_model")  # the config fields that name weights


def model_digests(cfg) -> dict:
    """``{field: sha256}`` of the weights each of ``cfg``'s :data:`MODELS` names (a folder or file, ``builtin``
    or a hub id in the local cache: :func:`weight_files`; the sha256 of their ``<sha256>  <name>`` listing):
    recorded with the inputs, so an output made before a model was retrained into the same folder is not
    taken as done. Names with no weights found locally are left out."""
    import hashlib

    out = {}
    for key in MODELS:
        found = weight_files(getattr(cfg, key, None), getattr(cfg, "cache_dir", None))
        if found and found.get("files"):
            listing = "".join(f"{sha}  {name}\n" for name, sha in sorted(found["files"].items()))
            out[key] = hashlib.sha256(listing.encode()).hexdigest()
    return out


def weight_files(model: str | None, cache_dir: str | None = None) -> dict | None:
    """``{"path": ..., "files": {relative name: sha256}}`` of a model's weight files (a folder, a single
    file, ``builtin`` or a hub id found in the local cache), None for no model. Hashes are cached per
    process (by path, size and modification time), so a batch hashes a large model once."""
    if not model:
        return None
    path = Path(model)
    if str(model) == "builtin":
        from .ddpm.builtin import BUILTIN_DIR

        path = BUILTIN_DIR
    elif not path.exists():
        try:
            from huggingface_hub import snapshot_download

            path = Path(snapshot_download(str(model), cache_dir=cache_dir, local_files_only=True))
        except Exception:  # not in the local cache: the id is recorded without hashes
            return {"id": str(model), "files": None, "note": "not found locally; weights not hashed"}
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in WEIGHT_SUFFIXES)
    out = {}
    for p in files:
        out[str(p.relative_to(path)) if p != path else p.name] = cached_sha256(p)
    return {"id": str(model), "path": str(path), "files": out}


def versions() -> dict:
    """Installed versions of the libraries a result depends on (LittleCMS through imagecodecs)."""
    out = {}
    for name in VERSIONED:
        try:
            out[name] = dist.version(name)
        except dist.PackageNotFoundError:
            out[name] = None
    try:
        import imagecodecs

        out["lcms2"] = imagecodecs.cms_version()
    except Exception:
        out["lcms2"] = None
    return out


def regions(mask: np.ndarray, dpi: tuple[float, float] | None) -> list[dict]:
    """The repaired regions: 8-connected components of ``mask`` with id, bounding box ``[top, left,
    bottom, right]`` (exclusive ends, display pixels), area in pixels and, with a resolution, in mm^2."""
    import cv2

    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    px_mm2 = (25.4 / dpi[0]) * (25.4 / dpi[1]) if dpi else None
    out = []
    for i, (x, y, w, h, area) in enumerate(stats[1:n], start=1):
        out.append({"id": i, "bbox": [int(y), int(x), int(y + h), int(x + w)], "area_px": int(area),
                    "area_mm2": round(float(area) * px_mm2, 4) if px_mm2 else None})
    return out


def file_entry(path: Path | None) -> dict | None:
    return {"path": str(path), "sha256": sha256(path)} if path else None


def _existing(path) -> dict | None:
    """:func:`file_entry` of ``path`` when it names a file (the UI records names and "painted" masks)."""
    return file_entry(Path(path)) if path and Path(path).is_file() else None


def write_mask(path: Path, mask: np.ndarray) -> Path:
    """The repaired mask as an 8-bit grey PNG, white = repaired."""
    from .images import write_image

    return write_image(path, np.where(mask, 255, 0).astype(np.uint8)[..., None], "L", None, "png")


def write_record(path: Path, job, cfg, engine, rows: list[dict], mask_file: Path, meta: dict) -> Path:
    """``<stem>_record.json`` (see module docstring). ``rows``: per row ``{"row", "seed", "output",
    "fill_layer", "marked"}`` paths (None when not written)."""
    master = job.master
    info = engine.describe() if engine is not None else {}
    cache_dir = getattr(cfg, "cache_dir", None)
    model = {**info, "weights": weight_files(info.get("model") or cfg.model, cache_dir)}
    for key in ("lora", "controlnet"):
        if info.get(key) or getattr(cfg, key, None):
            model[f"{key}_weights"] = weight_files(info.get(key) or getattr(cfg, key), cache_dir)
    source, given = job.sources.get("image"), job.sources.get("mask")
    read = master.path if master is not None and master.path else source  # the file actually read (an upload)
    record = {
        "record_version": 1,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": {**({"source": source} if source else {}), **(_existing(read) or {}),
                  **(master.describe() if master else {})},
        "mask": {"given": _existing(given) or ({"source": given} if given else None),  # a file, or how it was made
                 "repaired": file_entry(mask_file)},
        "outputs": [{"row": r["row"], "seed": r["seed"], **{k: file_entry(r.get(k)) for k in ("output", "fill_layer", "marked")}}
                    for r in rows],
        "model": model,
        "seeds": list(job.seeds),
        "settings": meta.get("request"),
        "colour_management": cfg.colour_management,
        "output_format": meta.get("row_format"),
        "versions": versions(),
        "regions": regions(job.mask, master.dpi if master else None),
        "parameters": meta,
    }
    text = json.dumps(record, indent=1, sort_keys=True, default=str)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))


# --- the marked documentation copy -----------------------------------------------------------------

CANDIDATES = np.array([[255, 0, 255], [0, 255, 0], [0, 255, 255], [255, 255, 0], [255, 0, 0], [0, 0, 255],
                       [255, 128, 0], [0, 0, 0], [255, 255, 255]], np.float32)


def outline_colour(image: np.ndarray, near: np.ndarray) -> np.ndarray:
    """The candidate colour farthest (in RGB) from every pixel ``near`` a region (max of the 1st
    percentile of distances), so the outline stands out there."""
    px = image[near].astype(np.float32)
    if len(px) > 20000:  # a strided sample is enough to find what occurs nearby
        px = px[:: len(px) // 20000]
    dist = np.linalg.norm(px[None, :, :] - CANDIDATES[:, None, :], axis=2)  # (candidates, pixels)
    return CANDIDATES[int(np.argmax(np.percentile(dist, 1, axis=1)))].astype(np.uint8)


def mark_fills(row: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A documentation copy of a row (sRGB uint8, display orientation): every filled region outlined just
    outside its edge (the fill itself stays visible) in a colour chosen not to occur nearby."""
    import cv2

    width = max(2, round(max(mask.shape) / 400))
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((2 * width + 1,) * 2, np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    out = row.copy()
    h, w = mask.shape
    pad = 2 * width
    for i, (x, y, bw, bh, _) in enumerate(stats[1:n], start=1):
        t, l, b, r = max(0, y - pad), max(0, x - pad), min(h, y + bh + pad), min(w, x + bw + pad)
        region = labels[t:b, l:r] == i
        ring = region & ~mask[t:b, l:r]
        out[t:b, l:r][ring] = outline_colour(row[t:b, l:r], ~ring)  # the fill and what surrounds it
    return out


def write_marked(path: Path, row: np.ndarray, mask: np.ndarray, meta: dict) -> Path:
    return save_png(path, mark_fills(row, mask), {**meta, "marked_copy": True})
