"""Reading image files at full depth with everything they carry, and writing them back as drop-in
replacements (PNG or TIFF, atomically, with our parameters).

Inside the package a model sees an RGB array ``(H, W, 3)`` (see :mod:`inpaint_kit.colour`); a raw mask
file is read as a grey ``uint8`` array ``(H, W)`` and turned into a bool repair mask by
:mod:`inpaint_kit.masks`. What an image file holds beyond the model's RGB is kept aside in a
:class:`Master` (stored values at 8 or 16 bits in the stored orientation, colour mode, alpha, ICC
profile, resolution, EXIF, XMP, text chunks, TIFF compression) and given back by :func:`write_image`.

Design note: which library reads and writes what, and why
----------------------------------------------------------
* **TIFF pixels and tags: tifffile** (+ imagecodecs for LZW). Pillow has no 16-bit-per-channel RGB
  mode (it reads such files as 8-bit) and writes no 16-bit colour TIFF; tifffile reads and writes every
  baseline layout at full depth (chunky or planar, strips or tiles, none / LZW / deflate / PackBits),
  exposes every tag (ICC 34675, XMP 700, resolution, Orientation 274) and writes ICC, resolution,
  extra samples and arbitrary tags. It writes no EXIF sub-IFD, so :func:`write_image` appends that IFD
  itself (serialised by Pillow's ``ImageFileDirectory_v2``) and patches the pointer.
* **PNG pixels: imagecodecs' libpng codec**: 8- and 16-bit grey, grey+alpha, RGB and RGBA, in RGB order
  (OpenCV's ``IMREAD_UNCHANGED`` gives BGR and expands 16-bit grey+alpha to four channels; Pillow reads
  16-bit colour as 8-bit). It encodes only IHDR/IDAT, so the writer adds the ancillary chunks (iCCP, pHYs,
  eXIf, iTXt XMP, text) itself: a PNG source's ancillary chunks are carried byte for byte.
* **PNG/JPEG/WebP metadata and JPEG/WebP/other pixels: Pillow** (text chunks, ICC, dpi, EXIF, XMP; CMYK
  JPEG with Adobe inversion handled). JPEG and WebP are never written: a lossy input gives a lossless
  PNG (or TIFF for CMYK, which PNG cannot hold), never a second lossy encoding.
* **Colour conversions: LittleCMS** through imagecodecs' ``cms_transform`` (:mod:`inpaint_kit.colour`),
  which, unlike Pillow's ImageCms (8-bit modes only), transforms 16-bit and float data.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import warnings
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, unescape

import numpy as np
from PIL import Image, ImageOps

from .errors import InpaintKitError
from .orientation import orient, stored_coords, unorient  # noqa: F401 (part of this module's interface)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
MAX_IMAGE_MEGAPIXELS = 100.0  # default of --max_image_megapixels: larger files are refused before decoding
MAX_PIXELS = int(MAX_IMAGE_MEGAPIXELS * 1e6)
METADATA_KEY = "inpaint-kit"  # PNG text chunk holding our parameters as JSON
INFOTEXT_KEY = "parameters"  # AUTOMATIC1111's text chunk (infotext)
MODES = ("L", "LA", "RGB", "RGBA", "CMYK")  # colour modes a Master can have (alpha last)
SUPPORTED = "8/16-bit grey, grey+alpha, RGB, RGBA or CMYK"
XMP_NS = "http://ns.inpaint-kit.org/1.0/"  # our XMP namespace (TIFF provenance)
EXIF_IFDS = (0x8769, 0x8825)  # EXIF and GPS sub-IFDs
# IFD0 tags carried into a TIFF output (descriptive ones; structure, resolution, ICC and XMP are written
# from the Master's fields): DocumentName, Make, Model, Orientation, PageName, Software, DateTime, Artist,
# HostComputer, Copyright.
TIFF_CARRIED = (269, 271, 272, 274, 285, 305, 306, 315, 316, 33432)
RESOLUTION_UNITS = {2: "inch", 3: "cm"}
# TIFF compressions written back as they were; anything else (JPEG-in-TIFF, ...) is written as deflate
TIFF_LOSSLESS = {1: None, 5: "lzw", 8: "zlib", 32946: "zlib", 32773: "packbits", 50000: "zstd"}


@dataclass(eq=False)
class Master:
    """An image file as stored, and what it carries beyond the model's RGB (the writer gives it back).

    ``pixels``: ``(H, W, C)`` ``uint8`` or ``uint16`` stored values in the stored orientation, channels
    as ``mode`` names them (``L``, ``LA``, ``RGB``, ``RGBA``, ``CMYK``). ``orientation``: the EXIF/TIFF
    Orientation (1-8): the displayed image is :func:`orient` ``(pixels, orientation)``."""

    path: Path | None
    format: str  # "png", "tiff", "jpeg", "webp", ... (Pillow's name, lower case)
    pixels: np.ndarray
    mode: str
    icc: bytes | None = None
    resolution: tuple[float, float, str] | None = None  # (x, y, unit) per "inch" | "cm" | "m"
    exif: bytes | None = None  # TIFF-structured EXIF block ("II*\0..."), as in JPEG APP1 / PNG eXIf
    orientation: int = 1
    xmp: bytes | None = None
    text: dict[str, str] = field(default_factory=dict)  # PNG text chunks; TIFF ImageDescription
    compression: str | None = None  # TIFF: tifffile's name of the compression written back (None = none)
    predictor: int | None = None  # TIFF predictor (2 = horizontal differencing) kept with the compression
    png_chunks: list[tuple[bytes, bytes]] = field(default_factory=list)  # PNG ancillary chunks, verbatim
    notes: list[str] = field(default_factory=list)  # what the reader had to decide (first page of many, ...)

    @property
    def depth(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8

    @property
    def maxval(self) -> int:
        return 65535 if self.depth == 16 else 255

    @property
    def colour_mode(self) -> str:
        """The mode without alpha: ``L``, ``RGB`` or ``CMYK``."""
        return self.mode.removesuffix("A") if self.mode != "CMYK" else "CMYK"

    @property
    def colour_channels(self) -> int:
        return len(self.colour_mode)

    @property
    def display_hw(self) -> tuple[int, int]:
        h, w = self.pixels.shape[:2]
        return (w, h) if self.orientation in (5, 6, 7, 8) else (h, w)

    def describe(self) -> dict:
        """What the file is, for the metadata and the record."""
        dpi = self.dpi
        return {"format": self.format, "mode": self.mode, "bits": self.depth,
                "size": [int(self.pixels.shape[1]), int(self.pixels.shape[0])], "orientation": self.orientation,
                "icc_profile": _profile_name(self.icc) if self.icc else None,
                "dpi": [round(dpi[0], 4), round(dpi[1], 4)] if dpi else None,
                "compression": self.compression if self.format == "tiff" else None,
                "exif": self.exif is not None, "xmp": self.xmp is not None, "notes": list(self.notes)}

    def display(self) -> np.ndarray:
        """The stored pixels in display orientation (a view, no copy)."""
        return orient(self.pixels, self.orientation)

    def upright(self) -> "Master":
        """This image stored as it is displayed (orientation 1). The EXIF block, which names the old
        orientation, is dropped (and ``notes`` say so); ``self`` when it is upright already."""
        if self.orientation == 1:
            return self
        from dataclasses import replace

        return replace(self, pixels=np.ascontiguousarray(self.display()), orientation=1, exif=None,
                       png_chunks=[c for c in self.png_chunks if c[0] != b"eXIf"],
                       notes=[*self.notes,
                              f"written upright (EXIF orientation {self.orientation} applied, EXIF dropped)"])

    @property
    def dpi(self) -> tuple[float, float] | None:
        """Pixels per inch, when the file states a physical resolution."""
        if not self.resolution:
            return None
        x, y, unit = self.resolution
        per_inch = {"inch": 1.0, "cm": 2.54, "m": 0.0254}[unit]
        return x * per_inch, y * per_inch


def _profile_name(icc: bytes) -> str:
    from .colour import profile_name

    return profile_name(icc)


# --- reading -----------------------------------------------------------------------------------------

def _check_file(path: Path) -> None:
    if not path.is_file():
        raise InpaintKitError(f"{path}: no such file; check the path")
    if path.stat().st_size == 0:
        raise InpaintKitError(f"{path}: file is empty; re-export or replace it")


def _check_size(path: Path, w: int, h: int, max_pixels: int) -> None:
    if w * h > max_pixels:
        raise InpaintKitError(
            f"{path}: {w}x{h} ({w * h / 1e6:.1f} MP) is over the {max_pixels / 1e6:g} MP limit; "
            "downscale it first or raise --max_image_megapixels")


@contextmanager
def _our_limit():
    """Pillow's decompression-bomb check off: our --max_image_megapixels decides (checked on the header)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _open(path: str | Path, max_pixels: int) -> Image.Image:
    """Open and fully decode an image with Pillow, turning every failure into one line naming the file."""
    path = Path(path)
    _check_file(path)
    try:
        # Our limit decides, not Pillow's own (89.5 MP warning, 179 MP error): Pillow's check is off while
        # it reads the header, and the size is checked right after, before anything is decoded.
        with _our_limit():
            im = Image.open(path)
            _check_size(path, *im.size, max_pixels)
            im.load()
    except InpaintKitError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InpaintKitError(f"{path}: refused as a possible decompression bomb ({e}); downscale it first")
    except (OSError, ValueError, SyntaxError) as e:  # PIL's errors for truncated / unknown files
        raise InpaintKitError(f"{path}: not a readable image ({e}); re-export it as PNG, TIFF or JPEG")
    return im


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> Master:
    """Read an image file at full depth with everything it carries (:class:`Master`). Files over
    ``max_pixels`` are refused before decoding; an unsupported layout is a one-line error naming the file
    and what is supported (never a silently degraded image)."""
    path = Path(path)
    _check_file(path)
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return _read_tiff(path, max_pixels)
    if head == b"\x89PNG\r\n\x1a\n":
        return _read_png(path, max_pixels)
    return _read_pillow(path, _open(path, max_pixels))


