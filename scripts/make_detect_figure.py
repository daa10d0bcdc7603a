#!/usr/bin/env python
"""Rebuild docs/detect_example.jpg: a damaged photograph | the builtin detector's mask overlaid (red) |
the restoration by ``inpaint-kit infer --model builtin --mask auto`` (detected and restored in one run).

The photograph is scikit-image's ``chelsea`` (held out of every builtin model's training), damaged by
the synthetic generator (scratches, dust, hairs, a bright crack, a torn corner; fixed seed), at its
native 451x300. Detection and restoration run through the command, exactly as a user would; the mask used
is the ``damaged_mask.png`` that run writes beside its outputs (white = repaired)::

    inpaint-kit infer --model builtin --image damaged.png --mask auto --rows 1 --seed 1 --area crops --save_rows

    .venv/bin/python scripts/make_detect_figure.py            # about a minute on 2 CPU cores
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inpaint_kit.detect.damage import DamageSettings, render  # noqa: E402
from inpaint_kit.detect.files import overlay  # noqa: E402
from inpaint_kit.images import load_image, save_png  # noqa: E402

KINDS = ("scratch", "dust", "hair", "crack_bright", "tear")
SEED = 6


def damaged_photo() -> tuple[np.ndarray, np.ndarray]:
    """The held-out photo as a sepia print with six damage items of ``KINDS`` (no JPEG), and its mask."""
    from skimage import data

    settings = DamageSettings(kinds=KINDS, items=(6, 6), jpeg=0.0, grey_scan=0.0, scene_lines=0.0, screens=0.0,
                              tones=("sepia",))
    s = render(data.chelsea(), np.random.default_rng(SEED), settings, scale=1.0, damaged=True)
    return s.image, s.mask


def main() -> None:
    bin_dir = Path(sys.executable).parent
    image, truth = damaged_photo()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        save_png(tmp / "damaged.png", image)
        run = [str(bin_dir / "inpaint-kit")]
        subprocess.run(run + ["infer", "--model", "builtin", "--image", str(tmp / "damaged.png"), "--mask", "auto",
                              "--rows", "1", "--seed", "1", "--save_rows", "--area", "crops",
                              "--output", str(tmp / "damaged_collage.png"), "--no_progress"], check=True)
        mask = np.asarray(Image.open(tmp / "damaged_mask.png")) >= 128  # the mask used: white = repaired
        restored = load_image(next(tmp.glob("damaged_row0_seed*.png")))
    gap = np.full((image.shape[0], 8, 3), 255, np.uint8)
    sheet = np.concatenate([image, gap, overlay(image, mask), gap, restored], axis=1)
    out = ROOT / "docs" / "detect_example.jpg"
    Image.fromarray(sheet).save(out, quality=88)  # a small file for the docs (a lossless PNG is ~1 MB)
    from inpaint_kit.detect.metrics import counts

    c = counts(mask, truth)
    print(f"{out}: detected F1 {c.f1:.3f} (P {c.precision:.2f} R {c.recall:.2f}) against the generator's mask")


if __name__ == "__main__":
    main()
