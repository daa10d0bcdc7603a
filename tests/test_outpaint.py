"""Outpainting: the canvas and fills, the chunk planner, the seam blend, and end to end on the real
tiny random-weight SD pipeline and the builtin DDPM: sizes, exact original pixels, passes, rows,
batch resume, one-line errors.

Geometry and seam tests use :class:`CastEngine`, a real deterministic engine (OpenCV's Telea
inpainting) that, like an SD VAE round trip, returns every pixel with a colour cast. A random-weight
SD model paints noise, which makes "no visible seam" meaningless, so the seam test uses this one."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from inpaint_kit.cli import main
from inpaint_kit.engine import Sampling, row_images
from inpaint_kit.images import load_image, read_metadata
from inpaint_kit.outpaint import (
    OutpaintConfig, blend_new, call_seed, extend_canvas, outpaint_array, plan_windows, segments, strip_sizes,
)

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--steps", "2", "--size", "64"]


class CastEngine:
    """Fills the mask with OpenCV Telea inpainting, then shifts every pixel by a colour cast and adds
    seed-dependent grain: the known pixels come back wrong the way a VAE returns them."""

    multiple = 8
    cast = np.array([14, -10, 8])

    def __init__(self):
        self.calls = []  # (image shape, mask, seeds) per call

    def describe(self):
        return {"model": "cast-engine"}

    def inpaint(self, image, mask, seeds, sampling: Sampling, progress=True):
        images = row_images(image, len(seeds))  # one shared image, or one per row
        images = images * len(seeds) if len(images) == 1 else images
        self.calls.append((images[0].shape, mask.copy(), list(seeds)))
        out = []
        for im, s in zip(images, seeds):
            base = cv2.inpaint(im, mask.astype(np.uint8), 3, cv2.INPAINT_TELEA).astype(np.int16) + self.cast
            grain = np.random.default_rng(s).integers(-2, 3, im.shape)
            out.append(np.clip(base + grain, 0, 255).astype(np.uint8))
        return out


def _smooth_photo(h, w, seed=0):
    """A smooth colour field with mild grain: its own neighbour differences are small."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([60 + 100 * x / w, 80 + 90 * y / h, 150 + 40 * np.sin(x / 25.0 + y / 40.0)], -1)
    return np.clip(base + rng.normal(0, 2.0, (h, w, 3)), 0, 255).astype(np.uint8)


def _cfg(**kw):
    base = dict(model="cast", steps=2, size=64, rows=1, seed=3, overlap=16, max_step=32)
    return OutpaintConfig(**{**base, **kw}).validate()


# --- canvas and fills --------------------------------------------------------------------------


@pytest.mark.parametrize("fill", ["edge", "blur", "noise", "gray"])
def test_extend_canvas_places_original_exactly_and_fills_the_rest(fill):
    image = _smooth_photo(20, 30)
    canvas, new = extend_canvas(image, left=5, right=7, up=3, down=11, fill=fill)
    assert canvas.shape == (34, 42, 3) and canvas.dtype == np.uint8 and new.shape == (34, 42)
    assert np.array_equal(canvas[3:23, 5:35], image)
    assert not new[3:23, 5:35].any() and new.sum() == 34 * 42 - 20 * 30
    again, _ = extend_canvas(image, left=5, right=7, up=3, down=11, fill=fill)
    assert np.array_equal(canvas, again)  # deterministic, noise included
    if fill == "edge":
        assert np.array_equal(canvas[3:23, 0], image[:, 0]) and np.array_equal(canvas[0, 5:35], image[0])
        assert (canvas[0, 0] == image[0, 0]).all()  # corners take the corner pixel
    if fill == "gray":
        assert (canvas[new] == 128).all()
    if fill == "noise":
        assert canvas[new].astype(float).std() > 30
    if fill == "blur":  # the replicated border, smoothed: close to the edge colours, less grainy
        edge, _ = extend_canvas(image, left=5, right=7, up=3, down=11, fill="edge")
        assert np.abs(canvas[new].astype(int) - edge[new]).mean() < 10
        grain = lambda column: np.abs(np.diff(column.astype(int), axis=0)).mean()  # noqa: E731
        assert grain(canvas[3:23, 0]) < grain(edge[3:23, 0])


