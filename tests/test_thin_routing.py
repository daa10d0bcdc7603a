"""The right filler per damage kind: thin components to the thin filler (or OpenCV, or the builtin), wide
ones to --model, recorded per component; --thin_width 0 is the model path of before; OpenCV engines."""

import numpy as np
import pytest
import torch

from inpaint_kit.cli import main
from inpaint_kit.engine import load_engine
from inpaint_kit.geometry import compose_values, crop_to_work, plan_area
from inpaint_kit.images import read_metadata, save_png
from inpaint_kit.inpaint import InferConfig, inpaint_array
from inpaint_kit.seams import fix_seams
from inpaint_kit.thinfill import ThinFillConfig, build_net, fill_thin, save_thinfill


def photo(h=120, w=160, seed=0):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([70 + 100 * x / w, 60 + 120 * y / h, 150 + 60 * np.sin(x / 9 + y / 13)], -1)
    return np.clip(base + np.random.default_rng(seed).normal(0, 5, (h, w, 3)), 0, 255).astype(np.uint8)


def crack_and_hole(h=120, w=160):
    mask = np.zeros((h, w), bool)
    mask[20:23, 10:150] = True  # a 3-px crack
    mask[60:100, 90:130] = True  # a 40-px hole
    return mask


@pytest.fixture(scope="module")
def tiny_ddpm(tmp_path_factory):
    from inpaint_kit.ddpm.unet import PRESETS, InpaintUNet, ModelConfig, save_model

    torch.manual_seed(0)
    return str(save_model(tmp_path_factory.mktemp("ddpm") / "tiny", InpaintUNet(ModelConfig(resolution=16, **PRESETS["tiny"]))))


@pytest.fixture(scope="module")
def engine(tiny_ddpm):
    from inpaint_kit.engine.options import DDPMOptions

    return load_engine(tiny_ddpm, options=DDPMOptions(init="noise"))


@pytest.fixture(scope="module")
def tiny_thinfill(tmp_path_factory):
    """A random-weight thin filler (its last layer randomised too, so that it changes the fill)."""
    torch.manual_seed(1)
    net = build_net(ThinFillConfig(channels=(8, 16)))
    torch.nn.init.normal_(net.out.weight, std=0.05)
    return str(save_thinfill(tmp_path_factory.mktemp("thinfill") / "tiny", net))


def run(engine, model, image, mask, seeds, **kw):
    cfg = InferConfig(model=model, **{"size": 160, **kw}, steps=2, rows=len(seeds), blend="none").validate()
    return inpaint_array(engine, cfg, image, mask, seeds, progress=False)


@pytest.mark.parametrize("thin_fill", ["ns", "telea", "auto"])
def test_a_thin_crack_and_a_large_hole_go_to_different_fillers_and_are_recorded(engine, tiny_ddpm, tiny_thinfill,
                                                                                 thin_fill):
    image, mask = photo(), crack_and_hole()
    crack = np.zeros_like(mask)
    crack[20:23] = mask[20:23]
    kw = {"thin_model": tiny_thinfill} if thin_fill == "auto" else {}
    seen = []
    fill = engine.fill
    try:
        engine.fill = lambda items, *a, **k: seen.extend(items) or fill(items, *a, **k)
        job = run(engine, tiny_ddpm, image, mask, [3, 4], thin_fill=thin_fill, **kw)
    finally:
        del engine.fill
    from inpaint_kit.thinfill import load_thinfill

    net = load_thinfill(tiny_thinfill) if thin_fill == "auto" else None
    expected = fill_thin(image, crack, mask, "net" if thin_fill == "auto" else thin_fill, net)
    for result in job.results:
        assert np.array_equal(result[~mask], image[~mask])
        assert np.array_equal(result[crack], expected[crack])  # the crack: the thin filler's pixels
    hole = mask & ~crack
    assert not np.array_equal(job.results[0][hole], job.results[1][hole])  # the hole: the model, per seed
    assert not np.array_equal(job.results[0][hole], expected[hole])
    record = job.damage
    assert record["fillers"] == ["model", "thinfill" if thin_fill == "auto" else thin_fill]
    by_box = {tuple(c[:4]): c for c in record["components"]}
    assert by_box[(20, 10, 23, 150)][4:] == [3.0, 1] and by_box[(60, 90, 100, 130)][5] == 0
    assert seen and all(it.mask.sum() == 40 * 40 for it in seen)  # the model was given the hole only


