"""Seams: making a fill meet its surroundings (``--blend``, ``--colour_match``), inside the mask only.

Pixels outside the mask are the input's, bit for bit, in every mode, so nothing here may blend *across*
the edge; every mode instead corrects the fill. The correction starts from the mismatch along the mask's
edge: for each known pixel q touching the mask, ``d(q) = original(q) - fill(inner neighbours of q)``. A
fill that continues its surroundings has a mismatch of a real image's small pixel-to-pixel steps; a fill
with a colour cast or a tone step has that cast on every edge pixel. Then:

* ``--colour_match local``: the mismatch, smoothed along the edge (Gaussian, :data:`EDGE_SIGMA` px) so
  that texture does not count, is spread over the whole region as a membrane (the harmonic function with
  those edge values: Laplace's equation, solved by conjugate gradients). A spatially varying correction:
  each part of the region takes the offset of the surroundings nearest to it; not one global shift.
* ``--blend feather``: the smoothed mismatch corrects a band just inside the edge, fading linearly to
  nothing :data:`FEATHER` px in.
* ``--blend laplacian``: multi-band (Burt & Adelson 1983): the mismatch split into octave bands (normalised
  Gaussian extensions at sigma 1, 2, 4, 8, 16 px); each band fades over a distance proportional to its
  scale, so broad offsets travel far into the region and fine steps only a pixel or two.
* ``--blend poisson``: Poisson image editing (Perez et al. 2003) with the fill's own gradients as the
  guidance field inside the mask and the original as the boundary: the fill plus the membrane of the
  *unsmoothed* mismatch, so it meets every edge pixel exactly.

``colour_match`` runs first, then ``blend`` on what mismatch is left. Everything is numpy/OpenCV on the
mask's pixels (memory and time follow the damage, not the image). docs/benchmarks.md ("Seams") has the
measurements behind the defaults.
"""

from __future__ import annotations

import numpy as np

BLENDS = ("none", "feather", "laplacian", "poisson")
COLOUR_MATCHES = ("off", "local")
EDGE_SIGMA = 6.0  # px along the edge over which the mismatch is averaged (texture is not a cast)
FEATHER = 8  # px inside the edge over which --blend feather fades
BANDS = (1.0, 2.0, 4.0, 8.0, 16.0)  # --blend laplacian: octave scales (px)


def _shift(a: np.ndarray, dy: int, dx: int, fill=0) -> np.ndarray:
    """``a`` moved by (dy, dx): out[y, x] = a[y - dy, x - dx]; uncovered cells get ``fill``."""
    out = np.full_like(a, fill)
    h, w = a.shape[:2]
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = a[max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)]
    return out


STEPS = ((1, 0), (-1, 0), (0, 1), (0, -1))


