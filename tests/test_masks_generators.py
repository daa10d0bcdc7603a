import numpy as np
import pytest

from inpaint_kit.maskgen import MASK_KINDS, create_advanced_mask

# Expected fraction of the canvas to repaint, per kind, at 256 x 256 (checked over several seeds).
COVERAGE = {
    "random_rect": (0.01, 0.25),
    "center": (0.25, 0.25),
    "irregular": (0.03, 0.5),
    "stripes": (1 / 16, 3 / 6),
    "thin": (0.003, 0.12),
    "thick": (0.05, 0.75),
    "every_second_line": (0.5, 0.5),
    "half": (0.5, 0.5),
    "expand": (0.75, 0.75),
}


def test_every_kind_has_a_coverage_range():
    assert set(COVERAGE) == set(MASK_KINDS)


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_coverage_shape_and_dtype(kind):
    lo, hi = COVERAGE[kind]
    for seed in range(8):
        m = create_advanced_mask(kind, 256, 256, np.random.default_rng(seed))
        assert m.shape == (256, 256) and m.dtype == bool
        assert lo - 1e-9 <= m.mean() <= hi + 1e-9, (kind, seed, m.mean())


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_deterministic_per_seed_and_varies_across_seeds(kind):
    a = create_advanced_mask(kind, 96, 128, np.random.default_rng(5))
    b = create_advanced_mask(kind, 96, 128, np.random.default_rng(5))
    assert a.shape == (96, 128)
    assert np.array_equal(a, b)
    if kind not in ("center", "expand"):  # those two are fixed shapes by definition
        masks = {create_advanced_mask(kind, 96, 128, np.random.default_rng(s)).tobytes() for s in range(6)}
        assert len(masks) > 1


def test_fixed_shapes_are_exact():
    rng = np.random.default_rng(0)
    c = create_advanced_mask("center", 8, 8, rng)
    assert c[2:6, 2:6].all() and c.sum() == 16
    assert np.array_equal(create_advanced_mask("expand", 8, 8, rng), ~c)
    lines = create_advanced_mask("every_second_line", 6, 4, np.random.default_rng(1))
    assert lines.any(axis=1).sum() == 3 and lines.all(axis=1).sum() == 3


def test_thin_is_thin_and_never_empty_on_tiny_canvas():
    m = create_advanced_mask("thin", 256, 256, np.random.default_rng(3))
    # A crack: almost every repaint pixel has a keep pixel within 3 px (crossings may be wider).
    import cv2

    dist = cv2.distanceTransform(m.astype(np.uint8), cv2.DIST_L2, 3)
    assert np.percentile(dist[m], 95) <= 3
    for kind in MASK_KINDS:
        assert create_advanced_mask(kind, 2, 2, np.random.default_rng(0)).any()


def test_unknown_kind_names_the_choices():
    with pytest.raises(ValueError, match="unknown mask kind 'blob'.*random_rect"):
        create_advanced_mask("blob", 10, 10, np.random.default_rng(0))
