"""Where the model works: working-canvas size, resizing in and out, windows around the damage, and
pasting a result back so that every pixel outside the mask is the input's, bit for bit.

This is the one module that decides where and at what scale a model works (``--area``); engines only
fill the canvases they are given:

* ``full``: one region, the whole image scaled so its long side is ``--size``;
* ``crops``: the damage grouped into windows (connected components grown by ``--padding``, merged
  while their windows overlap), each at native resolution when its long side fits in ``--size``; a
  larger window is cut into overlapping native-resolution tiles (``large="tile"``, the default) or
  scaled down to ``--size`` (``large="scale"``); docs/benchmarks.md has the measurement behind the choice;
* ``auto``: ``crops`` when the image's long side exceeds ``--size``, else ``full``.

Whenever a mask is scaled down, a working pixel is "repair" if ANY source pixel under it is
(:func:`cover_mask`): thin cracks never vanish from the model's view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .masks import cover_mask, feather  # noqa: F401  (cover_mask lives in masks; re-exported)


def work_size(h: int, w: int, size: int, multiple: int = 8) -> tuple[int, int]:
    """Working canvas ``(H', W')``: long side scaled to ``size``, each side rounded to a multiple of
    ``multiple`` (at least one multiple). The aspect ratio is kept as closely as rounding allows."""
    if size < multiple:
        raise ValueError(f"size {size} is smaller than the model's multiple {multiple}")
    scale = size / max(h, w)

    def snap(x: float) -> int:
        return max(multiple, int(round(x * scale / multiple)) * multiple)

    return snap(h), snap(w)


def resize_image(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize an RGB image to ``(H, W)`` with Lanczos (high quality both up and down): ``uint8`` stays
    ``uint8``; a float fill is resized per channel in 32-bit float (no 8-bit steps; values may overshoot
    [0, 1] slightly, clipped where they are quantised)."""
    h, w = size_hw
    if image.shape[:2] == (h, w):
        return image
    if image.dtype != np.uint8:
        return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c], np.float32), "F")
                                    .resize((w, h), Image.LANCZOS)) for c in range(image.shape[2])], axis=-1)
    return np.array(Image.fromarray(image, "RGB").resize((w, h), Image.LANCZOS))  # writable copy