def edge_mismatch(original: np.ndarray, fill: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(d, ring)``: ``ring`` (H, W) bool marks known pixels with a 4-neighbour in the mask; ``d`` (H, W, 3)
    float32 holds there original minus the mean of the fill over those neighbours (0 elsewhere)."""
    f = fill.astype(np.float32)
    acc = np.zeros(f.shape, np.float32)
    cnt = np.zeros(mask.shape, np.float32)
    for dy, dx in STEPS:
        m = _shift(mask, dy, dx, False)
        acc += np.where(m[..., None], _shift(f, dy, dx), 0)
        cnt += m
    ring = (cnt > 0) & ~mask
    d = np.zeros(f.shape, np.float32)
    d[ring] = original[ring].astype(np.float32) - acc[ring] / cnt[ring, None]
    return d, ring


def _normalised_blur(values: np.ndarray, weights: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalised convolution: Gaussian average of ``values`` where ``weights`` > 0; returns (average, weight
    density). Where the density is ~0 the average is 0."""
    import cv2

    k = dict(sigmaX=sigma, borderType=cv2.BORDER_CONSTANT)
    wsum = cv2.GaussianBlur(weights.astype(np.float32), (0, 0), **k)
    vsum = cv2.GaussianBlur((values * weights[..., None]).astype(np.float32), (0, 0), **k)
    if vsum.ndim == 2:
        vsum = vsum[..., None]
    return vsum / np.maximum(wsum, 1e-6)[..., None], wsum


def _coarse_start(mask: np.ndarray, ring: np.ndarray, d: np.ndarray, guess: np.ndarray) -> np.ndarray:
    """Cascadic start for :func:`membrane` (Bornemann & Deuflhard 1996): the same problem on a 2x coarser
    grid (cells wholly inside the mask unknown, the others fixed at the area mean of ``guess``), solved
    recursively and interpolated back; fine pixels near the edge keep ``guess``."""
    import cv2

    h, w = mask.shape
    hh, ww = h // 2 * 2, w // 2 * 2
    cmask = mask[:hh:2, :ww:2] & mask[1:hh:2, :ww:2] & mask[:hh:2, 1:ww:2] & mask[1:hh:2, 1:ww:2]
    if not cmask.any():
        return guess
    cval = cv2.resize(guess[:hh, :ww], (ww // 2, hh // 2), interpolation=cv2.INTER_AREA).reshape(hh // 2, ww // 2, -1)
    near = np.zeros_like(cmask)
    for dy, dx in STEPS:
        near |= _shift(cmask, dy, dx, False)
    cring = near & ~cmask
    coarse = membrane(cmask, cring, np.where(cring[..., None], cval, 0), tol=0.1, max_iter=200)
    full = np.where(cmask[..., None], coarse, cval)
    up = cv2.resize(full, (ww, hh), interpolation=cv2.INTER_LINEAR).reshape(hh, ww, -1)
    out = guess.copy()
    inner = np.zeros_like(mask)
    inner[:hh, :ww] = np.repeat(np.repeat(cmask, 2, 0), 2, 1)
    out[:hh, :ww][inner[:hh, :ww]] = up[inner[:hh, :ww]]
    return out


def membrane(mask: np.ndarray, ring: np.ndarray, d: np.ndarray, tol: float = 0.05, max_iter: int = 300) -> np.ndarray:
    """(H, W, C) float32: the harmonic function on ``mask`` (5-point Laplacian; no flux across the image
    border) equal to ``d`` on ``ring``; 0 outside the mask and on components touching no ring pixel.
    Matrix-free Jacobi-preconditioned conjugate gradients over the mask's pixels only (residual below
    ``tol`` or ``max_iter`` iterations), started from the :func:`push_pull` interpolation refined on coarser
    grids (:func:`_coarse_start`), which leaves little for the fine grid to do."""
    import cv2

    ys, xs = np.nonzero(mask)
    n = ys.size
    out = np.zeros(d.shape, np.float32)
    if n == 0:
        return out
    index = np.full(mask.shape, -1, np.int64)
    index[ys, xs] = np.arange(n)
    h, w = mask.shape
    nbr, rhs, diag = np.full((n, 4), -1, np.int64), np.zeros((n, d.shape[2]), np.float64), np.zeros(n)
    anchored = np.zeros(n, bool)
    for k, (dy, dx) in enumerate(STEPS):
        y2, x2 = ys + dy, xs + dx
        inside = (y2 >= 0) & (y2 < h) & (x2 >= 0) & (x2 < w)
        diag += inside
        y2c, x2c = np.clip(y2, 0, h - 1), np.clip(x2, 0, w - 1)
        nbr[:, k] = np.where(inside, index[y2c, x2c], -1)
        known = inside & (nbr[:, k] < 0) & ring[y2c, x2c]
        rhs[known] += d[y2c[known], x2c[known]]
        anchored |= known
    # A component touching no ring pixel (the whole image masked) has no boundary values: it stays 0.
    _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=4)
    lab = labels[ys, xs]
    free = np.isin(lab, np.unique(lab[anchored]))

    def apply(x):  # A x: the Laplacian with the ring's values moved to the right-hand side
        y = diag[:, None] * x
        for k in range(4):
            j = nbr[:, k]
            ok = j >= 0
            y[ok] -= x[j[ok]]
        return y

    guess = push_pull(np.where(ring[..., None], d, 0), ring)
    if n > 1024:
        guess = _coarse_start(mask, ring, d, guess)
    x = np.where(free[:, None], guess[ys, xs], 0).astype(np.float64)
    r = rhs - apply(x)
    r[~free] = 0
    z = r / diag[:, None]
    p = z.copy()
    rz = (r * z).sum(0)
    for _ in range(max_iter):
        if np.abs(r).max() < tol:
            break
        ap = apply(p)
        ap[~free] = 0
        alpha = rz / np.maximum((p * ap).sum(0), 1e-30)
        x += alpha * p
        r -= alpha * ap
        z = r / diag[:, None]
        rz_new = (r * z).sum(0)
        p = z + (rz_new / np.maximum(rz, 1e-30)) * p
        rz = rz_new
    out[ys, xs] = x.astype(np.float32)
    return out


def push_pull(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Smooth interpolation of ``values`` (H, W, C) known where ``weights`` (H, W) is 1 to every pixel
    (Gortler et al. 1996's push-pull): pull the weighted values down a 2x pyramid until they cover
    everything, then push back up, each level keeping its own values where it has weight and taking the
    coarser level's elsewhere. Linear time; a fast stand-in for the membrane of smooth data."""
    import cv2

    vals, wts = [values.astype(np.float32)], [weights.astype(np.float32)]
    while min(vals[-1].shape[:2]) > 1 and wts[-1].min() < 1:
        v, w = vals[-1], wts[-1]
        h, wd = v.shape[:2]
        size = (max(1, (wd + 1) // 2), max(1, (h + 1) // 2))
        ws = cv2.resize(w, size, interpolation=cv2.INTER_AREA)
        vs = cv2.resize(v * w[..., None], size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1)
        vals.append(vs / np.maximum(ws, 1e-8)[..., None])
        wts.append(np.minimum(ws * 4, 1.0))  # one known pixel of four is enough support for a coarse pixel
    out = vals[-1]
    for v, w in zip(vals[-2::-1], wts[-2::-1]):
        up = cv2.resize(out, (v.shape[1], v.shape[0]), interpolation=cv2.INTER_LINEAR).reshape(v.shape)
        out = w[..., None] * v + (1 - w[..., None]) * up
    return out


def _inner_distance(mask: np.ndarray) -> np.ndarray:
    """Distance (px) of each mask pixel to the nearest known pixel (1 on the edge)."""
    import cv2

    return cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def correction(original: np.ndarray, fill: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """(H, W, 3) float32 to add to ``fill`` inside ``mask`` for ``mode`` (a blend or ``local``)."""
    d, ring = edge_mismatch(original, fill, mask)
    if mode == "poisson":
        return membrane(mask, ring, d)
    smooth, _ = _normalised_blur(d, ring, EDGE_SIGMA)
    if mode == "local":
        return np.where(mask[..., None], push_pull(np.where(ring[..., None], smooth, 0), ring), 0)
    dist = _inner_distance(mask)[..., None]
    if mode == "feather":
        return smooth * np.clip(1 - (dist - 1) / FEATHER, 0, 1)
    if mode == "laplacian":
        total, previous = np.zeros(d.shape, np.float32), None
        for sigma in BANDS[::-1]:  # coarse to fine: band = extension at sigma minus the coarser one
            ext, _ = _normalised_blur(d, ring, sigma)
            band = ext if previous is None else ext - previous
            total += band * np.clip(1 - (dist - 1) / (2 * sigma), 0, 1)
            previous = ext
        return total
    raise ValueError(f"unknown seam mode {mode!r}")


def fix_seams(original: np.ndarray, fill: np.ndarray, mask: np.ndarray, blend: str = "none",
              colour_match: str = "off") -> np.ndarray:
    """``fill`` (RGB, the original's size) corrected inside ``mask`` by ``colour_match`` then ``blend``;
    outside the mask the original's pixels, bit for bit. ``original`` is RGB uint8; ``fill`` is uint8 (the
    result is uint8, each correction rounded) or float in [0, 1] (an engine's fill: the result is float32 in
    [0, 1], never rounded, so the fill is still quantised only once, when it is written)."""
    if blend not in BLENDS or colour_match not in COLOUR_MATCHES:
        raise ValueError(f"blend must be one of {BLENDS} and colour_match one of {COLOUR_MATCHES}")
    is_float = fill.dtype != np.uint8
    if is_float:  # the corrections work in grey levels (0-255) either way
        ref = original.astype(np.float32)
        out = np.where(mask[..., None], fill.astype(np.float32) * np.float32(255), ref)
    else:
        out = np.where(mask[..., None], fill, original)
    if mask.any() and not mask.all():  # else nothing to correct, or no surroundings to match
        for mode in (["local"] if colour_match == "local" else []) + ([blend] if blend != "none" else []):
            fixed = np.clip(out.astype(np.float32) + correction(original, out, mask, mode), 0, 255)
            out = np.where(mask[..., None], fixed, ref) if is_float else \
                np.where(mask[..., None], np.rint(fixed).astype(np.uint8), original)
    return out / np.float32(255) if is_float else out
