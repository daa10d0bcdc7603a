"""Mask conventions: binarize at 128, black/white modes, nearest resize, feathering outside the mask."""

import numpy as np
import pytest

from inpaint_kit.masks import feather, resize_nearest, to_repair


def test_binarize_at_128_and_modes_are_inverses():
    grey = np.array([[0, 127, 128, 255]], np.uint8)
    assert to_repair(grey, "black").tolist() == [[True, True, False, False]]
    assert to_repair(grey, "white").tolist() == [[False, False, True, True]]
    inverted = np.where(grey >= 128, 0, 255).astype(np.uint8)
    assert np.array_equal(to_repair(inverted, "white"), to_repair(grey, "black"))


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mask_mode"):
        to_repair(np.zeros((1, 1), np.uint8), "grey")


def test_resize_nearest_keeps_binary_blocks():
    m = np.array([[True, False], [False, True]])
    big = resize_nearest(m, (4, 6))
    assert big.dtype == bool and big.shape == (4, 6)
    assert big[:2, :3].all() and not big[:2, 3:].any() and big[2:, 3:].all()


def test_feather_is_one_inside_zero_far_outside_and_ramps_between():
    m = np.zeros((1, 12), bool)
    m[0, :4] = True
    a = feather(m, 3)
    assert (a[0, :4] == 1).all()
    assert (np.diff(a[0, 3:8]) < 0).all() and 0 < a[0, 4] < 1
    assert (a[0, 8:] == 0).all()
    assert np.array_equal(feather(m, 0), m.astype(np.float32))
