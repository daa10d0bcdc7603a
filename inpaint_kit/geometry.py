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
(:func:`cover_mask`): thin cracks never vanish from the model's view. A region worked at native
resolution is never resampled at all: its crop is padded (reflected) up to the model's multiple and the
padding cropped off the result (``Region.pad``). Resampling by a hair to snap a side to a multiple of 8
(171 -> 168 rows) would blur the whole crop and, through :func:`cover_mask`, grow a thin mask by a
working pixel (+24-53 % of its area on 256-px photos), which cost about 1 dB on thin cracks.
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
    neighbouring regions overlap it (blending, see :func:`compose`). ``pad``: the region is worked at
    native resolution, its crop reflect-padded at the bottom/right up to ``work_hw`` (never resampled)."""

    box: Box
    work_hw: tuple[int, int]
    ramp: int = 1
    pad: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        return self.box[2] - self.box[0], self.box[3] - self.box[1]

    @property
    def native(self) -> bool:
        """Worked at the image's own scale (exactly, or padded up to the model's multiple)."""
        return self.pad or self.shape == self.work_hw

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
        if max(h, w) == size:  # already at the working scale: pad to the multiple, never resample
            return used, [native_region((0, 0, h, w), multiple)]
        return used, [Region((0, 0, h, w), work_size(h, w, size, multiple))]
    return used, plan_crops(mask, size, padding, multiple, large)


def plan_crops(mask: np.ndarray, size: int, padding: int = 64, multiple: int = 8, large: str = "tile",
               granule: int = GRANULE, fit: bool = True) -> list[Region]:
    """Windows around the damage: connected components grown by ``padding`` (context), merged while
    their windows overlap; a window whose long side fits in ``size`` is worked at native resolution
    (grown to a multiple of ``granule`` where the image allows, so equal sizes batch together), a larger
    one is tiled (``large="tile"``) or scaled to ``size`` (``"scale"``). With ``fit`` every native window
    and tile then shrinks to the damage inside it (:func:`fit_to_damage`: context scaled to each component's
    width, at most ``padding``), so that the model's pixels follow the damage, never exceeding this
    plan's. Sorted top-to-bottom, then left."""
    regions = _plan_crops(mask, size, padding, multiple, large, granule)
    if not fit:
        return regions
    return sorted(fit_to_damage(mask, regions, padding, multiple, granule), key=lambda r: r.box)


