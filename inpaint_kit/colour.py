"""Colour: the model's sRGB view of a :class:`~inpaint_kit.images.Master`, and fill values taken back to
the master's own colour space.

Models expect sRGB. With colour management on (``--colour_management on``, the default) an image whose
ICC profile is not sRGB is converted to sRGB for the model, and the fill is converted back to the image's
profile before it is pasted; pixels outside the mask never go through a conversion (they are copied as
stored). Conversions are LittleCMS (relative colorimetric) through imagecodecs' ``cms_transform``, which
transforms 16-bit and floating-point data; Pillow's ImageCms only handles 8-bit modes, which would put
256-level steps into a 16-bit fill. The fill goes back in float64 and is quantised once, to the master's
depth (:func:`quantise`).

Without a profile (or with management off) stored values are taken as sRGB: grey is repeated into RGB
and a fill goes back to grey as the luminance of its sRGB colour; CMYK uses the plain
``R = (1 - C)(1 - K)`` formula and its inverse with full black generation.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .orientation import unorient


def profile_name(icc: bytes) -> str:
    """An ICC profile's description (LittleCMS through Pillow's ImageCms), or ``"unnamed"``."""
    import io

    from PIL import ImageCms

    try:
        return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip() or "unnamed"
    except (OSError, ImageCms.PyCMSError, TypeError, ValueError):
        return "unreadable profile"


CMS_SPACE = {"L": "gray", "RGB": "rgb", "CMYK": "cmyk"}
STRIP = 256  # rows converted at a time: temporaries stay a small part of a large master


@lru_cache(maxsize=1)
def srgb_profile() -> bytes:
    """LittleCMS's built-in sRGB profile."""
    import imagecodecs

    return imagecodecs.cms_profile("srgb")


@lru_cache(maxsize=16)
def is_srgb(icc: bytes) -> bool:
    """Whether a profile is an sRGB profile (by its description: sRGB IEC61966-2.1 and its variants)."""
    return "srgb" in profile_name(icc).lower().replace(" ", "")


def managed(master, colour_management: bool = True) -> bool:
    """Whether the model's view and the fill go through a profile conversion for ``master``."""
    return bool(colour_management and master.icc and not is_srgb(master.icc))


def _cms(values: np.ndarray, src: bytes, dst: bytes, space_in: str, space_out: str, dtype) -> np.ndarray:
    import imagecodecs

    return imagecodecs.cms_transform(np.ascontiguousarray(values), src, dst, colorspace=space_in,
                                     outcolorspace=space_out, outdtype=dtype,
                                     intent=imagecodecs.CMS.INTENT.RELATIVE_COLORIMETRIC)


def model_rgb(master, colour_management: bool = True) -> np.ndarray:
    """The image as the model sees it: sRGB RGB ``uint8`` ``(H, W, 3)`` in display orientation, alpha
    dropped. Converted in strips of rows, so a large master needs only its output beside it."""
    h, w = master.pixels.shape[:2]
    hd, wd = master.display_hw
    out = np.empty((hd, wd, 3), np.uint8)
    stored = unorient(out, master.orientation)  # a view of ``out`` in stored order: strips land in place
    colour = master.pixels[..., :master.colour_channels]
    cms = managed(master, colour_management)
    for r0 in range(0, h, STRIP):
        part = colour[r0:r0 + STRIP]
        if cms:
            rgb = _cms(part, master.icc, srgb_profile(), CMS_SPACE[master.colour_mode], "rgb", np.uint8)
        else:
            rgb = _plain_rgb(part, master.colour_mode, master.maxval)
        stored[r0:r0 + STRIP] = rgb.reshape(part.shape[0], w, 3)
    return out


def _plain_rgb(part: np.ndarray, mode: str, maxval: int) -> np.ndarray:
    """Stored values taken as sRGB, to RGB uint8 (rounded, exact for 8-bit)."""
    if mode == "CMYK":
        f = part.astype(np.float32) / maxval
        rgb = (1.0 - f[..., :3]) * (1.0 - f[..., 3:4])
        return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)
    if maxval == 65535:
        part = ((part.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.repeat(part, 3, axis=2) if mode == "L" else part


def to_master(values: np.ndarray, master, colour_management: bool = True) -> np.ndarray:
    """Fill values ``(N, 3)`` in sRGB (float in [0, 1], or uint8 taken exactly as ``v / 255``) in the
    master's colour space: ``(N, C)`` float in [0, 1], C = 1 (grey), 3 (RGB) or 4 (CMYK), not quantised.
    An sRGB RGB master gets the values themselves (float32 fills stay float32, so quantising them rounds as
    the engines' own 8-bit rounding does); every conversion computes in float64."""
    v = values.astype(np.float64) / 255.0 if values.dtype == np.uint8 else values
    v = np.clip(v, 0.0, 1.0)
    mode = master.colour_mode
    if len(v) and managed(master, colour_management):
        v = v.astype(np.float64)
        if mode == "CMYK":  # LittleCMS's float CMYK is in ink percent: go through 16 bits instead
            out = _cms(v[:, None], srgb_profile(), master.icc, "rgb", "cmyk", np.uint16) / 65535.0
        else:
            out = _cms(v[:, None], srgb_profile(), master.icc, "rgb", CMS_SPACE[mode], np.float64)
        return np.clip(out.reshape(len(v), len(mode)), 0.0, 1.0)
    if mode == "L":
        return srgb_luminance(v.astype(np.float64))[:, None]
    if mode == "CMYK":
        v = v.astype(np.float64)
        k = 1.0 - v.max(axis=1, keepdims=True)
        cmy = np.where(k < 1.0, (1.0 - v - k) / np.maximum(1.0 - k, 1e-12), 0.0)
        return np.clip(np.concatenate([cmy, k], axis=1), 0.0, 1.0)
    return v


def srgb_luminance(rgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded grey of the same luminance (Y, D65) as sRGB colours ``(..., 3)`` in [0, 1]."""
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    y = lin @ np.array([0.2126, 0.7152, 0.0722])
    return np.where(y <= 0.0031308, 12.92 * y, 1.055 * np.power(np.maximum(y, 0.0), 1 / 2.4) - 0.055)


def quantise(values: np.ndarray, depth: int) -> np.ndarray:
    """Float values in [0, 1] to stored ``uint8`` / ``uint16`` values (rounded once, halves to even, in the
    values' own float type: float32 fills at 8 bits round exactly as the engines' ``to_uint8``)."""
    top = 65535 if depth == 16 else 255
    return np.clip(np.rint(values * top), 0, top).astype(np.uint16 if depth == 16 else np.uint8)