def _exif_block(raw: bytes | None) -> bytes | None:
    """EXIF as a TIFF-structured block, without JPEG's ``Exif\\0\\0`` prefix (None if empty)."""
    if not raw:
        return None
    raw = raw[6:] if raw.startswith(b"Exif\x00\x00") else raw
    return raw or None


def _orientation(exif: bytes | None) -> int:
    if not exif:
        return 1
    ex = Image.Exif()
    try:
        ex.load(exif)
    except (OSError, ValueError, struct.error, SyntaxError):
        return 1
    o = ex.get(274, 1)
    return int(o) if o in range(1, 9) else 1


def _pillow_extras(im: Image.Image) -> dict:
    """ICC, resolution, EXIF (+ orientation) and XMP as Pillow reads them (PNG, JPEG, WebP, ...)."""
    info = im.info
    res = None
    if info.get("dpi"):
        x, y = (float(v) for v in info["dpi"])
        if x > 0 and y > 0:
            res = (x, y, "inch")
    exif = _exif_block(info.get("exif"))
    xmp = info.get("xmp") or info.get("XML:com.adobe.xmp")
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    return {"icc": info.get("icc_profile") or None, "resolution": res, "exif": exif,
            "orientation": _orientation(exif), "xmp": xmp or None}


def _read_pillow(path: Path, im: Image.Image) -> Master:
    """JPEG, WebP, BMP, GIF, ... through Pillow (8 bits per channel)."""
    notes = []
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        pixels = np.asarray(im, dtype=np.uint16)[..., None]
        mode = "L"
    elif mode in ("1", "L", "RGB", "RGBA", "LA", "CMYK"):
        pixels = np.asarray(im.convert("L") if mode == "1" else im)
        mode = "L" if mode == "1" else mode
    elif mode in ("P", "PA"):
        target = "RGBA" if "transparency" in im.info or mode == "PA" else "RGB"
        pixels, mode = np.asarray(im.convert(target)), target
        notes.append(f"palette image: written as {target}")
    else:
        raise InpaintKitError(f"{path}: Pillow mode {mode} is not supported; supported: {SUPPORTED}")
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    fmt = (im.format or path.suffix.lstrip(".")).lower()
    text = {k: v for k, v in getattr(im, "text", {}).items() if k not in (METADATA_KEY, INFOTEXT_KEY, "XML:com.adobe.xmp")}
    return Master(path, fmt, np.ascontiguousarray(pixels), mode, **_pillow_extras(im), text=text, notes=notes)


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """``(type, data)`` of every chunk of a PNG file (IDAT's data left out: never copied)."""
    chunks, i = [], 8
    while i + 8 <= len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        kind = data[i + 4:i + 8]
        chunks.append((kind, b"" if kind == b"IDAT" else data[i + 8:i + 8 + n]))
        i += 12 + n
        if kind == b"IEND":
            break
    return chunks