def _plan_crops(mask: np.ndarray, size: int, padding: int, multiple: int, large: str, granule: int) -> list[Region]:
    """The windows of :func:`plan_crops` before they are fitted to the damage."""
    if large not in LARGE:
        raise ValueError(f"large must be one of {LARGE}, got {large!r}")
    h, w = mask.shape
    cap = max(multiple, size // multiple * multiple)  # longest native side the model may see
    boxes = _merge(_component_boxes(mask, padding), lambda b: _snap(b, h, w, granule, cap))
    regions = []
    for box in boxes:
        bh, bw = box[2] - box[0], box[3] - box[1]
        if max(bh, bw) <= cap:
            regions.append(native_region(box, multiple, max(1, padding // 2)))
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


def native_region(box: Box, multiple: int, ramp: int = 1) -> Region:
    """A region worked at native resolution: sides padded up to the next multiple (not resampled)."""
    bh, bw = box[2] - box[0], box[3] - box[1]
    up = lambda n: -(-n // multiple) * multiple  # noqa: E731
    return Region(box, (up(bh), up(bw)), ramp, pad=(up(bh), up(bw)) != (bh, bw))


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
                out.append(native_region((y0, x0, y1, x1), multiple, max(1, overlap // 2)))
    return out


def crop_to_work(image: np.ndarray, mask: np.ndarray, region: Region) -> tuple[np.ndarray, np.ndarray]:
    """The region's crop of image and mask at its working size (mask by :func:`cover_mask`); a ``pad``
    region's crop is reflect-padded instead (the padding is known context, never repaired)."""
    t, l, b, r = region.box
    if region.pad:
        (bh, bw), (wh, ww) = region.shape, region.work_hw
        mode = "reflect" if wh - bh < bh and ww - bw < bw else "edge"  # (reflect needs a wide enough crop)
        return (np.pad(image[t:b, l:r], ((0, wh - bh), (0, ww - bw), (0, 0)), mode=mode),
                np.pad(mask[t:b, l:r], ((0, wh - bh), (0, ww - bw))))
    return resize_image(image[t:b, l:r], region.work_hw), cover_mask(mask[t:b, l:r], region.work_hw)


def from_work(result: np.ndarray, region: Region) -> np.ndarray:
    """A region's working-size result back at the region's native size (padding cropped, or resized)."""
    if region.pad:
        return result[: region.shape[0], : region.shape[1]]
    return resize_image(result, region.shape)


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
        native = from_work(result, region)
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


# --- Damage by width: thin cracks to a fast filler, wide holes to the model ------------------------------

def component_widths(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, widths)``: the 8-connected components of ``mask`` (``labels`` int32 (H, W), 0 = background)
    and each component's width ``widths[label]`` = 2 r - 1, where r is its largest inscribed radius (the
    maximum of the exact Euclidean distance transform over the component, in pixels). A straight band of an
    odd width w measures w; of an even width, w - 1."""
    import cv2

    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    radius = np.zeros(n, np.float32)
    np.maximum.at(radius, labels[mask], dist[mask])
    return labels, np.where(np.arange(n) > 0, 2 * radius - 1, 0).astype(np.float32)


def split_by_width(mask: np.ndarray, thin_width: float) -> tuple[np.ndarray, np.ndarray]:
    """``(thin, wide)``: the damage at most ``thin_width`` pixels wide, and the rest. A component whose width
    (:func:`component_widths`) is at most ``thin_width`` is thin whole; in a wider one, only its wide parts are
    wide: the pixels deeper than a thin component can be (distance transform above ``(thin_width + 1) / 2``)
    grown back to the edge of the damage, plus 2 px. So cracks running into a hole stay thin up to the
    hole's rim instead of following it to the model. ``thin_width <= 0``: nothing is thin."""
    if thin_width <= 0 or not mask.any():
        return np.zeros_like(mask), mask.copy()
    import cv2

    m = mask.astype(np.uint8)
    dist = cv2.distanceTransform(m, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    reach = (thin_width + 1) / 2  # the largest inscribed radius of a thin component (width = 2 r - 1)
    core = dist > reach
    if not core.any():
        return mask.copy(), np.zeros_like(mask)
    # every pixel of a wide part lies within its inscribed disc's radius (<= reach + 1 at the core's edge)
    # of a core pixel; 2 px more take the rim's antialiased edge along
    r = int(np.ceil(reach)) + 2
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    wide = cv2.dilate(core.astype(np.uint8), disc).astype(bool) & mask
    # what is left of a wide component near its wide part only (a square hole's corners, a stub) goes with it
    n, labels = cv2.connectedComponents((mask & ~wide).astype(np.uint8), connectivity=8)
    if n > 1:
        off = cv2.distanceTransform((~wide).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        far = np.zeros(n, np.float32)
        np.maximum.at(far, labels, off)
        wide |= (far <= 2 * r)[labels] & (labels > 0)
    return mask & ~wide, wide


# --- Windows fitted to the damage (cost that follows the damage) ----------------------------------------

CONTEXT_PER_WIDTH = 4  # context around a component: this many times its width ...
MIN_CONTEXT = 24  # ... but at least this many pixels (a model needs some surroundings) and at most --padding


def component_context(mask: np.ndarray, padding: int) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, context)``: the components of ``mask`` (:func:`component_widths`) and the context in
    pixels each gets: ``CONTEXT_PER_WIDTH`` x its width, within ``[MIN_CONTEXT, padding]``. A 3-px crack
    needs far less surroundings than a 60-px hole to be filled well."""
    labels, widths = component_widths(mask)
    context = np.clip(np.ceil(CONTEXT_PER_WIDTH * widths), min(MIN_CONTEXT, padding), padding).astype(np.int64)
    return labels, context


def fit_to_damage(mask: np.ndarray, regions: list[Region], padding: int, multiple: int = 8,
                  granule: int = GRANULE) -> list[Region]:
    """Each native region shrunk to the damage inside it. The region is cut into cells of ``2 * granule``
    pixels; the damage of each component in each cell, grown by that component's context
    (:func:`component_context`) and clipped to the region, is one box; boxes are merged wherever their
    union costs no more pixels than they do apart, and grown to multiples of ``granule / 2`` (so that more
    of them share a size and a batch). A meandering crack is thus followed by a chain of small
    windows instead of its bounding box. Guarantees: every box lies in its region and holds its damage,
    and a region's boxes never total more pixels than the region (else the region is kept whole), so the
    model's pixel count never exceeds the unfitted plan's. Scaled regions are kept as they are."""
    labels, context = component_context(mask, padding)
    cell = 2 * granule
    out, fitted = [], []  # fitted: [box (image coordinates), its region]
    for region in regions:
        if not region.native:
            out.append(region)
            continue
        t, l, b, r = region.box
        boxes = _damage_boxes(labels[t:b, l:r], context, cell, (t, l))
        boxes = [_snap(bx, b - t, r - l, granule // 2, max(b - t, r - l)) for bx in _cheap_merge(boxes)]
        boxes = _cheap_merge(boxes)
        if sum(_area(bx) for bx in boxes) >= _area((0, 0, b - t, r - l)):
            out.append(region)
            continue
        fitted += [((t + bt, l + bl, t + bb, l + br), region) for bt, bl, bb, br in boxes]
    for box, region in _harmonise(fitted, [r.shape for r in out]):
        out.append(native_region(box, multiple, region.ramp))
    return out


def _harmonise(fitted: list[tuple[Box, Region]], fixed: list[tuple[int, int]]) -> list[tuple[Box, Region]]:
    """Grow small windows to a size that more windows share (``fixed``: sizes of windows kept as they are),
    at most doubling a window, inside its region, a region's windows never totalling more than it, so that
    they go through the model in one batch."""
    from collections import Counter

    dims = lambda bx: (bx[2] - bx[0], bx[3] - bx[1])  # noqa: E731
    sizes = Counter(dims(bx) for bx, _ in fitted) + Counter(fixed)
    out = list(fitted)
    for i in sorted(range(len(out)), key=lambda k: _area(out[k][0])):
        box, region = out[i]
        (h, w), (rh, rw) = dims(box), region.shape
        options = [(n, s) for s, n in sizes.items() if s != (h, w) and h <= s[0] <= rh and w <= s[1] <= rw
                   and s[0] * s[1] <= 2 * h * w and n >= sizes[(h, w)]]
        if not options:
            continue
        _, (th, tw) = max(options)
        (t0, l0), (bt, bl) = region.box[:2], box[:2]
        y0, y1 = _grow(bt - t0, bt - t0 + h, th, rh)
        x0, x1 = _grow(bl - l0, bl - l0 + w, tw, rw)
        grown = (t0 + y0, l0 + x0, t0 + y1, l0 + x1)
        siblings = sum(_area(bx) for k, (bx, reg) in enumerate(out) if reg is region and k != i)
        if siblings + _area(grown) <= _area(region.box):
            out[i] = (grown, region)
            sizes[(h, w)] -= 1
            sizes[(th, tw)] += 1
    return out


def _area(box: Box) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def _damage_boxes(labels: np.ndarray, context: np.ndarray, cell: int, origin: tuple[int, int]) -> list[Box]:
    """Per (component, cell of a ``cell``-px grid aligned to the image, ``labels`` being the crop at
    ``origin``): the bounding box of that component's pixels in the cell, grown by the component's context
    and clipped to the crop."""
    h, w = labels.shape
    ys, xs = np.nonzero(labels)
    lab = labels[ys, xs]
    cy, cx = (ys + origin[0]) // cell, (xs + origin[1]) // cell
    key = lab.astype(np.int64) * (1 << 40) + cy * (1 << 20) + cx
    order = np.argsort(key, kind="stable")
    key, ys, xs, lab = key[order], ys[order], xs[order], lab[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], key.size]
    boxes = []
    for s0, e0 in zip(starts, ends):
        c = int(context[lab[s0]])
        y, x = ys[s0:e0], xs[s0:e0]
        boxes.append((max(0, int(y.min()) - c), max(0, int(x.min()) - c), min(h, int(y.max()) + 1 + c),
                      min(w, int(x.max()) + 1 + c)))
    return boxes


def _cheap_merge(boxes: list[Box]) -> list[Box]:
    """Merge boxes pairwise, largest first, wherever the union has no more pixels than the two apart
    (overlapping neighbours along a crack usually do), until no such pair is left."""
    boxes = sorted(set(boxes), key=_area, reverse=True)
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, c = boxes[i], boxes[j]
                u = (min(a[0], c[0]), min(a[1], c[1]), max(a[2], c[2]), max(a[3], c[3]))
                if _area(u) <= _area(a) + _area(c):
                    boxes = [u] + [bx for k, bx in enumerate(boxes) if k not in (i, j)]
                    merged = True
                    break
            if merged:
                break
    return boxes