# --- the planner -------------------------------------------------------------------------------


def test_strip_sizes_are_even_and_bounded():
    assert strip_sizes(600, 256) == [200, 200, 200]
    assert strip_sizes(256, 256) == [256]
    assert strip_sizes(257, 256) == [129, 128]
    assert strip_sizes(1, 256) == [1]


def test_segments_cover_the_strip_with_bounded_overlapping_windows():
    assert segments(10, 50, 64, 16) == [(10, 10, 50)]
    pieces = segments(0, 1000, 320, 64)
    assert pieces[0][0] == pieces[0][1] == 0 and pieces[-1][2] == 1000
    for (c0, s0, e0), (c1, s1, e1) in zip(pieces, pieces[1:]):
        assert e0 == s1 and c1 == s1 - 64  # contiguous new parts, each sees 64 px of the previous one
    assert all(e - c <= 320 for c, _, e in pieces)


@pytest.mark.parametrize("h,w,ext,max_step,overlap,span", [
    (50, 60, dict(left=600), 256, 64, 64),
    (50, 60, dict(left=70, right=33, up=90, down=5), 32, 16, 64),
    (400, 30, dict(right=100, down=40), 64, 128, 96),  # long strips cut into pieces; overlap > known width
    (10, 10, dict(up=1, left=1), 256, 0, 64),
])
def test_plan_generates_every_new_pixel_once_from_final_pixels_only(h, w, ext, max_step, overlap, span):
    e = {d: ext.get(d, 0) for d in ("left", "right", "up", "down")}
    ch, cw = h + e["up"] + e["down"], w + e["left"] + e["right"]
    final = np.zeros((ch, cw), bool)
    final[e["up"]:e["up"] + h, e["left"]:e["left"] + w] = True
    windows = plan_windows(h, w, **e, max_step=max_step, overlap=overlap, span=span)
    for win in windows:
        t, l, b, r = win.box
        assert 0 <= t < b <= ch and 0 <= l < r <= cw
        m = win.mask()
        assert not final[t:b, l:r][m].any(), "a call regenerates final pixels"
        assert final[t:b, l:r][~m].all(), "a call sees pixels that are not final yet"
        grow, along = (r - l, b - t) if win.direction in ("left", "right") else (b - t, r - l)
        assert grow <= max_step + overlap and along <= max(span, max_step + overlap)
        final[t:b, l:r] |= m
    assert final.all(), "gap left in the new area (corners?)"


def test_600_px_with_max_step_256_is_three_passes_within_step_plus_overlap():
    windows = plan_windows(40, 50, left=600, max_step=256, overlap=64, span=64)
    assert [w.pass_index for w in windows] == [0, 1, 2]
    assert [w.new[1] for w in windows] == [400, 200, 0]
    assert all(w.shape[1] <= 256 + 64 for w in windows)


# --- the seam blend ----------------------------------------------------------------------------


def test_blend_new_keeps_known_pixels_and_fades_the_error_over_blur_new_pixels():
    crop = np.full((16, 10, 3), 100, np.uint8)
    result = np.full((16, 10, 3), 120, np.uint8)  # the model returns everything 20 too bright
    new = np.zeros((16, 10), bool)
    new[:, :6] = True
    hard = blend_new(crop, result, new, 0)
    assert (hard[:, :6] == 120).all() and (hard[:, 6:] == 100).all()
    soft = blend_new(crop, result, new, 4)
    assert (soft[:, 6:] == 100).all()  # old pixels never change
    assert (soft[:, :6] == 100).all()  # a uniform cast is removed everywhere
    result[:8] = 110  # rows 0-7 come back 10 too bright, rows 8-15 20: the mean cast is 15
    soft = blend_new(crop, result, new, 4)
    assert (soft[:, 6:] == 100).all()
    assert soft[0, 5, 0] == 100 and soft[15, 5, 0] == 100  # next to the border: that pixel's own error
    assert soft[0, 0, 0] == 110 - 15 and soft[15, 0, 0] == 120 - 15  # beyond blur: the window's mean error
    assert soft[0, :6, 0].tolist() == [95, 95, 96, 98, 99, 100]


