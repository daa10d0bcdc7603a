"""Collage geometry and tile contents."""

import numpy as np
import pytest

from inpaint_kit.collage import grid


def test_grid_size_and_tiles():
    rng = np.random.default_rng(0)
    orig = rng.integers(0, 200, (11, 17, 3), dtype=np.uint8)
    mask = np.zeros((11, 17), bool)
    mask[3:6, 4:9] = True
    results = [rng.integers(0, 256, orig.shape, dtype=np.uint8) for _ in range(3)]
    g = grid(orig, mask, results, spacing_h=5, spacing_v=7)
    assert g.shape == (3 * 11 + 2 * 7, 3 * 17 + 2 * 5, 3)
    for r, res in enumerate(results):
        top = r * (11 + 7)
        assert np.array_equal(g[top:top + 11, 0:17], orig)
        preview = g[top:top + 11, 22:39]
        assert (preview[mask] == 255).all() and np.array_equal(preview[~mask], orig[~mask])
        assert np.array_equal(g[top:top + 11, 44:61], res)
    assert (g[11:18] == 255).all() and (g[:, 17:22] == 255).all()


def test_grid_zero_spacing_and_bad_rows():
    orig = np.zeros((4, 4, 3), np.uint8)
    mask = np.zeros((4, 4), bool)
    assert grid(orig, mask, [orig], 0, 0).shape == (4, 12, 3)
    with pytest.raises(ValueError, match="row 0"):
        grid(orig, mask, [np.zeros((5, 4, 3), np.uint8)])