def _text_key(kind: bytes, data: bytes) -> str:
    return data.split(b"\x00", 1)[0].decode("latin-1")


# PNG chunks a restored file carries over (colour, resolution, EXIF, text); PLTE/tRNS/hIST/sPLT depend on
# the stored palette and tIME on the moment of writing, so they are not carried (tRNS is for same-depth keys).
PNG_CARRIED = (b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"cICP", b"sBIT", b"pHYs", b"eXIf", b"tEXt", b"zTXt", b"iTXt",
               b"bKGD")


def _read_png(path: Path, max_pixels: int) -> Master:
    import imagecodecs

    data = path.read_bytes()
    chunks = _png_chunks(data)
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) < 13:
        raise InpaintKitError(f"{path}: not a readable image (PNG without IHDR); re-export it")
    w, h, bits, colour_type = struct.unpack(">IIBB", chunks[0][1][:10])
    _check_size(path, w, h, max_pixels)
    if colour_type == 3 or bits < 8:  # palette or 1/2/4-bit grey: Pillow expands them to 8 bits
        return _read_pillow(path, _open(path, max_pixels))
    try:
        pixels = imagecodecs.png_decode(data)
        with _our_limit(), Image.open(path) as im:  # metadata only (not decoded)
            extras = _pillow_extras(im)
            text = {k: v for k, v in getattr(im, "text", {}).items()}
    except Exception as e:  # libpng / Pillow errors for damaged files
        raise InpaintKitError(f"{path}: not a readable image (PNG: {e}); re-export it")
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[pixels.shape[2]]
    keep = [(k, d) for k, d in chunks if k in PNG_CARRIED or (k == b"tRNS" and colour_type in (0, 2))]
    keep = [(k, d) for k, d in keep
            if not (k in (b"tEXt", b"zTXt", b"iTXt") and _text_key(k, d) in (METADATA_KEY, INFOTEXT_KEY))]
    for key in (METADATA_KEY, INFOTEXT_KEY, "XML:com.adobe.xmp"):
        text.pop(key, None)
    return Master(path, "png", np.ascontiguousarray(pixels), mode, text=text, png_chunks=keep, **extras)