# --- runner with the deterministic engine ------------------------------------------------------


@pytest.mark.parametrize("ext", [dict(left=40), dict(right=40), dict(up=40), dict(down=40),
                                 dict(left=9, up=70), dict(right=50, down=3), dict(left=5, right=6, up=7, down=8)])
def test_output_size_and_exact_original_for_every_direction(ext):
    image = _smooth_photo(30, 44)
    cfg = _cfg(**ext, rows=2)
    job = outpaint_array(CastEngine(), cfg, image, [5, 6], progress=False)
    e = cfg.extension()
    for result in job.results:
        assert result.shape == (30 + e["up"] + e["down"], 44 + e["left"] + e["right"], 3)
        assert np.array_equal(result[e["up"]:e["up"] + 30, e["left"]:e["left"] + 44], image)
        assert not np.array_equal(result[job.mask], job.image[job.mask])  # the new area was generated
    assert job.offset == (e["left"], e["up"]) and np.array_equal(job.original, image)


def test_rows_continue_their_own_seed_sequence_alone_or_batched():
    image = _smooth_photo(24, 24)
    cfg = _cfg(left=70, up=20)
    engine = CastEngine()
    batched = outpaint_array(engine, cfg, image, [7, 8, 9], progress=False)
    first_call = engine.calls[0]
    assert first_call[2] == [7, 8, 9]  # the first call: all rows share the window, one batched call
    assert [c.batched_rows for c in batched.calls] == [3] * len(batched.calls)
    assert len(engine.calls) == len(batched.calls)  # diverged rows too: one call, a crop per row
    alone = outpaint_array(CastEngine(), cfg, image, [8], progress=False)
    assert np.array_equal(batched.results[1], alone.results[0])
    assert not np.array_equal(batched.results[0], batched.results[1])
    assert call_seed(8, 0) == 8 and call_seed(8, 1) == call_seed(8, 1) != call_seed(9, 1)


def _border_steps(result, windows):
    """Mean absolute step across every strip border (old|new and strip|strip), per border."""
    steps = []
    for win in windows:
        t, l, b, r = win.new
        if win.direction == "left":
            steps.append(np.abs(result[t:b, r].astype(int) - result[t:b, r - 1]).mean())
        elif win.direction == "right":
            steps.append(np.abs(result[t:b, l].astype(int) - result[t:b, l - 1]).mean())
        elif win.direction == "up":
            steps.append(np.abs(result[b, l:r].astype(int) - result[b - 1, l:r]).mean())
        else:
            steps.append(np.abs(result[t, l:r].astype(int) - result[t - 1, l:r]).mean())
    return steps


def test_strips_meet_without_visible_seams_and_blur_is_what_removes_them():
    h, w = 48, 64
    image = _smooth_photo(h, w)
    own = max(np.abs(np.diff(image.astype(int), axis=1)).mean(), np.abs(np.diff(image.astype(int), axis=0)).mean())
    ext = dict(left=90, up=60)
    job = outpaint_array(CastEngine(), _cfg(**ext, seam_blend=8), image, [1], progress=False)
    windows = [c.window for c in job.calls]
    assert len({w.pass_index for w in windows}) == 5  # 3 strips left, 2 up
    steps = _border_steps(job.results[0], windows)
    assert max(steps) <= own, (steps, own)
    hard = outpaint_array(CastEngine(), _cfg(**ext, seam_blend=0), image, [1], progress=False)
    assert max(_border_steps(hard.results[0], windows)) > 2 * own  # the test can fail


def test_a_colour_cast_does_not_pile_up_strip_after_strip():
    image = _smooth_photo(48, 64)
    cfg = _cfg(left=90, seam_blend=8)  # three strips

    class Faithful(CastEngine):
        cast = np.zeros(3, int)

    outer = np.s_[:, :10]  # the last strip, 60+ px from the original
    cast = outpaint_array(CastEngine(), cfg, image, [1], progress=False).results[0][outer].astype(float).mean((0, 1))
    faithful = outpaint_array(Faithful(), cfg, image, [1], progress=False).results[0][outer].astype(float).mean((0, 1))
    raw = outpaint_array(CastEngine(), _cfg(left=90, seam_blend=0), image, [1], progress=False).results[0][outer]
    assert np.abs(cast - faithful).max() < 2
    assert np.abs(raw.astype(float).mean((0, 1)) - faithful - 3 * CastEngine.cast).max() < 2  # uncorrected: 3 casts


