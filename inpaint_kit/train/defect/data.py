"""DefectFill data: the few reference defects a run learns from, the good images it paints into, and the
masks of both. No torch here (the CLI checks the data before any model loads).

Two layouts of ``<root>/<object_class>/`` are read (``--layout auto`` picks the one present)::

    mvtec   test/<defect_type>/000.png            ground_truth/<defect_type>/000_mask.png   (MVTec AD)
    source  train/defective/<defect_type>/000.png train/defective_masks/<defect_type>/000_mask.png
    both    train/good/*.png                      the defect-free images ``inpaint-kit defect`` paints into

Masks are white = defect (MVTec's convention), grey levels binarize at 128, read as every mask file is
(:func:`inpaint_kit.masks.read_mask`: a mask painted in the alpha channel counts). Images and masks are
pairs by stem (``000.png`` with ``000_mask.png`` or ``000.png``). A reference is resized to ``--size`` square
(Lanczos for the image; the mask with :func:`inpaint_kit.masks.cover_mask`, so a thin scratch survives).

``--num_refs N`` takes N pairs chosen reproducibly: a permutation of the sorted pairs seeded by ``--seed``,
its first N, in file order. Every training draw is a pure function of ``(seed, draw)`` (which reference,
which adjusted mask), so a resumed run sees what an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import InpaintKitError
from ...geometry import resize_image
from ...images import load_image
from ...maskgen import random_boxes
from ...masks import read_mask
from ...pairing import mask_stem, scan

LAYOUTS = ("auto", "mvtec", "source")
GOOD = ("train", "good")


@dataclass(frozen=True)
class Reference:
    """One reference defect: its image file and its mask file (white = defect)."""

    image: Path
    mask: Path


def layout_dirs(root: Path, object_class: str, defect_type: str, layout: str) -> tuple[Path, Path]:
    """``(images folder, masks folder)`` of ``defect_type`` in ``layout`` (``mvtec`` or ``source``)."""
    obj = root / object_class
    if layout == "mvtec":
        return obj / "test" / defect_type, obj / "ground_truth" / defect_type
    return obj / "train" / "defective" / defect_type, obj / "train" / "defective_masks" / defect_type


def defect_types(root: Path, object_class: str) -> list[str]:
    """Defect types present for ``object_class`` in either layout (for error messages)."""
    obj = root / object_class
    found = set()
    for parent in (obj / "test", obj / "train" / "defective"):
        if parent.is_dir():
            found |= {p.name for p in parent.iterdir() if p.is_dir() and p.name != "good"}
    return sorted(found)


def resolve_layout(root: str | Path, object_class: str, defect_type: str, layout: str = "auto") -> tuple[str, Path, Path]:
    """``(layout, images folder, masks folder)``; one-line errors naming the folder that is missing and what
    exists instead."""
    root = Path(root)
    if layout not in LAYOUTS:
        raise InpaintKitError(f"--layout {layout}: choose from {', '.join(LAYOUTS)}")
    if not root.is_dir():
        raise InpaintKitError(f"--data {root}: not a folder; pass the dataset root holding <object_class>/ folders")
    if not (root / object_class).is_dir():
        have = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        raise InpaintKitError(f"--object_class {object_class}: no folder {root / object_class} "
                              f"(objects here: {', '.join(have) or 'none'})")
    candidates = [layout] if layout != "auto" else ["mvtec", "source"]
    for name in candidates:
        images, masks = layout_dirs(root, object_class, defect_type, name)
        if images.is_dir():
            if not masks.is_dir():
                raise InpaintKitError(f"{masks}: missing; the {name} layout keeps the masks of {images} there")
            return name, images, masks
    images, _ = layout_dirs(root, object_class, defect_type, candidates[0])
    types = defect_types(root, object_class)
    raise InpaintKitError(f"--defect_type {defect_type}: no folder {images}"
                          + (f" (defect types of {object_class}: {', '.join(types)})" if types else
                             f" ({object_class} has neither test/<defect_type>/ nor train/defective/<defect_type>/)"))


def find_references(root: str | Path, object_class: str, defect_type: str, layout: str = "auto") -> tuple[str, list[Reference]]:
    """Every (image, mask) pair of ``defect_type``, sorted by file name; an image without a mask is an error
    naming it."""
    name, images_dir, masks_dir = resolve_layout(root, object_class, defect_type, layout)
    images = scan(images_dir)
    if not images:
        raise InpaintKitError(f"{images_dir}: no images; put the reference defect images there")
    masks = {mask_stem(m): m for m in scan(masks_dir)}
    refs = []
    for img in images:
        mask = masks.get(img.stem)
        if mask is None:
            raise InpaintKitError(f"{img}: no mask {masks_dir / (img.stem + '_mask.png')}; add it or remove the image")
        refs.append(Reference(img, mask))
    return name, refs


def choose_references(refs: list[Reference], num_refs: int, seed: int) -> list[Reference]:
    """``num_refs`` of ``refs`` chosen reproducibly from ``seed`` (all of them when ``num_refs`` is 0), in
    file order."""
    if num_refs < 0:
        raise InpaintKitError(f"--num_refs {num_refs}: must be 0 (all) or more")
    if num_refs > len(refs):
        raise InpaintKitError(f"--num_refs {num_refs}: only {len(refs)} reference pair(s) in "
                              f"{refs[0].image.parent}; use --num_refs {len(refs)} or less")
    if num_refs == 0:
        return list(refs)
    picked = np.random.default_rng([seed, 7]).permutation(len(refs))[:num_refs]
    return [refs[i] for i in sorted(picked)]


def good_images(root: str | Path, object_class: str) -> list[Path]:
    """The defect-free images ``<root>/<object_class>/train/good/`` (sorted)."""
    folder = Path(root, object_class, *GOOD)
    if not folder.is_dir():
        raise InpaintKitError(f"{folder}: missing; the defect-free images of {object_class} live there")
    return scan(folder)


def load_reference(ref: Reference, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(image uint8 (size, size, 3), mask bool (size, size))``; an empty mask is an error naming the file."""
    image = load_image(ref.image)
    mask = read_mask(ref.mask, "white", (size, size))
    if not mask.any():
        raise InpaintKitError(f"{ref.mask}: no white (defect) pixel; MVTec masks are white where the defect is")
    return resize_image(image, (size, size)), mask