def _read_tiff(path: Path, max_pixels: int) -> Master:
    import tifffile

    try:
        tf = tifffile.TiffFile(path)
    except Exception as e:  # tifffile raises TiffFileError, ValueError, struct.error on broken headers
        raise InpaintKitError(f"{path}: not a readable image (TIFF: {e}); re-export it")
    try:
        with tf:
            return _tiff_master(path, tf, max_pixels)
    except InpaintKitError:
        raise
    except Exception as e:  # a damaged IFD, no page at all, a codec tifffile lacks
        raise InpaintKitError(f"{path}: not a readable image (TIFF: {e!r}); re-export it") from None


def _tiff_master(path: Path, tf, max_pixels: int) -> Master:
    import tifffile

    page = tf.pages.first
    pages = len(tf.pages)
    h, w = page.imagelength, page.imagewidth
    _check_size(path, w, h, max_pixels)
    mode = _tiff_mode(path, page)
    try:
        pixels = page.asarray()
    except Exception as e:  # missing codec, truncated strips
        raise InpaintKitError(f"{path}: TIFF pixels could not be decoded ({e}); re-export it")
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    elif page.planarconfig == tifffile.PLANARCONFIG.SEPARATE and pixels.shape[0] == len(mode):
        pixels = np.moveaxis(pixels, 0, -1)
    tags = page.tags
    value = lambda code: tags[code].value if code in tags else None  # noqa: E731
    icc = value(34675)
    xmp = value(700)
    res = None
    unit = RESOLUTION_UNITS.get(int(value(296) or 2))
    xr, yr = value(282), value(283)
    if unit and xr and yr:
        x, y = xr[0] / xr[1], yr[0] / yr[1]
        res = (x, y, unit) if x > 0 and y > 0 else None
    code = int(page.compression)
    compression = TIFF_LOSSLESS.get(code, "zlib")
    notes = []
    if pages > 1:
        notes.append(f"multi-page TIFF: page 1 of {pages} used (the others are not written)")
    if code not in TIFF_LOSSLESS:
        notes.append(f"TIFF compression {page.compression.name}: written as deflate (lossless)")
    desc = value(270)
    text = {"ImageDescription": desc} if isinstance(desc, str) and desc else {}
    predictor = int(page.predictor) if compression and int(page.predictor) in (2, 3) else None
    exif = _tiff_exif(path)
    orientation = int(value(274) or 1)
    return Master(path, "tiff", np.ascontiguousarray(pixels), mode, icc=bytes(icc) if icc else None,
                  resolution=res, exif=exif, orientation=orientation if orientation in range(1, 9) else 1,
                  xmp=bytes(xmp) if xmp else None, text=text, compression=compression, predictor=predictor,
                  notes=notes)


