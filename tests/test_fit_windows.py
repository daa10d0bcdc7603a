"""Windows fitted to the damage (cost that follows the damage): context scaled to each component's width,
windows that shrink to the damage inside them, never more pixels than the unfitted tiling."""

import numpy as np
import pytest

from inpaint_kit.maskgen import draw
from inpaint_kit.geometry import (MIN_CONTEXT, component_context, component_widths, plan_area, plan_crops,
                                  split_by_width)


def area(regions):
    return sum(r.work_hw[0] * r.work_hw[1] for r in regions)


def inside(box, outer):
    return outer[0] <= box[0] and outer[1] <= box[1] and box[2] <= outer[2] and box[3] <= outer[3]


@pytest.mark.parametrize("kind,hw,seed", [("scan_cracks", (1707, 2560), 0), ("cracks", (900, 1400), 1),
                                          ("lama_medium", (1100, 800), 2), ("thin", (600, 900), 3),
                                          ("lama_thick", (500, 700), 4), ("stripes", (300, 500), 5)])
def test_fitted_windows_never_cover_more_pixels_than_the_old_tiling_and_cover_all_damage(kind, hw, seed):
    mask = draw(kind, *hw, np.random.default_rng(seed))
    old = plan_crops(mask, 768, padding=64, fit=False)
    new = plan_crops(mask, 768, padding=64)
    assert area(new) <= area(old)
    assert all(any(inside(r.box, o.box) for o in old) for r in new)  # every window lies in an old one
    covered = np.zeros(hw, bool)
    for r in new:
        covered[r.box[0]:r.box[2], r.box[1]:r.box[3]] = True
        assert r.native and r.work_hw[0] % 8 == 0 and r.work_hw[1] % 8 == 0
    assert covered[mask].all()


def test_a_meandering_crack_costs_far_less_than_its_tiles():
    mask = draw("scan_cracks", 1707, 2560, np.random.default_rng(0))  # 1.5 % of a 2560-px scan
    old, new = plan_crops(mask, 768, 64, fit=False), plan_crops(mask, 768, 64)
    assert area(new) < 0.75 * area(old)  # measured 0.66
    assert len({r.work_hw for r in new}) < len(new)  # some windows share a size (and a batched call)


def test_model_pixels_follow_the_damage_not_the_image():
    """The same cracks in a 4x larger image (clean surroundings added) cost about the same pixels: a little
    more, as damage near the small image's border gets its full context in the large one (measured 1.23x,
    the unfitted tiling 1.45x)."""
    small = draw("cracks", 600, 800, np.random.default_rng(7))
    big = np.zeros((1200, 1600), bool)
    big[256:856, 384:1184] = small
    a_small, a_big = area(plan_crops(small, 768, 64)), area(plan_crops(big, 768, 64))
    assert a_big <= 1.3 * a_small
    assert a_big < area(plan_crops(big, 768, 64, fit=False))


def test_context_scales_with_the_components_width():
    mask = np.zeros((300, 400), bool)
    mask[50:53, 20:200] = True  # a 3-px crack
    mask[200:250, 200:260] = True  # a 50-px wide loss
    labels, context = component_context(mask, padding=64)
    assert context[labels[51, 100]] == MIN_CONTEXT  # 4 x 3 px = 12, at least MIN_CONTEXT
    assert context[labels[220, 230]] == 64  # 4 x ~50 px, at most --padding
    regions = plan_crops(mask, 512, padding=64)
    crack = [r for r in regions if r.box[0] <= 51 < r.box[2] and r.box[1] <= 100 < r.box[3]]
    hole = [r for r in regions if r.box[0] <= 220 < r.box[2] and r.box[1] <= 230 < r.box[3]]
    # the crack's windows: 3 + 2 x 24 rows grown to a multiple of 32 (not 3 + 2 x 64 = 131 rows and more)
    assert crack and all(r.box[2] - r.box[0] <= 64 for r in crack)
    assert hole and all(r.box[2] - r.box[0] >= 50 + 2 * 64 for r in hole)


def test_component_widths_and_the_thin_split():
    mask = np.zeros((60, 80), bool)
    mask[5, 5:40] = True  # 1 px
    mask[10:13, 5:40] = True  # 3 px
    mask[20:25, 5:40] = True  # 5 px
    mask[35:55, 50:75] = True  # 20 x 25 block
    labels, widths = component_widths(mask)
    assert [widths[labels[y, 20]] for y in (5, 11, 22)] == [1, 3, 5]
    assert widths[labels[45, 60]] >= 19
    thin, wide = split_by_width(mask, 3)
    assert thin[5, 20] and thin[11, 20] and not thin[22, 20] and wide[22, 20] and wide[45, 60]
    assert not (thin & wide).any() and np.array_equal(thin | wide, mask)
    thin0, wide0 = split_by_width(mask, 0)
    assert not thin0.any() and np.array_equal(wide0, mask)


def test_a_crack_running_into_a_hole_stays_thin_up_to_the_holes_rim():
    """Width is local: a crack joined to a hole is not sent to the model with it (a cracked scan's crack
    network touches every loss on it), and nothing of the hole, corners included, is left thin."""
    mask = np.zeros((60, 120), bool)
    mask[20:40, 80:100] = True  # a 20 x 20 hole
    mask[29:32, 0:80] = True  # a 3-px crack running into it
    mask[5:7, 90:118] = True  # a crack of its own
    thin, wide = split_by_width(mask, 13)
    assert wide[20:40, 80:100].all()  # the whole hole, corners too
    assert thin[29:32, 0:65].all() and not wide[:, :65].any()  # the crack, up to a few px from the rim
    assert thin[5:7, 90:118].all()
    assert not (thin & wide).any() and np.array_equal(thin | wide, mask)


def test_full_mode_is_not_fitted():
    mask = draw("cracks", 300, 400, np.random.default_rng(1))
    used, regions = plan_area(mask, "full", 256)
    assert used == "full" and len(regions) == 1 and regions[0].box == (0, 0, 300, 400)
