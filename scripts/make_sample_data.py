#!/usr/bin/env python
"""Rebuild the samples the docs' examples use (see imgs/SOURCES.md): imgs/ + masks/ (the demo),
masks_inverted/ (the same masks, white = repair) and train_data/ (a tiny training set).

Three photographs bundled with scikit-image that the builtin model never saw in training are aged to
look like old prints (sepia, faded, slight vignette) and damaged: cracks (inpaint-kit's ``thin``
generator) are painted dark and a region of loss (``irregular`` or ``random_rect``) is painted the
colour of bare paper. The matching masks follow the default convention: black = repair, white = keep.

    python scripts/make_sample_data.py    # needs scikit-image (installed by `make setup`)
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inpaint_kit.images import load_image, save_png  # noqa: E402
from inpaint_kit.maskgen import create_advanced_mask  # noqa: E402

SAMPLES = {  # name -> (scikit-image file, long side, loss kind, seed)
    "chelsea": ("chelsea.png", 320, "irregular", 1),
    "coffee": ("coffee.png", 320, "random_rect", 2),
    "rocket": ("rocket.jpg", 320, "irregular", 3),
}
TRAIN = {  # train_data/: name -> (scikit-image file, seed); 160 px on the short side, masks generated
    "astronaut": ("astronaut.png", 11),
    "coins": ("coins.png", 12),
    "camera": ("camera.png", 13),
    "hubble": ("hubble_deep_field.jpg", 14),
}


def aged(image: np.ndarray) -> np.ndarray:
    """A faded sepia print: luminance toned warm, contrast lowered, corners darkened."""
    x = image.astype(np.float32) / 255.0
    lum = x @ np.array([0.299, 0.587, 0.114], np.float32)
    sepia = np.stack([lum * 1.07, lum * 0.92, lum * 0.72], axis=-1)
    toned = 0.75 * sepia + 0.25 * x
    faded = 0.12 + 0.8 * toned
    h, w = lum.shape
    y, xx = np.mgrid[0:h, 0:w]
    r = np.hypot((y - h / 2) / (h / 2), (xx - w / 2) / (w / 2))
    vignette = 1.0 - 0.18 * np.clip(r - 0.6, 0, None)
    return np.clip(faded * vignette[..., None] * 255 + 0.5, 0, 255).astype(np.uint8)


def main() -> None:
    import skimage

    data = Path(skimage.__file__).parent / "data"
    for name, (file, side, loss, seed) in SAMPLES.items():
        image = load_image(data / file)
        h, w = image.shape[:2]
        scale = side / max(h, w)
        image = np.asarray(Image.fromarray(image).resize((round(w * scale), round(h * scale)), Image.LANCZOS))
        rng = np.random.default_rng(seed)
        h, w = image.shape[:2]
        cracks = create_advanced_mask("thin", h, w, rng)
        lost = create_advanced_mask(loss, h, w, rng)
        damaged = aged(image)
        damaged[cracks] = (damaged[cracks] * 0.35).astype(np.uint8)  # dirt in the cracks
        damaged[lost] = (226, 216, 196)  # bare paper
        repair = cracks | lost
        save_png(ROOT / "imgs" / f"{name}.png", damaged)
        mask = np.where(repair, 0, 255).astype(np.uint8)
        Image.fromarray(mask, "L").save(ROOT / "masks" / f"{name}.png")
        (ROOT / "masks_inverted").mkdir(exist_ok=True)
        Image.fromarray(255 - mask, "L").save(ROOT / "masks_inverted" / f"{name}.png")  # white = repair
        print(f"{name}: {w}x{h}, {repair.mean():.1%} to repair")
    for name, (file, seed) in TRAIN.items():
        image = load_image(data / file)
        h, w = image.shape[:2]
        scale = 160 / min(h, w)
        image = np.asarray(Image.fromarray(image).resize((round(w * scale), round(h * scale)), Image.LANCZOS))
        rng = np.random.default_rng(seed)
        mask = create_advanced_mask("irregular", *image.shape[:2], rng)
        for sub in ("imgs", "masks"):
            (ROOT / "train_data" / sub).mkdir(parents=True, exist_ok=True)
        save_png(ROOT / "train_data" / "imgs" / f"{name}.png", image)
        Image.fromarray(np.where(mask, 0, 255).astype(np.uint8), "L").save(ROOT / "train_data" / "masks" / f"{name}.png")
        print(f"train_data/{name}: {image.shape[1]}x{image.shape[0]}")


if __name__ == "__main__":
    main()