def _tiff_mode(path: Path, page) -> str:
    """The Master mode of a TIFF page, or a one-line error naming what is supported."""
    import tifffile

    P = tifffile.PHOTOMETRIC
    dtype, samples, extra = np.dtype(page.dtype) if page.dtype else None, page.samplesperpixel, page.extrasamples
    what = f"{page.photometric.name} {samples} sample(s) of {page.dtype}"
    if dtype not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        raise InpaintKitError(f"{path}: {what} is not supported (supported: {SUPPORTED} TIFF); "
                              "convert it to 16-bit integer first")
    modes = {(P.MINISBLACK, 1): "L", (P.MINISBLACK, 2): "LA", (P.RGB, 3): "RGB", (P.RGB, 4): "RGBA",
             (P.SEPARATED, 4): "CMYK", (P.YCBCR, 3): "RGB"}
    mode = modes.get((page.photometric, samples))
    if mode is None or (mode in ("LA", "RGBA") and len(extra) != 1) or (mode == "CMYK" and 332 in page.tags and page.tags[332].value != 1):
        raise InpaintKitError(f"{path}: {what} is not supported (supported: {SUPPORTED} TIFF); convert it first")
    return mode


def _tiff_exif(path: Path) -> bytes | None:
    """A TIFF's descriptive IFD0 tags (:data:`TIFF_CARRIED`) and its EXIF/GPS sub-IFDs as one EXIF block
    (Pillow reads them; a TIFF Pillow cannot open keeps no EXIF)."""
    try:
        with _our_limit(), Image.open(path) as im:
            src = im.getexif()
            ex = Image.Exif()
            for tag in TIFF_CARRIED:
                if tag in src:
                    ex[tag] = src[tag]
            for tag in EXIF_IFDS:
                sub = src.get_ifd(tag)
                if sub:
                    ex[tag] = dict(sub)
    except Exception:  # Pillow cannot parse every TIFF layout; the pixels come from tifffile anyway
        return None
    return _exif_block(ex.tobytes()) if len(ex) else None


# --- writing -----------------------------------------------------------------------------------------

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


