"""Working-canvas sizes and paste-back exactness."""

import numpy as np
import pytest

from inpaint_kit.geometry import mask_bbox, paste_back, to_work, work_size


@pytest.mark.parametrize("h,w,size,expected", [
    (512, 512, 768, (768, 768)),
    (300, 1000, 768, (232, 768)),  # 300*0.768 = 230.4 -> 232
    (1001, 333, 512, (512, 168)),
    (10, 4000, 64, (8, 64)),  # never below one multiple
])
def test_work_size_long_side_and_multiples_of_8(h, w, size, expected):
    assert work_size(h, w, size, 8) == expected


def test_work_size_respects_other_multiples():
    assert work_size(100, 150, 200, 64) == (128, 192)


def test_thin_mask_survives_downscaling():
    m = np.zeros((400, 400), bool)
    m[:, 201] = True  # a one-pixel crack
    img = np.zeros((400, 400, 3), np.uint8)
    work_img, work_mask = to_work(img, m, 64)
    assert work_img.shape == (64, 64, 3) and work_mask.any()


def test_paste_back_is_bit_exact_outside_mask():
    rng = np.random.default_rng(0)
    orig = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    result = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)  # model size differs from original
    mask = np.zeros((37, 53), bool)
    mask[10:20, 5:30] = True
    out = paste_back(orig, result, mask)
    assert out.shape == orig.shape and np.array_equal(out[~mask], orig[~mask])
    assert not np.array_equal(out[mask], orig[mask])
    blurred = paste_back(orig, result, mask, blur=4)
    far = np.ones_like(mask)
    far[5:25, 0:35] = False
    assert np.array_equal(blurred[far], orig[far])
    assert np.array_equal(blurred[mask], out[mask])


def test_mask_bbox():
    m = np.zeros((10, 10), bool)
    assert mask_bbox(m) is None
    m[2:5, 3:9] = True
    assert mask_bbox(m) == (2, 3, 5, 9)