# --- config errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("kw,message", [
    (dict(left=0), "--left 0: give a positive number of pixels"),
    (dict(up=-5), "--up -5: give a positive number of pixels"),
    (dict(), "no direction given"),
    (dict(left=10, overlap=-1), "--overlap -1 must be >= 0"),
    (dict(left=10, max_step=0), "--max_step 0 must be at least 1"),
    (dict(left=10, fill="mirror"), "--fill 'mirror' must be one of"),
])
def test_bad_config_raises_one_line(kw, message):
    from inpaint_kit.errors import InpaintKitError

    with pytest.raises(InpaintKitError, match=message.replace("(", r"\(")) as e:
        OutpaintConfig(**kw).validate()
    assert "\n" not in str(e.value)


def test_canvas_limit():
    from inpaint_kit.errors import InpaintKitError

    assert OutpaintConfig(left=100, max_canvas=200).validate().check_canvas(50, 100) == (50, 200)
    with pytest.raises(InpaintKitError, match="extending 100x50 to 201x50 exceeds the canvas limit"):
        OutpaintConfig(left=101, max_canvas=200).validate().check_canvas(50, 100)
    with pytest.raises(InpaintKitError, match="exceeds the canvas limit"):
        OutpaintConfig(down=1000, max_megapixels=0.1).validate().check_canvas(50, 100)


# --- end to end: CLI on the tiny SD pipeline ---------------------------------------------------


@pytest.fixture
def photo_file(tmp_path):
    path = tmp_path / "mural.png"
    Image.fromarray(_smooth_photo(37, 53)).save(path)
    return path


@pytest.mark.parametrize("sides", [["--left", "30"], ["--right", "30"], ["--up", "20"], ["--down", "20"],
                                   ["--direction", "left,up", "--pixels", "24"],
                                   ["--left", "5", "--right", "6", "--up", "7", "--down", "8"]])
def test_cli_sizes_exact_original_and_collage_on_tiny_sd(tmp_path, photo_file, tiny_model_dir, sides):
    out = tmp_path / "o.png"
    assert main(["outpaint", "--model", str(tiny_model_dir), "--image", str(photo_file), "--output", str(out),
                 *sides, "--rows", "2", "--seed", "5", "--collage_spacing_h", "2", "--collage_spacing_v", "3",
                 "--save_rows", *FAST]) == 0
    meta = read_metadata(out)
    left, up = meta["offset"]
    cw, ch = 53 + (meta["left"] or 0) + (meta["right"] or 0), 37 + (meta["up"] or 0) + (meta["down"] or 0)
    original = load_image(photo_file)
    sheet = load_image(out)
    assert sheet.shape == (2 * ch + 3, 3 * cw + 4, 3)
    new = np.ones((ch, cw), bool)
    new[up:up + 37, left:left + 53] = False
    for row, seed in enumerate([5, 6]):
        top = row * (ch + 3)
        first, preview, result = (sheet[top:top + ch, c * (cw + 2):c * (cw + 2) + cw] for c in range(3))
        for tile in (first, result):
            assert np.array_equal(tile[up:up + 37, left:left + 53], original)
        assert (preview[new] == 255).all() and np.array_equal(preview[~new], first[~new])
        assert not np.array_equal(result[new], first[new])
        assert np.array_equal(load_image(tmp_path / f"o_row{row}_seed{seed}.png"), result)
    assert meta["seeds"] == [5, 6] and meta["original_size"] == [53, 37] and meta["fill"] == "edge"


def test_default_output_name_does_not_collide_with_inference(tmp_path, photo_file, tiny_model_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "mural_collage.png").write_bytes(b"an infer result")
    assert main(["outpaint", "--model", str(tiny_model_dir), "--image", str(photo_file), "--down", "8",
                 "--rows", "1", "--seed", "1", "--save_rows", *FAST]) == 0
    assert load_image(tmp_path / "outputs" / "mural_outpaint_down8.png").shape == (45, 3 * 53 + 40, 3)
    assert (tmp_path / "outputs" / "mural_outpaint_down8_row0_seed1.png").is_file()
    assert (tmp_path / "outputs" / "mural_collage.png").read_bytes() == b"an infer result"