def replace_folder(tmp: str | Path, out: str | Path) -> Path:
    """Move the finished folder ``tmp`` onto ``out``; an existing ``out`` is moved aside first and removed
    only after the rename, so a crash never leaves neither (nor half of one)."""
    tmp, out = Path(tmp), Path(out)
    if out.exists():
        old = out.with_name(f".{out.name}.old.{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
    return out


def output_format(master: Master | None, wanted: str = "auto") -> str:
    """``png`` or ``tiff`` for a row made from ``master``: ``auto`` keeps TIFF as TIFF and gives PNG for
    everything else (lossless; a JPEG or WebP is never encoded lossily again) except CMYK, which PNG
    cannot hold (TIFF)."""
    if master is None:
        fmt = "png" if wanted == "auto" else wanted
    elif wanted == "auto":
        fmt = "tiff" if master.format == "tiff" or master.mode == "CMYK" else "png"
    else:
        fmt = wanted
    if fmt == "png" and master is not None and master.mode == "CMYK":
        raise InpaintKitError(f"{master.path}: CMYK cannot be written as PNG; use --output_format auto or tiff")
    return fmt


def extension(fmt: str) -> str:
    return {"png": ".png", "tiff": ".tif"}[fmt]


def write_image(path: str | Path, pixels: np.ndarray, mode: str, master: Master | None = None,
                fmt: str | None = None, metadata: dict | None = None, infotext: str | None = None) -> Path:
    """Write stored values ``pixels`` ``(H, W, C)`` (``uint8`` or ``uint16``, channels as ``mode`` names
    them, alpha last) atomically as PNG or TIFF (``fmt``, default from the suffix), carrying ``master``'s
    ICC profile, resolution, EXIF (with its Orientation), XMP and text, with our ``metadata`` (JSON) and
    A1111 ``infotext``: PNG text chunks, or for TIFF an ``rdf:Description`` of our namespace in the XMP
    (:func:`read_metadata` reads both)."""
    fmt = fmt or ("tiff" if Path(path).suffix.lower() in (".tif", ".tiff") else "png")
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    pixels = np.ascontiguousarray(pixels)  # encoders need C order (a transposed view, e.g. a pipeline's output)
    if pixels.dtype not in (np.uint8, np.uint16) or pixels.shape[2] != len(mode):
        raise ValueError(f"write_image: {pixels.dtype} {pixels.shape} does not fit mode {mode}")
    if fmt == "png":
        return atomic_write(path, lambda tmp: _write_png(tmp, pixels, mode, master, metadata, infotext))
    return atomic_write(path, lambda tmp: _write_tiff(tmp, pixels, mode, master, metadata, infotext))


def save_png(path: str | Path, image: np.ndarray, metadata: dict | None = None, infotext: str | None = None) -> Path:
    """Write an RGB uint8 image as PNG (atomically), with ``metadata`` as JSON in the ``inpaint-kit`` text
    chunk and, if given, ``infotext`` (:func:`inpaint_kit.infotext.a1111`) in AUTOMATIC1111's ``parameters``
    chunk, which image viewers, web UIs and metadata readers parse."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"save_png expects RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
    return write_image(path, image, "RGB", None, "png", metadata, infotext)


def save_png_bands(path: str | Path, hw: tuple[int, int], bands, metadata: dict | None = None,
                   infotext: str | None = None, level: int = 6) -> Path:
    """Write an RGB uint8 PNG of size ``hw`` from ``bands`` (an iterable of ``(n, W, 3)`` arrays, top to
    bottom), atomically, with :func:`save_png`'s text chunks. The image never exists whole: a large scan's
    collage costs one band of memory. Each scanline uses PNG's Sub filter, compressed by zlib as it comes."""
    h, w = hw

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
            if metadata:
                f.write(_text_chunk(METADATA_KEY, json.dumps(metadata, sort_keys=True)))
            if infotext:
                f.write(_text_chunk(INFOTEXT_KEY, infotext))
            z, done = zlib.compressobj(level), 0
            for band in bands:
                if not len(band):
                    continue
                line = band.reshape(band.shape[0], w * 3)
                sub = line.copy()
                sub[:, 3:] -= line[:, :-3]  # Sub filter: each byte minus the one a pixel to the left (mod 256)
                data = np.concatenate([np.ones((len(line), 1), np.uint8), sub], axis=1)  # filter type 1 per line
                packed = z.compress(memoryview(data).cast("B"))
                if packed:
                    f.write(_chunk(b"IDAT", packed))
                done += len(line)
            if done != h:
                raise ValueError(f"save_png_bands: {done} lines given for a height of {h}")
            f.write(_chunk(b"IDAT", z.flush()) + _chunk(b"IEND", b""))

    return atomic_write(path, write)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _text_chunk(key: str, value: str) -> bytes:
    """tEXt when latin-1 holds the value (what A1111 readers expect), else uncompressed iTXt (UTF-8)."""
    try:
        return _chunk(b"tEXt", key.encode("latin-1") + b"\x00" + value.encode("latin-1"))
    except UnicodeEncodeError:
        return _chunk(b"iTXt", key.encode("latin-1") + b"\x00\x00\x00\x00\x00" + value.encode("utf-8"))


def _write_png(tmp, pixels: np.ndarray, mode: str, master: Master | None, metadata, infotext) -> None:
    """libpng's encoding (IHDR + IDAT only) with our ancillary chunks put right after IHDR, written in
    pieces: a large image's compressed data is never copied."""
    import imagecodecs

    if mode in ("CMYK", "CMYKA"):
        raise InpaintKitError("CMYK cannot be written as PNG; use TIFF")
    data = imagecodecs.png_encode(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
    extra = []
    if master is not None and master.png_chunks:
        extra = [_chunk(k, d) for k, d in master.png_chunks]  # a PNG's own chunks, byte for byte
    elif master is not None:
        if master.icc:
            extra.append(_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(master.icc)))
        if master.resolution:
            x, y = master.dpi
            extra.append(_chunk(b"pHYs", struct.pack(">IIB", round(x / 0.0254), round(y / 0.0254), 1)))
        if master.exif:
            extra.append(_chunk(b"eXIf", master.exif))
        if master.xmp:
            extra.append(_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + master.xmp))
        extra += [_text_chunk(k, v) for k, v in master.text.items()]
    if metadata:
        extra.append(_text_chunk(METADATA_KEY, json.dumps(metadata, sort_keys=True)))
    if infotext:
        extra.append(_text_chunk(INFOTEXT_KEY, infotext))
    after_ihdr = 8 + 25  # signature, then IHDR (13 data bytes): the ancillary chunks go before any IDAT
    if data[12:16] != b"IHDR":
        raise ValueError("unexpected PNG encoder output")
    with open(tmp, "wb") as f:
        f.write(memoryview(data)[:after_ihdr])
        f.write(b"".join(extra))
        f.write(memoryview(data)[after_ihdr:])


