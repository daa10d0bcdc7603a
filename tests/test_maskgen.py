"""Every named mask generator: the size asked for, never empty, a pure function of the rng state, and the
shapes they promise (craquelure: a connected network of thin lines; the mixtures: the draws the trainers
have always made)."""

import numpy as np
import pytest

from inpaint_kit import maskgen
from inpaint_kit.maskgen import GENERATORS, MASK_KINDS, draw

SIZES = [(2, 2), (5, 3), (64, 64), (96, 128), (131, 77)]


@pytest.mark.parametrize("kind", list(GENERATORS))
def test_size_dtype_never_empty(kind):
    for h, w in SIZES:
        for seed in range(3):
            m = draw(kind, h, w, np.random.default_rng(seed))
            assert m.shape == (h, w) and m.dtype == bool and m.any(), (kind, h, w, seed)


@pytest.mark.parametrize("kind", list(GENERATORS))
def test_deterministic_per_rng_state(kind):
    a = draw(kind, 96, 128, np.random.default_rng(7))
    assert np.array_equal(a, draw(kind, 96, 128, np.random.default_rng(7)))
    rng = np.random.default_rng(7)
    first, second = draw(kind, 96, 128, rng), draw(kind, 96, 128, rng)
    assert np.array_equal(first, a)
    if kind not in ("center", "expand"):  # fixed shapes by definition
        assert len({draw(kind, 96, 128, np.random.default_rng(s)).tobytes() for s in range(6)}) > 1, kind
        assert not np.array_equal(first, second) or kind in ("every_second_line", "half"), kind


def test_registry_keeps_the_classic_kinds_first_and_unknown_names_are_refused():
    assert MASK_KINDS == ("random_rect", "center", "irregular", "stripes", "thin", "thick", "every_second_line",
                          "half", "expand")
    assert list(GENERATORS)[: len(MASK_KINDS)] == list(MASK_KINDS)  # eval's seeds use these positions
    assert [maskgen.kind_index(k) for k in MASK_KINDS] == list(range(len(MASK_KINDS)))
    with pytest.raises(ValueError, match="unknown mask kind 'blob'.*craquelure"):
        draw("blob", 8, 8, np.random.default_rng(0))
    with pytest.raises(ValueError, match="at least 2x2"):
        draw("thin", 1, 8, np.random.default_rng(0))
    with pytest.raises(ValueError, match="registered twice"):
        maskgen.generator("thin")(lambda h, w, rng: None)


def test_craquelure_is_a_connected_network_of_thin_cracks():
    import cv2

    for seed in range(4):
        m = draw("craquelure", 256, 256, np.random.default_rng(seed))
        assert 0.02 < m.mean() < 0.35, m.mean()
        # thin: every crack pixel has a keep pixel within 3 px
        dist = cv2.distanceTransform(m.astype(np.uint8), cv2.DIST_L2, 3)
        assert dist.max() <= 3, dist.max()
        # a network: the cracks hold many closed cells, and most crack pixels form one connected piece
        cells, _ = cv2.connectedComponents((~m).astype(np.uint8), connectivity=4)
        assert cells - 1 >= 10, cells
        n, labels = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
        sizes = np.bincount(labels[m])
        assert sizes.max() >= 0.8 * m.sum(), (n, sizes.max(), m.sum())


def test_local_shapes_follow_scale_and_centre():
    for kind in ("ellipse", "stroke", "box", "spot"):
        m = draw(kind, 100, 200, np.random.default_rng(3), scale=(0.2, 0.2), center=(50, 40))
        ys, xs = np.nonzero(m)
        assert abs(ys.mean() - 50) < 12 and xs.min() <= 40 + 2 and m.mean() < 0.1, kind
    big = draw("box", 100, 100, np.random.default_rng(1), scale=(0.5, 0.5))
    assert np.nonzero(big.any(1))[0].size == 50  # the box's height is scale x short side


def test_coverage_stays_in_its_range():
    for seed in range(8):
        m = draw("coverage", 64, 64, np.random.default_rng(seed), lo=0.1, hi=0.3)
        assert 0.1 <= m.mean() <= 0.3
    assert draw("coverage", 64, 64, np.random.default_rng(0), lo=0.5, hi=0.9).mean() >= 0.5


def test_mixtures_draw_exactly_what_their_kinds_draw():
    """The trainers' mixtures consume the rng as "pick a kind, then draw it" (the draws the existing runs
    and their resumed checkpoints depend on)."""
    rng, ref = np.random.default_rng(11), np.random.default_rng(11)
    got = draw("assorted", 64, 64, rng)
    kind = maskgen.ASSORTED_KINDS[int(ref.integers(len(maskgen.ASSORTED_KINDS)))]
    assert np.array_equal(got, draw(kind, 64, 64, ref)) and rng.random() == ref.random()
    rng, ref = np.random.default_rng(5), np.random.default_rng(5)
    got = draw("spot", 64, 64, rng)
    shape = maskgen.LOCAL_SHAPES[int(ref.integers(3))]
    assert np.array_equal(got, draw(shape, 64, 64, ref))


def test_window_is_cut_from_a_larger_canvas():
    # a window of 'center' on a canvas larger than the window is not the window's own centred square
    masks = [draw("window", 32, 32, np.random.default_rng(s), kinds=("center",)) for s in range(12)]
    own = draw("center", 32, 32, np.random.default_rng(0))
    assert any(not np.array_equal(m, own) for m in masks)
    assert all(m.shape == (32, 32) and m.any() for m in masks)