def test_cli_600_px_with_max_step_256_runs_three_passes_on_tiny_sd(tmp_path, photo_file, tiny_model_dir):
    out = tmp_path / "wide.png"
    assert main(["outpaint", "--model", str(tiny_model_dir), "--image", str(photo_file), "--output", str(out),
                 "--left", "600", "--max_step", "256", "--overlap", "64", "--rows", "1", "--seed", "2", *FAST]) == 0
    meta = read_metadata(out)
    assert meta["passes"] == 3 and len(meta["calls"]) == 3
    for top, left, bottom, right, work_h, work_w in meta["calls"]:
        assert right - left <= 256 + 64 and max(work_h, work_w) <= 64
    assert load_image(out).shape == (37, 3 * 653 + 40, 3)


def test_tiny_sd_row_is_the_same_alone_or_batched(tiny_model_dir):
    engine = OutpaintConfig(model=str(tiny_model_dir)).load_engine()
    cfg = OutpaintConfig(model="x", steps=2, size=64, right=40, max_step=24, overlap=16).validate()
    image = _smooth_photo(30, 30)
    batched = outpaint_array(engine, cfg, image, [10, 11], progress=False).results
    alone = outpaint_array(engine, cfg, image, [11], progress=False).results[0]
    assert np.abs(batched[1].astype(int) - alone.astype(int)).max() <= 2
    assert not np.array_equal(batched[0], batched[1])


def test_batch_tree_resume_manifest_and_bad_items(tmp_path, tiny_model_dir, capsys):
    imgs, out = tmp_path / "imgs", tmp_path / "out"
    (imgs / "room1").mkdir(parents=True)
    Image.fromarray(_smooth_photo(32, 40)).save(imgs / "a.png")
    Image.fromarray(_smooth_photo(24, 24, 1)).save(imgs / "room1" / "b.jpg", quality=95)
    (imgs / "room1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    args = ["outpaint", "--model", str(tiny_model_dir), "--batch_imgs_dir", str(imgs), "--output_dir", str(out),
            "--right", "16", "--down", "8", "--rows", "2", "--seed", "7", *FAST]
    assert main(args) == 1  # the bad item is reported, the others are written
    err = capsys.readouterr().err
    assert "2 written, 0 skipped (already done), 1 failed" in err and "broken.png: not a readable image" in err
    assert load_image(out / "a_outpaint.png").shape == (2 * 40 + 20, 3 * 56 + 40, 3)
    assert load_image(out / "room1" / "b_outpaint.png").shape == (2 * 32 + 20, 3 * 40 + 40, 3)
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(x["status"] for x in lines) == ["failed", "ok", "ok"]
    assert all(x["seeds"] == [7, 8] and x["right"] == 16 for x in lines if x["status"] == "ok")

    before = (out / "a_outpaint.png").stat().st_mtime_ns
    assert main(args) == 1
    assert "0 written, 2 skipped" in capsys.readouterr().err
    assert (out / "a_outpaint.png").stat().st_mtime_ns == before
    assert main([*args, "--overwrite"]) == 1
    assert "2 written, 0 skipped" in capsys.readouterr().err
    assert not list(out.rglob(".*.tmp"))


# --- end to end: the from-scratch DDPM engine --------------------------------------------------

BUILTIN_READY = (ROOT / "inpaint_kit" / "assets" / "builtin" / "model.safetensors").is_file()


@pytest.fixture(scope="module")
def tiny_ddpm_dir(tmp_path_factory):
    """A random-weight DDPM of the ``tiny`` preset with 32-pixel windows, saved like ``train-ddpm`` does."""
    import torch

    from inpaint_kit.ddpm.unet import PRESETS, InpaintUNet, ModelConfig, save_model

    torch.manual_seed(0)
    net = InpaintUNet(ModelConfig(resolution=32, **PRESETS["tiny"]))
    return save_model(tmp_path_factory.mktemp("ddpm") / "tiny", net)