def provenance_xmp(xmp: bytes | None, metadata: dict | None, infotext: str | None) -> bytes | None:
    """``xmp`` (kept as it is) with one more ``rdf:Description`` holding our parameters and infotext; a
    new packet when there is none. Earlier restorations' descriptions stay (the file's history)."""
    if not metadata and not infotext:
        return xmp
    ours = (f'<rdf:Description rdf:about="" xmlns:inpaintkit="{XMP_NS}">'
            f"<inpaintkit:parameters>{escape(json.dumps(metadata or {}, sort_keys=True))}</inpaintkit:parameters>"
            f"<inpaintkit:infotext>{escape(infotext or '')}</inpaintkit:infotext></rdf:Description>")
    if xmp:
        text = xmp.decode("utf-8", "replace")
        at = text.rfind("</rdf:RDF>")
        if at >= 0:
            return (text[:at] + ours + text[at:]).encode("utf-8")
        return xmp  # not an RDF packet: carried as it is, without our description (read_metadata finds none)
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' + ours +
            '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode("utf-8")


def _write_tiff(tmp, pixels: np.ndarray, mode: str, master: Master | None, metadata, infotext) -> None:
    import tifffile

    colour = "CMYK" if mode.startswith("CMYK") else mode.removesuffix("A")
    photometric = {"L": "minisblack", "RGB": "rgb", "CMYK": "separated"}[colour]
    alpha = pixels.shape[2] > len(colour)
    kwargs = {}
    compression = master.compression if master is not None and master.format == "tiff" else "zlib"
    if compression:
        kwargs["compression"] = compression
        if master is not None and master.predictor and master.format == "tiff":
            kwargs["predictor"] = master.predictor
    if master is not None and master.resolution:
        x, y, unit = master.resolution
        if unit == "m":
            x, y, unit = x / 100, y / 100, "cm"
        kwargs.update(resolution=(x, y), resolutionunit={"inch": "INCH", "cm": "CENTIMETER"}[unit])
    icc = master.icc if master is not None else None
    xmp = provenance_xmp(master.xmp if master is not None else None, metadata, infotext)
    extratags = [(700, 1, len(xmp), xmp, True)] if xmp else []
    ifd0, subifds = _exif_for_tiff(master.exif if master is not None else None)
    software = False
    for code, (dtype, count, value) in ifd0.items():
        if code == 305:
            software = value
        else:
            extratags.append((code, dtype, count, value, True))
    description = master.text.get("ImageDescription") if master is not None else None
    single = pixels.shape[2] == 1  # grey: a 2-D page (tifffile takes (H, W, 1) for 1-sample planar data)
    tifffile.imwrite(tmp, pixels[..., 0] if single else pixels, photometric=photometric,
                     planarconfig=None if single else "contig", metadata=None,
                     description=description, software=software, iccprofile=icc,
                     extrasamples=("unassalpha",) if alpha else None, extratags=extratags, **kwargs)
    if subifds:
        _append_subifds(tmp, subifds)


def _exif_for_tiff(exif: bytes | None) -> tuple[dict, dict]:
    """``(ifd0, subifds)`` of an EXIF block for a TIFF: the carried IFD0 tags as tifffile extratags
    ``{code: (dtype, count, value)}`` and the EXIF/GPS sub-IFDs as ``{pointer tag: {tag: value}}``."""
    from PIL import TiffTags

    ifd0, subifds = {}, {}
    if not exif:
        return ifd0, subifds
    ex = Image.Exif()
    try:
        ex.load(exif)
    except Exception:  # an unparsable EXIF block is not carried into a TIFF (it stays in PNG eXIf as is)
        return ifd0, subifds
    for code in TIFF_CARRIED:
        v = ex.get(code)
        if isinstance(v, str):
            ifd0[code] = (2, 0, v)
        elif isinstance(v, int) and TiffTags.lookup(code).type == TiffTags.SHORT:
            ifd0[code] = (3, 1, v)
    for tag in EXIF_IFDS:
        sub = ex.get_ifd(tag)
        if sub:
            subifds[tag] = dict(sub)
    return ifd0, subifds


