"""The long-line test after the network (inpaint_kit.detect.scratchlines): long dead-straight ridges of
modest probability are raised to 1; short strokes, wide regions, steep lines and noise are left alone; bands
give the whole-image result."""

import json

import numpy as np
import pytest

from inpaint_kit.detect.scratchlines import LineSettings, line_pixels, raise_lines
from inpaint_kit.detect.tiling import PROB_SCALE
from inpaint_kit.errors import InpaintKitError

S = LineSettings()


def background(h, w, seed=0):
    """A probability map of picture texture: mostly near 0, some specks up to 0.3."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 0.04, (h, w)) + (rng.random((h, w)) < 0.02) * rng.uniform(0, 0.3, (h, w))
    return p


def u16(p):
    return np.round(np.clip(p, 0, 1) * PROB_SCALE).astype(np.uint16)


def test_a_long_faint_row_is_raised_and_its_neighbours_are_not():
    p = background(200, 600)
    rng = np.random.default_rng(1)
    p[90] = rng.uniform(0.08, 0.35, 600)  # what the network gives a 1-px scratch: raised, far under threshold
    p[90, ::37] = 0.01  # with dips
    out = raise_lines(u16(p), S)
    assert (out[90] == PROB_SCALE).mean() > 0.9  # all but the dips
    raised = out == PROB_SCALE
    raised[88:93] = False  # specks of the picture within 2 px of the line may go with it (the 2-px tolerance)
    assert not raised.any()


@pytest.mark.parametrize("case", ["short", "wide", "steep", "noise"])
def test_what_is_not_a_long_straight_line_is_left_alone(case):
    p = background(300, 300, seed=2)
    if case == "short":  # a stroke of 180 px (< length 256: picture lines that long are rare): the network's
        p[150, 60:240] = 0.3
    elif case == "wide":  # a region (a loss the network is unsure of), not a ridge
        p[100:140, :] = 0.3
    elif case == "steep":  # 10 degrees off the axis
        for x in range(300):
            p[int(100 + x * np.tan(np.radians(10))), x] = 0.3
    before = u16(p)
    after = raise_lines(before.copy(), S)
    assert np.array_equal(after, before)


def test_slightly_tilted_and_vertical_lines_are_found():
    p = background(400, 500, seed=3)
    for x in range(500):  # 1.2 degrees
        p[int(round(200 + x * np.tan(np.radians(1.2)))), x] = 0.2
    p[:, 333] = 0.15  # a column
    ys, xs = line_pixels(u16(p), S)
    off = np.abs(ys - np.round(200 + xs * np.tan(np.radians(1.2))))
    assert (off == 0).sum() > 0.9 * 500 and (xs == 333).sum() > 0.9 * 400
    assert ((off > 2) & (np.abs(xs - 333) > 2)).sum() == 0  # nothing beyond 2 px of the two lines


def test_a_scratch_is_bridged_where_the_picture_hides_it_and_a_line_that_stops_is_not():
    p = background(200, 900, seed=5)
    p[60] = 0.2  # a scratch across the whole width ...
    p[60, 300:450] = np.tile([0.12, 0.01, 0.01], 50)  # ... hidden over 150 px: a faint ridge (mean 0.047 ...
    p[60, 300:450] += 0.03  # ... + 0.03 = 0.077), under the evidence in 2 of every 3 pixels
    p[140, :500] = 0.2  # a line that stops at x = 500 (the image goes on for 400 px: more than `length`)
    p[140, 500:] = 0.0
    p[100, :700] = 0.2  # a line that stops 200 px before the edge, with only the picture beyond it
    ys, xs = line_pixels(u16(p), S)
    on = lambda r: np.unique(xs[ys == r])  # noqa: E731
    assert set(range(300, 450)) <= set(on(60))  # bridged: the scratch goes on
    assert on(140).max() < 500 + 3 and on(100).max() < 700 + 3  # a line that stops is not continued
    # without the ridge (the hidden stretch like the picture around it) the gap stays open
    q = p.copy()
    q[60, 300:450] = q[61, 300:450]
    ys, xs = line_pixels(u16(q), S)
    assert not set(range(320, 430)) & set(np.unique(xs[ys == 60]))


def test_bands_give_the_whole_image_result():
    p = background(700, 450, seed=4)
    p[123] = 0.2
    p[:, 77] = 0.2
    p[400:700, 300] = 0.25  # a line ending inside the image
    p[650] = 0.3  # near the bottom
    prob = u16(p)
    whole = line_pixels(prob, S, band=100000)
    for band in (64, 100, 333):
        got = line_pixels(prob, S, band=band)
        assert sorted(zip(*got)) == sorted(zip(*whole)), band
    assert len(whole[0]) > 1000


def test_a_detector_folder_with_bad_line_settings_is_a_one_line_error(tmp_path):
    from inpaint_kit.detect.detector import load_detector
    from inpaint_kit.detect.network import build, save_detector

    folder = save_detector(tmp_path / "det", build("tiny", seed=0))
    cfg = json.loads((folder / "config.json").read_text())
    cfg["lines"] = {"length": 4}
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InpaintKitError, match="config.json: bad 'lines' settings"):
        load_detector(str(folder), device="cpu")


def test_the_builtin_detector_runs_the_line_test():
    from inpaint_kit.detect.detector import load_detector

    det = load_detector("builtin", device="cpu")
    assert det.lines == S and det.describe()["lines"] == S.to_json()
