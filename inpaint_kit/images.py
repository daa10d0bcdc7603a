"""Reading images and masks from any common file, and writing PNGs atomically with their parameters.

Inside the package an image is an RGB ``uint8`` array ``(H, W, 3)``; a raw mask file is read as a
grey ``uint8`` array ``(H, W)`` and turned into a bool repair mask by :mod:`inpaint_kit.masks`.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin

from .errors import InpaintKitError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
MAX_IMAGE_MEGAPIXELS = 100.0  # default of --max_image_megapixels: larger files are refused before decoding
MAX_PIXELS = int(MAX_IMAGE_MEGAPIXELS * 1e6)
METADATA_KEY = "inpaint-kit"


def _open(path: str | Path, max_pixels: int) -> Image.Image:
    """Open and fully decode an image, turning every failure into one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InpaintKitError(f"{path}: no such file; check the path")
    if path.stat().st_size == 0:
        raise InpaintKitError(f"{path}: file is empty; re-export or replace it")
    try:
        # Our limit decides, not Pillow's own (89.5 MP warning, 179 MP error): Pillow's check is off while
        # it reads the header, and the size is checked right after, before anything is decoded.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                im = Image.open(path)
                w, h = im.size
                if w * h > max_pixels:
                    raise InpaintKitError(
                        f"{path}: {w}x{h} ({w * h / 1e6:.1f} MP) is over the {max_pixels / 1e6:g} MP limit; "
                        "downscale it first or raise --max_image_megapixels")
                im.load()
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except InpaintKitError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InpaintKitError(f"{path}: refused as a possible decompression bomb ({e}); downscale it first")
    except (OSError, ValueError, SyntaxError) as e:  # PIL's errors for truncated / unknown files
        raise InpaintKitError(f"{path}: not a readable image ({e}); re-export it as PNG or JPEG")
    # Phone and camera photos store their orientation in EXIF: rgb_array / mask_channels apply it so that
    # image and mask agree with what every image viewer shows.
    return im


def _to_uint8(im: Image.Image) -> Image.Image:
    """Reduce 16-bit and 32-bit single-channel images to 8 bits by scaling (not clipping)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        return Image.fromarray(np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    return im


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read any image file as RGB uint8 ``(H, W, 3)``: EXIF rotation applied, grey/palette/16-bit
    converted, alpha dropped (transparency is not a repair region by itself)."""
    return rgb_array(_open(path, max_pixels))


def load_grey(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a mask file as grey uint8 ``(H, W)`` (luminance; alpha ignored), EXIF rotation applied."""
    return load_mask_channels(path, max_pixels)[0]


def load_mask_channels(path: str | Path, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a mask file as ``(grey, alpha)`` (:func:`mask_channels`)."""
    return mask_channels(_open(path, max_pixels))


def rgb_array(im: Image.Image) -> np.ndarray:
    """An opened PIL image (any mode) as RGB uint8 ``(H, W, 3)``, EXIF orientation applied (files and the
    Python API read images the same way)."""
    im = _to_uint8(ImageOps.exif_transpose(im))
    if im.mode in ("RGBA", "LA", "PA", "P"):
        im = im.convert("RGBA")  # palette transparency and alpha are dropped, colours kept
    return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


def mask_channels(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """An opened PIL mask image as ``(grey, alpha)``: grey uint8 ``(H, W)`` luminance of the colour
    channels, and the alpha channel uint8 ``(H, W)`` if it has one (else None), EXIF orientation applied.
    :func:`inpaint_kit.masks.from_channels` decides which of the two is the mask."""
    im = _to_uint8(ImageOps.exif_transpose(im))
    alpha = None
    if im.mode in ("RGBA", "LA", "PA", "P"):
        im = im.convert("RGBA")
        if im.mode == "RGBA" and "A" in im.getbands():
            alpha = np.ascontiguousarray(np.asarray(im.getchannel("A"), dtype=np.uint8))
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im.convert("L"), dtype=np.uint8)), alpha


def atomic_write(path: str | Path, write) -> Path:
    """Call ``write(tmp_path)`` then rename onto ``path``, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def save_png(path: str | Path, image: np.ndarray, metadata: dict | None = None, infotext: str | None = None) -> Path:
    """Write an RGB uint8 image as PNG (atomically), with ``metadata`` as JSON in the ``inpaint-kit`` text
    chunk and, if given, ``infotext`` (:func:`inpaint_kit.infotext.a1111`) in AUTOMATIC1111's ``parameters``
    chunk, which image viewers, web UIs and metadata readers parse."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"save_png expects RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
    info = PngImagePlugin.PngInfo()
    if metadata:
        info.add_text(METADATA_KEY, json.dumps(metadata, sort_keys=True))
    if infotext:
        info.add_text("parameters", infotext)
    return atomic_write(path, lambda tmp: Image.fromarray(image, "RGB").save(tmp, format="PNG", pnginfo=info))


def read_metadata(path: str | Path) -> dict:
    """Return the parameters an inpaint-kit PNG was written with ({} if it carries none)."""
    with Image.open(path) as im:
        text = getattr(im, "text", {}) or im.info
        raw = text.get(METADATA_KEY)
    return json.loads(raw) if raw else {}
