"""The synthetic damage generator: every kind changes the picture, and its mask is exactly what it changed."""

from dataclasses import replace

import numpy as np
import pytest

from inpaint_kit.detect import damage, negatives, shapes
from inpaint_kit.detect.damage import KINDS, VISIBLE, DamageSettings, render

# No noise or JPEG over the result: then image - clean is the damage alone.
EXACT = DamageSettings(noise=0.0, jpeg=0.0, grey_scan=0.0)


def picture(h=96, w=96, seed=0):
    """A smooth picture with some detail (gradients + a few shapes), RGB uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.3 + 0.4 * x, 0.5 - 0.3 * y, 0.4 + 0.2 * x * y], axis=2)
    img += 0.05 * rng.standard_normal((h, w, 3))
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_masks_exactly_what_it_changed(kind):
    pic = picture()
    for seed in range(3):
        s = render(pic, np.random.default_rng(seed), EXACT, kinds=(kind,), damaged=True)
        change = np.abs(s.image.astype(int) - s.clean.astype(int)).max(axis=2)
        assert s.mask.any(), f"{kind} (seed {seed}) drew nothing"
        assert s.kinds and set(s.kinds) == {kind}
        # VISIBLE is measured before rounding to 8 bits: allow one level of rounding either way
        assert not (change > VISIBLE * 255 + 1)[~s.mask].any(), f"{kind}: changed pixels outside the mask"
        assert (change >= VISIBLE * 255 - 1)[s.mask].all(), f"{kind}: mask pixels the damage did not change"
        assert not (s.ignore & ~s.mask).any() and s.care.any(), f"{kind}: ignored pixels outside the damage"


@pytest.mark.parametrize("kind", KINDS)
def test_noise_is_laid_over_damage_and_picture_alike(kind):
    # with grain / sensor noise and resampling on, the clean image carries the very same noise: outside the
    # mask the two still differ by less than VISIBLE (plus rounding and the noise's luminance weighting)
    settings = replace(EXACT, noise=1.0)
    s = render(picture(), np.random.default_rng(5), settings, kinds=(kind,), damaged=True, out_size=(80, 80))
    assert s.image.shape == (80, 80, 3) and s.mask.shape == (80, 80)
    change = np.abs(s.image.astype(int) - s.clean.astype(int)).max(axis=2)
    assert change[~s.mask].max() <= VISIBLE * 255 + 3
    assert s.mask.any() and np.abs(s.image.astype(int) - picture(80, 80).astype(int)).max() > 0


def test_clean_samples_have_empty_masks_and_equal_images():
    s = render(picture(), np.random.default_rng(1), damage.DamageSettings(), damaged=False)
    assert not s.mask.any() and s.kinds == ()
    assert np.array_equal(s.image, s.clean)


def test_render_is_a_pure_function_of_the_generator():
    a = render(picture(), np.random.default_rng(7), DamageSettings())
    b = render(picture(), np.random.default_rng(7), DamageSettings())
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask) and a.info == b.info


def test_hold_out_removes_a_setting_from_training_and_keeps_only_it_for_evaluation():
    s = DamageSettings(hold_out="kind:hair")
    assert "hair" not in s.training().kinds and s.held_out().kinds == ("hair",)
    t = DamageSettings(hold_out="tone:sepia")
    assert t.training().tones == ("colour", "grey") and t.held_out().tones == ("sepia",)
    c = DamageSettings(hold_out="crease")
    assert c.training().crease == 0 and c.held_out().crease == 1
    with pytest.raises(ValueError):
        DamageSettings(hold_out="kind:nothing")


@pytest.mark.parametrize("width", [0.25, 0.75, 1.25, 2.75])
def test_coverage_is_anti_aliased_with_sub_pixel_widths(width):
    cov = shapes.Coverage(20, 40).stroke(np.array([[2.0, 10.3], [37.0, 10.3]]), width, 1.0).read()
    # a horizontal line of `width` px: that much coverage per column, spread over the rows it touches
    assert np.allclose(cov[:, 10:30].sum(axis=0), width, atol=0.02)
    assert cov.max() <= min(1.0, width) + 0.01  # soft edges: no pixel fuller than the line is wide


def test_hard_negatives_change_the_picture_but_are_not_damage():
    pic = picture(128, 128).astype(np.float32) / 255
    rng = np.random.default_rng(3)
    for kind, draw in {**negatives.SCENE_DRAW, **negatives.SCREEN_DRAW}.items():
        out = draw(pic.copy(), rng) if kind in negatives.SCREEN_DRAW else draw(pic.copy(), rng, 1.0)
        assert out.shape == pic.shape and np.abs(out - pic).max() > 0.005, kind


def test_damage_hidden_by_texture_is_ignored_not_required():
    from inpaint_kit.detect.damage import hidden

    # the same faint change (0.05) on a flat picture and on a busy texture: visible on one, hidden on the other
    flat = np.full((40, 40, 3), 0.5, np.float32)
    busy = flat + 0.2 * np.random.default_rng(0).choice([-1.0, 1.0], (40, 40, 1)).astype(np.float32)
    change = np.full((40, 40), 0.05, np.float32)
    assert not hidden(flat, change).any()
    assert hidden(busy, change)[5:-5, 5:-5].all()


def test_film_scratches_run_straight_from_edge_to_edge():
    # a film scratch crosses the whole canvas (it reaches two of its sides, unless a gap falls at an end), and
    # a lone one is straight: a line fitted to its pixels leaves < 1.5 px (the others are parallel groups)
    pic = picture(128, 160)
    settings = replace(EXACT, items=(1, 1), scene_lines=0.0, border=0.0, sky=0.0)
    sides, straight = [], 0  # how many of the canvas's sides each draw reaches; lone straight lines
    for seed in range(12):
        rng = np.random.default_rng(seed)
        layers = damage.film_scratch(damage.Context(128, 160, 1.0, 0.0, None), rng)
        cov = layers[0][0]
        assert cov.shape == (128, 160) and cov.max() > 0.2
        s = render(pic, np.random.default_rng(seed), settings, kinds=("film_scratch",), damaged=True)
        assert s.mask.any() and s.kinds == ("film_scratch",)
        on = cov > 0.1
        sides.append(sum([on[0].any(), on[-1].any(), on[:, 0].any(), on[:, -1].any()]))
        ys, xs = np.nonzero(on)
        vertical = np.ptp(ys) > np.ptp(xs)
        along, across = (ys, xs) if vertical else (xs, ys)
        fit = np.polyval(np.polyfit(along, across, 1), along)
        straight += int(np.abs(across - fit).max() < 1.5)
    assert sum(n >= 2 for n in sides) >= 10, sides  # edge to edge (a few have gaps, maybe at an end)
    assert straight >= 6  # about 2 in 3 are lone lines
