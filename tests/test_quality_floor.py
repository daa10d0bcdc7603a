"""Quality floors: the shipped model's masked PSNR on a held-out photo through the real infer path, a
little under what it reaches, so that a change that costs quality fails here instead of going unnoticed
(a 1 dB slip on thin cracks once went unseen for a whole release).

The photo is a 105x128 crop of scikit-image's chelsea (never trained on) scaled to a long side of 256, a
size that is not a multiple of 8, as a user's file would be; masks and seeds are fixed; 10 steps (5 from
the Telea start at the model's strength 0.5) keep each case to a few seconds."""

import numpy as np
import pytest

from inpaint_kit.maskgen import draw
from inpaint_kit.evaluate import gradient_energy_ratio, masked_psnr
from inpaint_kit.geometry import resize_image, work_size
from inpaint_kit.inpaint import InferConfig, inpaint_array

skimage_data = pytest.importorskip("skimage.data")

# Each kind's masks are drawn from (mask_seed, 1, its number): fixed numbers, so that the floors below
# (measured on these masks) do not move when generators are registered in inpaint_kit.maskgen.
MASK_NUMBER = {"thin": 4, "thick": 5, "lama_medium": 10, "cracks": 12}


@pytest.fixture(scope="module")
def chelsea():
    img = skimage_data.chelsea()  # 300x451 RGB
    return resize_image(img, work_size(*img.shape[:2], size=256, multiple=1))[20:125, 60:188]  # 105x128


@pytest.fixture(scope="module")
def builtin():
    from inpaint_kit.engine import load_engine

    return load_engine("builtin", device="cpu")


def fill_of(engine, image, kind, seed, mask_seed=0, model="builtin", **cfg):
    """One ``infer``-path fill of a ``kind`` mask drawn from ``mask_seed``: ``(mask, result)``."""
    mask = draw(kind, *image.shape[:2], np.random.default_rng([mask_seed, 1, MASK_NUMBER[kind]]))
    cfg = InferConfig(model=model, size=128, steps=10, rows=1, **cfg).validate()
    out = inpaint_array(engine, cfg, image, mask, [seed], progress=False).results[0]
    assert np.array_equal(out[~mask], image[~mask])
    return mask, out


def psnr_of(engine, image, kind, seed, mask_seed=0, **cfg):
    """Masked PSNR of :func:`fill_of`."""
    mask, out = fill_of(engine, image, kind, seed, mask_seed, **cfg)
    return masked_psnr(image, out, mask)


def test_builtin_thin_cracks_floor(builtin, chelsea):
    # the model's sampler on the cracks (--thin_width 0), no seam correction: measured 25.76 dB (training
    # stage 5; stage 4: 25.63); 24.97 dB before native canvases were padded instead of resampled (the slip
    # of commit 9f6d37a)
    assert psnr_of(builtin, chelsea, "thin", 1, thin_width=0, blend="none") >= 25.4
    # with the default --blend laplacian: measured 27.79 dB (stage 4: 27.75)
    assert psnr_of(builtin, chelsea, "thin", 1, thin_width=0) >= 27.5


@pytest.mark.parametrize("kind,floor", [("thin", 28.2),  # measured 28.49 dB (Navier-Stokes 27.46, the model alone 25.76)
                                        ("cracks", 27.9),  # 28.21 (NS 26.21; the thin filler's fill)
                                        ("lama_medium", 17.6),  # 17.89 (NS 17.23; stage 4 of the model: 17.71)
                                        ("thick", 21.2)])  # 21.51 (NS 21.46; stage 4: 21.21)
def test_default_settings_floor_per_mask_kind(builtin, chelsea, kind, floor):
    """The defaults (thin filler, builtin on wide losses, laplacian seams on its fill), one fill per mask kind; the
    floors sit about 0.3 dB under the measured values (in the comments of the parametrisation)."""
    assert psnr_of(builtin, chelsea, kind, 1) >= floor


def test_default_settings_keep_texture_in_large_losses(builtin, chelsea):
    # measured 0.73 (stage 4: 0.78; Navier-Stokes smears: about 0.5); one fill, so a little wider than the
    # 0.75-1.25 target, which holds on average (docs/benchmarks.md)
    mask, out = fill_of(builtin, chelsea, "thick", 1)
    assert 0.7 <= gradient_energy_ratio(chelsea, out, mask) <= 1.3
