"""Finding images and masks in directory trees and pairing them by file stem."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import InpaintKitError
from .images import IMAGE_EXTENSIONS

MASK_SUFFIXES = ("_mask", "-mask", ".mask")


def scan(root: str | Path) -> list[Path]:
    """All image files under ``root`` (recursive, extensions in any case), sorted; hidden files and
    folders (including our own ``.name.tmp`` partial writes) are skipped."""
    root = Path(root)
    if not root.is_dir():
        raise InpaintKitError(f"{root}: not a directory; pass a folder of images")
    found = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
            found.append(p)
    return sorted(found)


def mask_stem(path: Path) -> str:
    """The image stem a mask belongs to: ``photo_mask.png`` and ``photo.png`` both give ``photo``."""
    stem = path.stem
    for suffix in MASK_SUFFIXES:
        if stem.lower().endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


@dataclass
class Pairing:
    """Result of matching two trees: ``pairs`` holds (image, mask, image path relative to its root)."""

    pairs: list[tuple[Path, Path, Path]] = field(default_factory=list)
    unpaired_images: list[Path] = field(default_factory=list)
    unpaired_masks: list[Path] = field(default_factory=list)
    stems: dict[Path, str] = field(default_factory=dict)  # image -> output stem (see output_stems)
    clashes: list[list[Path]] = field(default_factory=list)  # images of one folder sharing a stem


def output_stems(images: list[Path]) -> tuple[dict[Path, str], list[list[Path]]]:
    """The output stem of every image: its file stem, except when several images of one folder share a
    stem (``a.png`` and ``a.jpg``): then each gets ``<stem>_<extension>`` (``a_png``, ``a_jpg``), so both
    are restored to distinct, predictable names. Returns the stems and the clashing groups."""
    groups: dict[tuple[Path, str], list[Path]] = {}
    for img in images:
        groups.setdefault((img.parent, img.stem), []).append(img)
    stems, clashes = {}, []
    for (_, stem), group in groups.items():
        if len(group) > 1:
            clashes.append(sorted(group))
        for img in group:
            stems[img] = f"{stem}_{img.suffix[1:]}" if len(group) > 1 else stem
    return stems, clashes


def pair(images_root: str | Path, masks_root: str | Path) -> Pairing:
    """Pair every image with the mask of the same stem. A mask in the same relative sub-folder wins;
    otherwise a stem that is unique across the mask tree pairs wherever it lies."""
    images_root, masks_root = Path(images_root), Path(masks_root)
    images, masks = scan(images_root), scan(masks_root)
    by_place: dict[tuple[Path, str], Path] = {}
    by_stem: dict[str, list[Path]] = {}
    for m in masks:
        key = mask_stem(m)
        # An exact-stem mask beats a `_mask` one in the same place.
        place = (m.relative_to(masks_root).parent, key)
        if place not in by_place or m.stem == key:
            by_place[place] = m
        by_stem.setdefault(key, []).append(m)

    result, used = Pairing(), set()
    for img in images:
        rel = img.relative_to(images_root)
        m = by_place.get((rel.parent, img.stem))
        if m is None and len(by_stem.get(img.stem, [])) == 1:
            m = by_stem[img.stem][0]
        if m is None:
            result.unpaired_images.append(img)
        else:
            result.pairs.append((img, m, rel))
            used.add(m)
    result.unpaired_masks = [m for m in masks if m not in used]
    result.stems, result.clashes = output_stems([img for img, _, _ in result.pairs])
    return result
