"""Training images on disk and the seeded crop each draw takes, shared by the SD trainers (``train-lora``
and ``train-controlnet``).

The ``imgs/`` + ``masks/`` layout: ``<data_root>/imgs`` paired by stem with ``masks/`` (black = repair, or
as ``--mask_mode`` says) or ``masks_inverted/`` (white = repair), recursively, exactly as at inference; a
mask file is read as at inference too (:func:`inpaint_kit.masks.read_mask`: alpha-painted masks count,
and a mask of another size is fitted to its image without losing a marked pixel).

Every draw is a pure function of ``(seed, draw number)``: which image (:func:`draw_index`), its crop and
flip (:func:`resize_crop`), and its random mask. A resumed run therefore sees exactly the samples an
uninterrupted run would have seen, with no data-loader state to save.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InpaintKitError
from ..masks import cover_mask
from ..pairing import pair, scan


@dataclass(frozen=True)
class Sample:
    """One training image: its mask file (None when there is none), the mask file's convention and caption."""

    image: Path
    mask: Path | None
    mask_mode: str
    caption: str


def caption(image: Path, default: str) -> str:
    """``<stem>.txt`` beside the image if present (stripped), else ``default``."""
    txt = image.with_suffix(".txt")
    return txt.read_text(encoding="utf-8").strip() if txt.is_file() else default


def check_size(path: Path, size: int) -> None:
    """Refuse an image whose short side is below ``size / 8`` (it would be upscaled more than 8x)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, ValueError) as e:
        raise InpaintKitError(f"{path}: not a readable image ({e}); re-export it as PNG or JPEG")
    if min(w, h) * 8 < size:
        raise InpaintKitError(f"{path}: {w}x{h} is smaller than --size/8 ({size // 8} px); "
                              f"remove it or lower --size to {min(w, h) * 8} or less")


def find_samples(data_root: str | Path, mask_source: str, mask_mode: str = "black", prompt: str = "",
                 size: int = 512) -> list[Sample]:
    """List the training samples under ``data_root`` and check them (one-line errors for a missing or
    empty ``imgs/``, missing or unpaired masks where masks are needed, and images that are too small)."""
    root = Path(data_root)
    imgs = root / "imgs"
    if not imgs.is_dir():
        raise InpaintKitError(f"{root}: no imgs/ folder; --data needs imgs/ and masks/ (or masks_inverted/)")
    images = scan(imgs)
    if not images:
        raise InpaintKitError(f"{imgs}: no images found; put your training images there")
    folders = [(root / "masks", mask_mode), (root / "masks_inverted", "white")]
    present = [(d, mode) for d, mode in folders if d.is_dir()]
    if len(present) == 2:
        raise InpaintKitError(f"{root}: has both masks/ and masks_inverted/; keep one")
    masks_by_image: dict[Path, Path] = {}
    file_mode = mask_mode
    if present:
        masks_dir, file_mode = present[0]
        pairing = pair(imgs, masks_dir)
        masks_by_image = {img: m for img, m, _ in pairing.pairs}
        if mask_source != "random" and pairing.unpaired_images:
            raise InpaintKitError(
                f"{pairing.unpaired_images[0]}: no mask with this stem in {masks_dir} "
                f"({len(pairing.unpaired_images)} unpaired); add masks or use --mask_source random"
            )
        if not pairing.pairs:
            raise InpaintKitError(f"{masks_dir}: no mask pairs with an image in {imgs} by file stem; check the names")
    elif mask_source != "random":
        raise InpaintKitError(f"{root}: no masks/ or masks_inverted/ folder; add one or use --mask_source random")
    for img in images:
        check_size(img, size)
    return [Sample(img, masks_by_image.get(img), file_mode, caption(img, prompt)) for img in images]


def uses_pairs(mask_source: str, draw: int) -> bool:
    """Whether draw number ``draw`` takes its given mask as the hole (``--mask_source``: pairs always,
    random never, mixed on even draws)."""
    return mask_source == "pairs" or (mask_source == "mixed" and draw % 2 == 0)


def resize_crop(image: np.ndarray, masks: list[np.ndarray], size: int, rng: np.random.Generator, flip: bool):
    """Scale the short side to ``size`` (Lanczos; masks keep every marked pixel: ``cover_mask``), take a
    random ``size`` square, flip."""
    h, w = image.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    image = np.asarray(Image.fromarray(image, "RGB").resize((nw, nh), Image.LANCZOS))
    masks = [cover_mask(m, (nh, nw)) for m in masks]
    top, left = int(rng.integers(0, nh - size + 1)), int(rng.integers(0, nw - size + 1))
    crop = (slice(top, top + size), slice(left, left + size))
    image, masks = image[crop], [m[crop] for m in masks]
    if flip:
        image, masks = image[:, ::-1], [m[:, ::-1] for m in masks]
    return np.ascontiguousarray(image), [np.ascontiguousarray(m) for m in masks]


def draw_index(seed: int, draw: int, n: int) -> int:
    """Which sample draw number ``draw`` uses: a fresh permutation of ``n`` per epoch (seeded)."""
    epoch, pos = divmod(draw, n)
    return int(np.random.default_rng([seed, epoch]).permutation(n)[pos])