def adjusted_mask(defect: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The object loss's mask: random boxes (the ``boxes`` generator of :mod:`inpaint_kit.maskgen`), plus the
    defect's bounding box, so the defect is always covered (DefectFill's "adjusted mask"): the model must
    repaint the defect in its object context."""
    h, w = defect.shape
    out = random_boxes(h, w, rng)
    rows, cols = np.flatnonzero(defect.any(1)), np.flatnonzero(defect.any(0))
    if rows.size:
        out[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = True
    return out


def draw_index(seed: int, draw: int, n: int) -> int:
    """Which reference draw number ``draw`` uses: a fresh seeded permutation of the ``n`` references per epoch."""
    epoch, pos = divmod(draw, n)
    return int(np.random.default_rng([seed, epoch, 11]).permutation(n)[pos])


def training_example(refs: list[Reference], size: int, seed: int, draw: int, cache: dict | None = None) -> dict:
    """Draw ``draw``: ``pixels`` float32 (3, S, S) in [-1, 1], ``mask`` float32 (1, S, S) (1 = defect) and
    ``adjusted`` float32 (1, S, S) (the object loss's mask, a superset of the defect)."""
    ref = refs[draw_index(seed, draw, len(refs))]
    if cache is not None and ref in cache:
        image, mask = cache[ref]
    else:
        image, mask = load_reference(ref, size)
        if cache is not None:
            cache[ref] = (image, mask)
    adj = adjusted_mask(mask, np.random.default_rng([seed, draw, 12]))
    return {"pixels": image.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0,
            "mask": mask[None].astype(np.float32), "adjusted": adj[None].astype(np.float32)}


def write_fixture(root: str | Path, object_class: str = "bottle", defect_type: str = "crack", n_defect: int = 3,
                  n_good: int = 3, size: int = 64, layout: str = "mvtec", seed: int = 0) -> Path:
    """A tiny synthetic MVTec-like dataset (for tests, the README and the benchmark): grey discs on noise as
    the "object", dark line scratches as the defect, their masks, and ``train/good`` images."""
    from PIL import Image, ImageDraw

    root = Path(root)
    rng = np.random.default_rng(seed)
    images_dir, masks_dir = layout_dirs(root, object_class, defect_type, layout)
    good_dir = root / object_class / "train" / "good"
    for d in (images_dir, masks_dir, good_dir):
        d.mkdir(parents=True, exist_ok=True)

    def part() -> Image.Image:
        bg = rng.integers(20, 60, (size, size, 3), dtype=np.uint8)
        im = Image.fromarray(bg)
        r = size * rng.uniform(0.3, 0.42)
        c = size / 2 + rng.uniform(-2, 2, 2)
        ImageDraw.Draw(im).ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=tuple(int(v) for v in rng.integers(150, 210, 3)))
        return im

    for i in range(n_good):
        part().save(good_dir / f"{i:03d}.png")
    for i in range(n_defect):
        im, mask = part(), Image.new("L", (size, size), 0)
        pts = [tuple(float(v) for v in size * rng.uniform(0.3, 0.7, 2)) for _ in range(3)]
        ImageDraw.Draw(im).line(pts, fill=(30, 20, 10), width=max(1, size // 32))
        ImageDraw.Draw(mask).line(pts, fill=255, width=max(1, size // 32) + 2)
        im.save(images_dir / f"{i:03d}.png")
        mask.save(masks_dir / f"{i:03d}_mask.png")
    return root