@pytest.mark.parametrize("model", ["tiny_ddpm", pytest.param("builtin", marks=pytest.mark.skipif(
    not BUILTIN_READY, reason="the builtin model's weights are not exported yet"))])
def test_cli_ddpm_extends_all_sides_with_exact_original_and_reproducible_rows(tmp_path, photo_file, request, model):
    model_arg = str(request.getfixturevalue("tiny_ddpm_dir")) if model == "tiny_ddpm" else "builtin"
    common = ["outpaint", "--model", model_arg, "--image", str(photo_file), "--left", "70", "--right", "9",
              "--up", "12", "--down", "40", "--max_step", "32", "--overlap", "16", "--steps", "3", "--size", "64",
              "--collage_spacing_h", "0", "--collage_spacing_v", "0"]
    assert main([*common, "--output", str(tmp_path / "two.png"), "--rows", "2", "--seed", "4"]) == 0
    assert main([*common, "--output", str(tmp_path / "one.png"), "--rows", "1", "--seed", "5"]) == 0
    cw, ch = 53 + 79, 37 + 52
    two, one = load_image(tmp_path / "two.png"), load_image(tmp_path / "one.png")
    assert two.shape == (2 * ch, 3 * cw, 3) and one.shape == (ch, 3 * cw, 3)
    original = load_image(photo_file)
    for result in (two[:ch, 2 * cw:], two[ch:, 2 * cw:], one[:, 2 * cw:]):
        assert np.array_equal(result[12:12 + 37, 70:70 + 53], original)
    assert np.array_equal(two[ch:], one)  # row 1 of seed 4 is seed 5 alone
    meta = read_metadata(tmp_path / "two.png")
    assert meta["passes"] == 3 + 1 + 1 + 2 and meta["engine"] == "ddpm"


@pytest.mark.parametrize("extra,message", [
    ([], "no direction given"),
    (["--left", "0"], "--left 0: give a positive number of pixels"),
    (["--down", "-3"], "--down -3: give a positive number of pixels"),
    (["--direction", "left"], "--direction and --pixels go together"),
    (["--direction", "left,sideways", "--pixels", "9"], "'sideways' is not one of"),
    (["--left", "4", "--direction", "left", "--pixels", "9"], "--left given twice"),
    (["--right", "9000"], "exceeds the canvas limit (8192 px per side"),
    (["--right", "100", "--max_canvas", "120"], "extending 53x37 to 153x37 exceeds the canvas limit"),
])
def test_cli_bad_input_is_one_line_before_any_model_loads(tmp_path, photo_file, capsys, extra, message):
    out = tmp_path / "o.png"
    code = main(["outpaint", "--model", str(tmp_path / "no-such-model"), "--image", str(photo_file),
                 "--output", str(out), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_cli_unreadable_image_is_one_line(tmp_path, capsys):
    (tmp_path / "text.png").write_text("hello")
    for bad in ("missing.png", "text.png"):
        code = main(["outpaint", "--model", str(tmp_path / "no-such-model"), "--image", str(tmp_path / bad),
                     "--left", "8", "--output", str(tmp_path / "o.png")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("error: ") and bad in err and len(err.splitlines()) == 1


def test_cli_needs_exactly_one_input(tmp_path, photo_file, capsys):
    assert main(["outpaint", "--left", "8"]) == 2
    assert "give either --image or --batch_imgs_dir" in capsys.readouterr().err
    assert main(["outpaint", "--left", "8", "--image", str(photo_file), "--batch_imgs_dir", str(tmp_path)]) == 2
    capsys.readouterr()
    assert main(["outpaint", "--left", "8", "--image", str(photo_file), "--shard", "0/2"]) == 2  # not ignored
    assert "--shard splits a batch" in capsys.readouterr().err


@pytest.mark.parametrize("cmd", [[sys.executable, str(ROOT / "scripts" / "outpaint.py"), "--help"],
                                 [sys.executable, "-m", "inpaint_kit", "outpaint", "--help"]])
def test_help_of_both_entry_points(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for flag in ("--left", "--direction", "--pixels", "--fill", "--overlap", "--max_step", "--seam_blend",
                 "--batch_imgs_dir", "--max_canvas", "--lora", "--scheduler"):
        assert flag in out.stdout