def _append_subifds(path, subifds: dict) -> None:
    """Give a classic little-endian TIFF written by tifffile (which refuses to write the EXIF/GPS pointer
    tags) its EXIF/GPS sub-IFDs: append them, then append a copy of IFD0 with the pointer entries added
    (entries stay sorted; every other entry's offsets are unchanged) and point the header at it."""
    from PIL import TiffImagePlugin

    with open(path, "r+b") as f:
        head = f.read(8)
        if head[:4] != b"II*\x00":  # BigTIFF (> 4 GB): the EXIF is not carried (noted by the caller's record)
            return
        (ifd,) = struct.unpack("<I", head[4:8])
        f.seek(ifd)
        (n,) = struct.unpack("<H", f.read(2))
        entries = [f.read(12) for _ in range(n)]
        (next_ifd,) = struct.unpack("<I", f.read(4))
        for tag, values in sorted(subifds.items()):
            f.seek(0, 2)
            at = f.tell() + (f.tell() & 1)  # IFDs start on a word boundary
            sub = TiffImagePlugin.ImageFileDirectory_v2(ifh=b"II*\x00\x08\x00\x00\x00")
            for k, v in values.items():
                sub[k] = v
            f.write(b"\x00" * (at - f.tell()) + sub.tobytes(at))
            entries.append(struct.pack("<HHII", tag, 4, 1, at))  # LONG offset, as cameras write it
        entries.sort(key=lambda e: struct.unpack("<H", e[:2])[0])
        f.seek(0, 2)
        at = f.tell() + (f.tell() & 1)
        f.write(b"\x00" * (at - f.tell()) + struct.pack("<H", len(entries)) + b"".join(entries)
                + struct.pack("<I", next_ifd))
        f.seek(4)
        f.write(struct.pack("<I", at))


# --- metadata ----------------------------------------------------------------------------------------

_XMP_PARAMS = re.compile(r"<inpaintkit:parameters>(.*?)</inpaintkit:parameters>", re.S)


def read_metadata(path: str | Path) -> dict:
    """Return the parameters an inpaint-kit PNG or TIFF was written with ({} if it carries none): the PNG
    ``inpaint-kit`` text chunk, or the last ``inpaintkit:parameters`` of a TIFF's XMP."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(4)
    if head in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        import tifffile

        with tifffile.TiffFile(path) as tf:
            xmp = tf.pages.first.tags.get(700)
            found = _XMP_PARAMS.findall(bytes(xmp.value).decode("utf-8", "replace")) if xmp else []
        return json.loads(unescape(found[-1])) if found else {}
    with _our_limit(), Image.open(path) as im:
        text = getattr(im, "text", {}) or im.info
        raw = text.get(METADATA_KEY)
    return json.loads(raw) if raw else {}


# --- the model's view of a file, and masks -----------------------------------------------------------

def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read any image file as the model sees it: sRGB RGB uint8 ``(H, W, 3)``, EXIF orientation applied,
    grey/palette/16-bit/CMYK converted, the ICC profile converted to sRGB, alpha dropped (transparency is
    not a repair region by itself). :func:`read_image` keeps everything else."""
    from .colour import model_rgb

    return model_rgb(read_image(path, max_pixels))


def _to_uint8(im: Image.Image) -> Image.Image:
    """Reduce 16-bit and 32-bit single-channel images to 8 bits by scaling (not clipping)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        return Image.fromarray(np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    return im


def load_grey(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a mask file as grey uint8 ``(H, W)`` (luminance; alpha ignored), EXIF rotation applied."""
    return load_mask_channels(path, max_pixels)[0]


def load_mask_channels(path: str | Path, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a mask file as ``(grey, alpha)`` (:func:`mask_channels`)."""
    return mask_channels(_open(path, max_pixels))


def rgb_array(im: Image.Image) -> np.ndarray:
    """An opened PIL image (any mode) as RGB uint8 ``(H, W, 3)``, EXIF orientation applied (the Python
    API's PIL inputs; files go through :func:`load_image`)."""
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
