"""Detection metrics on constructed cases: tolerance, IoU, pooling, the share flagged, threshold choice,
and the banded small-component filter."""

import numpy as np
import pytest

from inpaint_kit.detect.detector import drop_small, to_mask
from inpaint_kit.detect.metrics import Counts, best_threshold, counts


def line(h=50, w=60, row=20, width=1):
    m = np.zeros((h, w), bool)
    m[row : row + width, 5:55] = True
    return m


def test_a_line_shifted_within_the_tolerance_is_found_but_not_intersected():
    c = counts(line(row=21), line(row=20), tolerance=2)
    assert c.precision == 1 and c.recall == 1 and c.f1 == 1
    assert c.iou == 0  # IoU has no tolerance


def test_a_line_shifted_beyond_the_tolerance_is_missed():
    c = counts(line(row=23), line(row=20), tolerance=2)
    assert c.precision == 0 and c.recall == 0 and c.f1 == 0


def test_precision_recall_and_iou_of_a_partial_detection():
    truth = line(width=2)  # 100 px
    pred = np.zeros_like(truth)
    pred[20:22, 5:30] = True  # half of it, exactly
    pred[40, 5:55] = True  # and a 50-px false line far away
    c = counts(pred, truth, tolerance=2)
    assert c.pred == 100 and c.pred_hit == 50 and c.precision == 0.5
    # the truth within 2 px of a prediction: columns 5..31 (25 found + 2 px of tolerance) of both rows
    assert c.true_hit == 2 * 27 and c.recall == pytest.approx(0.54)
    assert c.iou == pytest.approx(50 / 150)


def test_counts_pool_over_images_and_flagged_is_the_share_of_all_pixels():
    clean = counts(line(), np.zeros((50, 60), bool))
    assert clean.precision == 0 and clean.recall == 1 and clean.flagged == pytest.approx(50 / 3000)
    pooled = counts(line(), line()) + clean
    assert pooled.pred == 100 and pooled.pred_hit == 50 and pooled.pixels == 6000
    assert counts(np.zeros((5, 5), bool), np.zeros((5, 5), bool)).f1 == 1  # nothing to find, nothing flagged
    assert Counts().precision == 1 and Counts().flagged == 0


def test_best_threshold_respects_the_false_positive_limit():
    truth = line()
    prob = np.where(truth, 0.6, 0.0).astype(np.float32)
    noisy_clean = np.full((50, 60), 0.3, np.float32)  # everything at 0.3 on a clean image
    t, c, cc = best_threshold([prob], [truth], [noisy_clean], max_flagged=0.01)
    assert 0.3 < t <= 0.6 and c.f1 == 1 and cc.flagged == 0
    t2, _, _ = best_threshold([prob], [truth], [], max_flagged=0.01)
    assert t2 <= 0.6


def test_to_mask_threshold_min_area_and_dilate():
    prob = np.zeros((40, 40), np.uint16)
    prob[10, 5:35] = 40000  # a 30-px line at p = 0.61
    prob[30, 30] = 60000  # a 1-px speck
    assert to_mask(prob, 0.5).sum() == 31
    assert to_mask(prob, 0.7).sum() == 1
    assert to_mask(prob, 0.5, min_area=2).sum() == 30
    assert to_mask(prob, 0.5, min_area=2, dilate=1)[9:12, 5:35].all()


@pytest.mark.parametrize("seed", range(4))
def test_banded_small_component_removal_equals_whole_image_labelling(seed):
    import cv2

    rng = np.random.default_rng(seed)
    mask = cv2.dilate((rng.random((300, 80)) < 0.02).astype(np.uint8), np.ones((2, 2), np.uint8)) > 0
    mask[:, 40] |= rng.random(300) < 0.9  # a long broken vertical line crossing every band
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= 6
    keep[0] = False
    assert np.array_equal(drop_small(mask, 6, band=17), keep[labels])


def test_ignored_damage_is_neither_required_nor_a_false_positive():
    truth = line(width=2)
    ignore = np.zeros_like(truth)
    ignore[:, 30:] = True  # the right half of the line is hidden by texture
    found_left = np.zeros_like(truth)
    found_left[20:22, 5:30] = True
    c = counts(found_left, truth, ignore=ignore & truth)
    assert c.recall == 1 and c.precision == 1 and c.iou == 1
    found_all = counts(truth, truth, ignore=ignore & truth)
    assert found_all.precision == 1 and found_all.recall == 1 and found_all.iou == 1