def block_mask(mask: np.ndarray, factor: int) -> np.ndarray:
    """The mask grown to whole ``factor`` x ``factor`` blocks (sides must be multiples of ``factor``): a
    block is repaint if any of its pixels is. What a latent-space model must repaint so that every latent
    cell touched by damage is regenerated (its VAE mixes the 8x8 pixels of a cell)."""
    h, w = mask.shape
    if h % factor or w % factor:
        raise ValueError(f"mask {w}x{h} is not a multiple of {factor} on each side")
    cells = mask.reshape(h // factor, factor, w // factor, factor).any(axis=(1, 3))
    return np.repeat(np.repeat(cells, factor, axis=0), factor, axis=1)


def dilate_mask(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a bool mask by ``radius`` pixels (a disc), for damage with a stained halo."""
    if radius <= 0 or not mask.any():
        return mask
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def to_work(image: np.ndarray, mask: np.ndarray, size: int, multiple: int = 8):
    """Scale image and mask to the working canvas (long side ``size``). Returns ``(work_image, work_mask)``;
    the working mask covers every source mask pixel (:func:`cover_mask`)."""
    hw = work_size(*mask.shape, size=size, multiple=multiple)
    return resize_image(image, hw), cover_mask(mask, hw)


def paste_back(original: np.ndarray, result: np.ndarray, mask: np.ndarray, blur: int = 0) -> np.ndarray:
    """Combine a model result with the original. ``result`` may be at any size: it is resized to the
    original's. Outside the mask (and its ``blur`` band) the original's pixels are returned unchanged."""
    result = resize_image(result, original.shape[:2])
    alpha = feather(mask, blur)[..., None]
    if blur <= 0:
        return np.where(mask[..., None], result, original)
    out = alpha * result.astype(np.float32) + (1.0 - alpha) * original.astype(np.float32)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return np.where(alpha > 0, out, original)


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box ``(top, left, bottom, right)`` (exclusive ends) of the True pixels, or None."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


# --- Where the model works (--area) ----------------------------------------------------------------

AREAS = ("auto", "full", "crops")
LARGE = ("tile", "scale")
GRANULE = 64  # crop windows are grown to multiples of this, so that more of them share a batched call

Box = tuple[int, int, int, int]  # (top, left, bottom, right), exclusive ends, image pixels


@dataclass(frozen=True)
class Region:
    """One place the model works: the image ``box`` and the ``work_hw`` (h, w) the model sees it at.
    ``ramp``: pixels over which its results fade out towards box edges that are inside the image, where
    neighbouring regions overlap it (blending, see :func:`compose`)."""

    box: Box
    work_hw: tuple[int, int]
    ramp: int = 1

    @property
    def shape(self) -> tuple[int, int]:
        return self.box[2] - self.box[0], self.box[3] - self.box[1]

    @property
    def native(self) -> bool:
        return self.shape == self.work_hw

    def record(self) -> list[int]:
        """``[top, left, bottom, right, work_h, work_w]`` for metadata."""
        return [*map(int, self.box), *map(int, self.work_hw)]


def resolve_area(area: str, h: int, w: int, size: int) -> str:
    """``auto`` -> ``crops`` when the image's long side exceeds ``size``, else ``full``."""
    if area not in AREAS:
        raise ValueError(f"area must be one of {AREAS}, got {area!r}")
    if area == "auto":
        return "crops" if max(h, w) > size else "full"
    return area


def plan_area(mask: np.ndarray, area: str, size: int, padding: int = 64, multiple: int = 8,
              large: str = "tile") -> tuple[str, list[Region]]:
    """``(area used, regions)`` for repairing ``mask``; every True pixel lies in at least one region."""
    h, w = mask.shape
    used = resolve_area(area, h, w, size)
    if used == "full":
        return used, [Region((0, 0, h, w), work_size(h, w, size, multiple))]
    return used, plan_crops(mask, size, padding, multiple, large)


def plan_crops(mask: np.ndarray, size: int, padding: int = 64, multiple: int = 8, large: str = "tile",
               granule: int = GRANULE) -> list[Region]:
    """Windows around the damage: connected components grown by ``padding`` (context), merged while
    their windows overlap; a window whose long side fits in ``size`` is worked at native resolution
    (grown to a multiple of ``granule`` where the image allows, so equal sizes batch together), a larger
    one is tiled (``large="tile"``) or scaled to ``size`` (``"scale"``). Sorted top-to-bottom, then left."""
    if large not in LARGE:
        raise ValueError(f"large must be one of {LARGE}, got {large!r}")
    h, w = mask.shape
    cap = max(multiple, size // multiple * multiple)  # longest native side the model may see
    boxes = _merge(_component_boxes(mask, padding), lambda b: _snap(b, h, w, granule, cap))
    regions = []
    for box in boxes:
        bh, bw = box[2] - box[0], box[3] - box[1]
        if max(bh, bw) <= cap:
            regions.append(Region(box, (_mult(bh, multiple), _mult(bw, multiple)), max(1, padding // 2)))
        elif large == "scale":
            regions.append(Region(box, work_size(bh, bw, size, multiple), max(1, padding // 2)))
        else:
            regions += _tiles(mask, box, cap, multiple)
    return sorted(regions, key=lambda r: r.box)


def _component_boxes(mask: np.ndarray, padding: int) -> list[Box]:
    """Bounding boxes of the damage's connected components grown by ``padding`` (clipped to the image):
    the components of the mask dilated by a (2p+1) square are exactly the components whose grown boxes
    touch, so one labelling pass replaces pairwise tests over thousands of specks."""
    import cv2

    h, w = mask.shape
    m = mask.astype(np.uint8)
    if padding > 0:
        m = cv2.dilate(m, np.ones((2 * padding + 1, 2 * padding + 1), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    return [(int(y), int(x), int(y + bh), int(x + bw)) for x, y, bw, bh, _ in stats[1:n]]


def _merge(boxes: list[Box], snap) -> list[Box]:
    """Snap every box, then merge overlapping ones into their union, until no two overlap."""
    boxes = [snap(b) for b in boxes]
    changed = True
    while changed:
        changed, out = False, []
        for b in sorted(boxes):
            for i, o in enumerate(out):
                if b[0] < o[2] and o[0] < b[2] and b[1] < o[3] and o[1] < b[3]:
                    out[i] = snap((min(b[0], o[0]), min(b[1], o[1]), max(b[2], o[2]), max(b[3], o[3])))
                    changed = True
                    break
            else:
                out.append(b)
        boxes = out
    return boxes


def _grow(lo: int, hi: int, target: int, extent: int) -> tuple[int, int]:
    """Grow ``[lo, hi)`` symmetrically to ``target`` long, shifted to stay inside ``[0, extent)``."""
    target = min(max(target, hi - lo), extent)
    lo = max(0, min(lo - (target - (hi - lo)) // 2, extent - target))
    return lo, lo + target


def _snap(box: Box, h: int, w: int, granule: int, cap: int) -> Box:
    """Grow a window's sides to multiples of ``granule`` (not beyond ``cap`` or the image)."""
    t, l, b, r = box
    sides = []
    for lo, hi, extent in ((t, b, h), (l, r, w)):
        n = hi - lo
        target = math.ceil(n / granule) * granule if n <= cap else n
        sides.append(_grow(lo, hi, min(target, max(cap, n)), extent))
    (t, b), (l, r) = sides
    return t, l, b, r


def _mult(n: int, multiple: int) -> int:
    """``n`` itself when it is a multiple, else the nearest multiple (a window clipped by the image)."""
    return max(multiple, int(round(n / multiple)) * multiple)


def _tiles(mask: np.ndarray, box: Box, cap: int, multiple: int) -> list[Region]:
    """Cut a window longer than ``cap`` into native-resolution tiles of at most ``cap`` pixels per side,
    overlapping by a quarter tile; tiles without damage are dropped (the rest still cover all of it)."""
    t, l, b, r = box
    overlap = cap // 4

    def starts(lo, hi):
        n = hi - lo
        if n <= cap:
            return [(lo, hi)]
        k = math.ceil((n - cap) / (cap - overlap)) + 1
        return [(int(s), int(s) + cap) for s in np.linspace(lo, hi - cap, k).round()]

    out = []
    for y0, y1 in starts(t, b):
        for x0, x1 in starts(l, r):
            if mask[y0:y1, x0:x1].any():
                out.append(Region((y0, x0, y1, x1), (_mult(y1 - y0, multiple), _mult(x1 - x0, multiple)),
                                  max(1, overlap // 2)))
    return out


def crop_to_work(image: np.ndarray, mask: np.ndarray, region: Region) -> tuple[np.ndarray, np.ndarray]:
    """The region's crop of image and mask at its working size (mask by :func:`cover_mask`)."""
    t, l, b, r = region.box
    return resize_image(image[t:b, l:r], region.work_hw), cover_mask(mask[t:b, l:r], region.work_hw)


def region_weights(region: Region, image_hw: tuple[int, int]) -> np.ndarray:
    """Blend weights ``(h, w)`` float32 over a region's box: 1 inside, falling linearly over ``ramp``
    pixels towards each box edge that lies inside the image (where another region may overlap), never 0."""
    (t, l, b, r), (H, W) = region.box, image_hw
    h, w = region.shape

    def axis(n, open_lo, open_hi):
        i = np.arange(n, dtype=np.float32)
        d = np.full(n, np.inf, np.float32)
        if open_lo:
            d = np.minimum(d, i)
        if open_hi:
            d = np.minimum(d, n - 1 - i)
        return np.clip((d + 1) / (region.ramp + 1), 0, 1)

    return np.outer(axis(h, t > 0, b < H), axis(w, l > 0, r < W)).astype(np.float32)


def compose(original: np.ndarray, need: np.ndarray, regions: list[Region], results: list[np.ndarray]) -> np.ndarray:
    """The original (uint8) with every ``need`` pixel replaced by the regions' results there, quantised once
    (:func:`compose_values`). Works on the ``need`` pixels only, so memory follows the damage."""
    from .colour import quantise

    out = original.copy()
    ys, xs = np.nonzero(need)
    out[ys, xs] = quantise(compose_values(original, ys, xs, regions, results), 8)
    return out


def compose_values(original: np.ndarray, ys: np.ndarray, xs: np.ndarray, regions: list[Region],
                   results: list[np.ndarray]) -> np.ndarray:
    """float32 ``(N, 3)`` in [0, 1] at pixels ``(ys, xs)``: the regions' results (each at its working size,
    float in [0, 1] or uint8) blended by :func:`region_weights` where regions overlap; pixels no region
    covers keep the original's value (``v / 255``)."""
    acc = np.zeros((ys.size, 3), np.float64)
    wsum = np.zeros(ys.size, np.float64)
    for region, result in zip(regions, results):
        t, l, b, r = region.box
        native = resize_image(result, region.shape)
        inside = (ys >= t) & (ys < b) & (xs >= l) & (xs < r)
        yy, xx = ys[inside] - t, xs[inside] - l
        wt = region_weights(region, original.shape[:2])[yy, xx].astype(np.float64)
        values = native[yy, xx].astype(np.float64)
        acc[inside] += wt[:, None] * (values / 255.0 if native.dtype == np.uint8 else values)
        wsum[inside] += wt
        # (float64: a region's own float32 values at weight w come back exactly, w * v / w == v)
    out = original[ys, xs].astype(np.float32) / np.float32(255)
    covered = wsum > 0
    out[covered] = np.clip(acc[covered] / wsum[covered, None], 0.0, 1.0)
    return out
