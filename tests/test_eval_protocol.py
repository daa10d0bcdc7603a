"""``eval`` as a benchmark: LaMa protocol and crack masks, method specs through the infer path, repetitions
with confidence intervals and paired differences, the seam metrics."""

import json

import numpy as np
import pytest

from inpaint_kit.cli import main
from inpaint_kit.maskgen import DAMAGE_KINDS as KINDS, LAMA, draw, lama_mask
from inpaint_kit.errors import InpaintKitError
from inpaint_kit.evaluate import EvalConfig, ci95, eval_masks, parse_method, run_eval
from inpaint_kit.geometry import component_widths
from inpaint_kit.images import save_png


def textured(h=48, w=64, seed=0):
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / 3.0), np.cos(yy / 4.0), np.sin((xx + yy) / 5.0)], -1) * 100 + 128
    return np.clip(base + np.random.default_rng(seed).normal(0, 10, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("gt")
    for i in range(2):
        save_png(d / f"p{i}.png", textured(60, 80, seed=i))
    return d


@pytest.mark.parametrize("kind", KINDS)
def test_generators_are_reproducible_and_never_empty(kind):
    a = draw(kind, 171, 256, np.random.default_rng(5))
    b = draw(kind, 171, 256, np.random.default_rng(5))
    assert a.dtype == bool and a.shape == (171, 256) and a.any() and np.array_equal(a, b)
    assert not np.array_equal(a, draw(kind, 171, 256, np.random.default_rng(6)))


def test_lama_masks_follow_lamas_settings():
    rng = np.random.default_rng(0)
    for kind in ("thin", "medium", "thick"):
        covers = [lama_mask(kind, 256, 256, rng).mean() for _ in range(30)]
        assert max(covers) <= 0.5  # LaMa's max_tamper_area
    # thin strokes are 5 + U[0, 10) px wide at 256 px: no component of a single stroke is wider than 14 px
    widths = []
    for seed in range(20):
        _, w = component_widths(lama_mask("thin", 256, 256, np.random.default_rng(seed)))
        widths.append(w[1:].min())
    assert min(widths) >= 5 and LAMA[("thin", 256)][1] == 10


def test_cracks_are_thin_and_scan_cracks_keep_their_width_on_a_large_scan():
    _, w = component_widths(draw("cracks", 256, 256, np.random.default_rng(1)))
    assert w[1:].max() <= 5
    big = draw("scan_cracks", 1707, 2560, np.random.default_rng(0))
    assert big.mean() < 0.05
    _, w = component_widths(big)
    assert np.median(w[1:]) <= 5  # 2-4 px cracks (crossings measure a little wider)


def test_method_specs_parse_into_infer_settings():
    assert parse_method("builtin+thin_width=0+blend=none") == ("builtin", {"thin_width": 0.0, "blend": "none"})
    assert parse_method("ns") == ("ns", {})
    assert parse_method("builtin+strength=0.3+init=ns") == ("builtin", {"strength": 0.3, "init": "ns"})
    for bad in ("builtin+magic=1", "builtin+thin_width", "builtin+thin_width=wide"):
        with pytest.raises(InpaintKitError):
            parse_method(bad)


def test_eval_repeats_with_intervals_paired_differences_and_seam_metrics(photos, tmp_path):
    out = tmp_path / "scores.json"
    cfg = EvalConfig(data=str(photos), mask_kinds=("cracks", "lama_medium"),
                     methods=("telea", "ns", "ns+thin_width=0+blend=laplacian"), seeds=2, size=80, output=str(out))
    scores = run_eval(cfg, progress=False)
    by = {(s.kind, s.method): s for s in scores}
    assert all(s.images == 4 for s in scores)  # 2 photos x 2 repetitions
    assert by[("cracks", "ns")].vs_reference == 0 and by[("cracks", "ns")].vs_reference_ci == 0
    assert by[("cracks", "telea")].psnr_ci > 0 and by[("cracks", "telea")].band_de > 0
    # the laplacian blend on OpenCV's own fill moves it a little (a different method, not a copy)
    assert by[("lama_medium", "ns+thin_width=0+blend=laplacian")].vs_reference != 0
    data = json.loads(out.read_text())
    assert {"band_de", "jump", "vs_reference", "psnr_ci"} <= set(data["scores"][0])
    # masks of a repetition depend only on (seed + r, image, kind)
    img = textured(60, 80)
    assert np.array_equal(eval_masks(img, 0, ("cracks",), 1)["cracks"], eval_masks(img, 0, ("thin", "cracks"), 1)["cracks"])


def test_eval_cli_seeds_flag_and_a_bad_method_setting(photos, capsys):
    assert main(["eval", "--images", str(photos), "--mask_kinds", "cracks", "--methods", "ns,telea",
                 "--seeds", "2", "--size", "80"]) == 0
    table = capsys.readouterr().out
    assert "| cracks | telea |" in table and "±" in table and "vs ns, paired" in table
    assert main(["eval", "--images", str(photos), "--methods", "builtin+thin_width=x"]) == 2
    err = capsys.readouterr().err
    assert "thin_width='x' is not a float" in err and len(err.strip().splitlines()) == 1


def test_ci95():
    assert ci95([1.0]) == 0 and ci95([2.0, 2.0, 2.0]) == 0
    assert ci95([0.0, 1.0]) == pytest.approx(12.71 * np.std([0, 1], ddof=1) / np.sqrt(2))
