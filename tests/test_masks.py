"""Mask conventions: binarize at 128, black/white modes, reading mask files (alpha-painted masks, fitting
to a size without losing a pixel), feathering outside the mask."""

import numpy as np
import pytest
from PIL import Image

from inpaint_kit.masks import cover_mask, feather, read_mask, to_repair


def test_binarize_at_128_and_modes_are_inverses():
    grey = np.array([[0, 127, 128, 255]], np.uint8)
    assert to_repair(grey, "black").tolist() == [[True, True, False, False]]
    assert to_repair(grey, "white").tolist() == [[False, False, True, True]]
    inverted = np.where(grey >= 128, 0, 255).astype(np.uint8)
    assert np.array_equal(to_repair(inverted, "white"), to_repair(grey, "black"))


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mask_mode"):
        to_repair(np.zeros((1, 1), np.uint8), "grey")


def test_read_mask_binarizes_by_mode(tmp_path):
    grey = np.array([[0, 127, 128, 255]], np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "m.png")
    assert read_mask(tmp_path / "m.png", "black").tolist() == [[True, True, False, False]]
    assert read_mask(tmp_path / "m.png", "white").tolist() == [[False, False, True, True]]


def test_read_mask_takes_strokes_painted_in_the_alpha_channel(tmp_path):
    # strokes on a transparent layer: uniform colour, the alpha carries the mask
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[2:4, 1:7, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    for mode in ("black", "white"):
        mask = read_mask(tmp_path / "alpha.png", mode)
        assert mask.sum() == 12 and mask[2:4, 1:7].all()


def test_read_mask_fits_another_size_without_losing_a_thin_line(tmp_path):
    grey = np.full((40, 60), 255, np.uint8)
    grey[17] = 0  # a 1-px black scratch
    Image.fromarray(grey, "L").save(tmp_path / "m.png")
    small = read_mask(tmp_path / "m.png", "black", (8, 12))
    assert small.shape == (8, 12) and small[3].all() and small.sum() == 12  # row 17 lies under working row 3
    assert np.array_equal(small, cover_mask(read_mask(tmp_path / "m.png", "black"), (8, 12)))
    assert read_mask(tmp_path / "m.png", "black", (40, 60)).sum() == 60


def test_feather_is_one_inside_zero_far_outside_and_ramps_between():
    m = np.zeros((1, 12), bool)
    m[0, :4] = True
    a = feather(m, 3)
    assert (a[0, :4] == 1).all()
    assert (np.diff(a[0, 3:8]) < 0).all() and 0 < a[0, 4] < 1
    assert (a[0, 8:] == 0).all()
    assert np.array_equal(feather(m, 0), m.astype(np.float32))
