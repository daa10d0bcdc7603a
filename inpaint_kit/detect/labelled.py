"""Labelled real damage: images under ``imgs/`` with their masks under ``masks/`` (paired by stem, the
usual layout; ``--mask_mode`` decides which colour marks damage). Training mixes them in
(``train-detect --pairs``); evaluation scores them (``eval-detect --pairs``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InpaintKitError


def load_pairs(folder: str | Path, mask_mode: str = "black", flag: str = "--pairs") -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(image RGB uint8 (H, W, 3), damage bool (H, W))]`` of ``folder``/imgs + ``folder``/masks; a mask
    of another size is resized to its image without losing a marked pixel."""
    from ..images import load_image
    from ..masks import read_mask
    from ..pairing import pair

    root = Path(folder)
    if not (root / "imgs").is_dir() or not (root / "masks").is_dir():
        raise InpaintKitError(f"{flag} {folder}: needs imgs/ and masks/ sub-folders (masks paired by stem)")
    found = pair(root / "imgs", root / "masks")
    if not found.pairs:
        raise InpaintKitError(f"{flag} {folder}: no image in imgs/ has a mask with its stem in masks/")
    items = []
    for img_path, mask_path, _ in found.pairs:
        img = load_image(img_path)
        mask = read_mask(mask_path, mask_mode, size=img.shape[:2])
        items.append((img, mask))
    return items