def test_thin_width_0_gives_the_model_path_of_before(engine, tiny_ddpm):
    """--thin_width 0: every component to --model, value for value the pipeline without routing (float fills
    composed at the mask's pixels, quantised once); the seams, when asked for, correct that fill in float."""
    from inpaint_kit.engine import Canvas, call_seed
    from inpaint_kit.fill import Fill

    image, mask = photo(), crack_and_hole()
    ys, xs = np.nonzero(mask)
    for blend in ("none", "laplacian"):
        cfg = InferConfig(model=tiny_ddpm, size=160, steps=2, rows=2, thin_width=0, blend=blend).validate()
        job = inpaint_array(engine, cfg, image, mask, [5, 6], progress=False)
        # the pipeline before routing existed: plan, crop, fill, compose the mask's pixels (float), seams
        _, regions = plan_area(mask, cfg.area, cfg.size, cfg.padding, engine.multiple, cfg.large_windows)
        for row, seed in enumerate([5, 6]):
            out = engine.fill([Canvas(*crop_to_work(image, mask, r), call_seed(seed, k)) for k, r in enumerate(regions)],
                              cfg.sampling(), progress=False)
            values = compose_values(image, ys, xs, regions, out)
            if blend != "none":
                full = image.astype(np.float32) / 255
                full[ys, xs] = values
                values = fix_seams(image, full, mask, blend, "off")[ys, xs]
            assert job.fills[row].values.dtype == np.float32 and np.array_equal(job.fills[row].values, values)
            assert np.array_equal(job.results[row], Fill(ys, xs, values).on_model(image))
        assert job.damage["fillers"] == ["model"] and all(c[5] == 0 for c in job.damage["components"])
    # --thin_fill model is the same path
    same = inpaint_array(engine, InferConfig(model=tiny_ddpm, size=160, steps=2, rows=2, thin_fill="model").validate(),
                         image, mask, [5, 6], progress=False)
    assert all(np.array_equal(a.values, b.values) for a, b in zip(same.fills, job.fills))


def test_seams_correct_the_models_fill_and_leave_the_thin_fillers(engine, tiny_ddpm):
    """--blend corrects the sampler's fill of the hole; the thin filler's crack is kept as it fills it (a seam
    correction costs a fidelity-trained fill PSNR)."""
    image, mask = photo(), crack_and_hole()
    crack = np.zeros_like(mask)
    crack[20:23] = mask[20:23]
    hole = mask & ~crack
    kw = dict(model=tiny_ddpm, size=160, steps=2, rows=1, thin_fill="ns")
    plain, seamed = (inpaint_array(engine, InferConfig(**kw, blend=b).validate(), image, mask, [3], progress=False)
                     for b in ("none", "laplacian"))
    assert np.array_equal(seamed.results[0][crack], plain.results[0][crack])
    assert np.array_equal(seamed.results[0][~mask], image[~mask])
    assert not np.array_equal(seamed.results[0][hole], plain.results[0][hole])


def test_thin_damage_alone_never_calls_the_model(engine, tiny_ddpm):
    image = photo()
    mask = np.zeros((120, 160), bool)
    mask[40:42, 5:155] = True
    calls = []
    fill = engine.fill
    try:
        engine.fill = lambda *a, **k: calls.append(1) or fill(*a, **k)
        job = run(engine, tiny_ddpm, image, mask, [1, 2], thin_fill="ns")
    finally:
        del engine.fill
    assert not calls and job.regions == [] and job.work_hw is None
    assert np.array_equal(job.results[0], job.results[1])  # deterministic: every row the same


def test_thin_fill_builtin_rows_are_the_same_alone_or_batched(engine, tiny_ddpm):
    image, mask = photo(96, 128), crack_and_hole(96, 128)
    mask[60:] = False  # the crack only
    both = run(engine, tiny_ddpm, image, mask, [7, 8], thin_fill="builtin", size=128)
    alone = run(engine, tiny_ddpm, image, mask, [8], thin_fill="builtin", size=128)
    assert np.array_equal(both.results[1], alone.results[0])
    assert not np.array_equal(both.results[0], both.results[1])  # the builtin samples: rows differ
    assert both.damage["fillers"] == ["model", "builtin"]


# --- OpenCV engines ---------------------------------------------------------------------------

def test_opencv_engines_through_the_cli(tmp_path, capsys):
    image, mask = photo(), crack_and_hole()
    save_png(tmp_path / "a.png", image)
    from PIL import Image

    Image.fromarray(np.where(mask, 0, 255).astype(np.uint8)).save(tmp_path / "a_mask.png")
    out = tmp_path / "out.png"
    args = ["infer", "--model", "ns", "--image", str(tmp_path / "a.png"), "--mask", str(tmp_path / "a_mask.png"),
            "--output", str(out), "--rows", "2", "--seed", "3", "--save_rows", "--thin_width", "0", "--blend", "none"]
    assert main(args) == 0
    meta = read_metadata(out)
    assert meta["engine"] == "opencv" and meta["model"] == "ns" and "guidance" not in meta and "steps" not in meta
    rows = sorted(tmp_path.glob("out_row*.png"))
    from inpaint_kit.images import load_image
    from inpaint_kit.classical import cv2_inpaint

    expected = cv2_inpaint(image, mask, "ns")
    assert all(np.array_equal(load_image(r), expected) for r in rows)  # the whole fill is OpenCV's
    capsys.readouterr()
    assert main(args[:-4] + ["--overwrite", "--sampler", "ddim"]) == 2
    err = capsys.readouterr().err
    assert "--sampler ddim does not apply to --model ns (OpenCV's classical fill)" in err
    assert len(err.strip().splitlines()) == 1


def test_bad_thin_values_are_one_line_errors(tmp_path):
    for kw, words in (({"thin_width": -1}, "--thin_width -1 must be >= 0"),
                      ({"thin_fill": "magic"}, "--thin_fill 'magic' must be one of auto, model, telea, ns, builtin"),
                      ({"thin_fill": "ns", "thin_model": str(tmp_path)}, "--thin_model applies only with --thin_fill auto"),
                      ({"thin_model": str(tmp_path)}, "not a thin-filler model folder")):
        with pytest.raises(Exception) as e:
            InferConfig(**kw).validate()
        assert words in str(e.value) and "\n" not in str(e.value)
