"""The DDPM engine on a tiny random network: any size, exact known pixels, seeds per row, bad models."""

import json

import numpy as np
import pytest
import torch

from inpaint_kit.engine.options import DDPMOptions
from inpaint_kit.ddpm import create_advanced_mask, load_image, load_mask, save_tensor_as_image
from inpaint_kit.engine.ddpm import blend_weights, load_ddpm_engine, plan_windows
from inpaint_kit.ddpm.unet import PRESETS, InpaintUNet, ModelConfig, save_model
from inpaint_kit.engine import Sampling, is_ddpm_model, load_engine
from inpaint_kit.errors import InpaintKitError
from inpaint_kit.images import load_image as load_rgb
from inpaint_kit.images import save_png

FAST = Sampling(steps=3)


@pytest.fixture(scope="module")
def tiny_ddpm(tmp_path_factory):
    """A random-weight tiny DDPM folder with 16-pixel windows."""
    torch.manual_seed(0)
    net = InpaintUNet(ModelConfig(resolution=16, **PRESETS["tiny"]))
    return save_model(tmp_path_factory.mktemp("ddpm") / "tiny", net)


def photo(h, w, seed=0):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def test_folder_is_recognised_and_described(tiny_ddpm):
    assert is_ddpm_model(str(tiny_ddpm))
    eng = load_engine(str(tiny_ddpm), options=DDPMOptions(sampler="repaint", jump_length=2, jump_n_sample=2))
    d = eng.describe()
    assert d["engine"] == "ddpm" and d["sampler"] == "repaint" and d["window"] == 16 and d["jump_length"] == 2
    assert eng.multiple == 2


@pytest.mark.parametrize("hw", [(10, 12), (16, 16), (37, 70)])
def test_any_size_keeps_known_pixels_exactly(tiny_ddpm, hw):
    eng = load_ddpm_engine(str(tiny_ddpm))
    img = photo(*hw)
    mask = create_advanced_mask("irregular", *hw, np.random.default_rng(1))
    (out,) = eng.inpaint(img, mask, [3], FAST, progress=False)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out[~mask], img[~mask])
    assert (out[mask] != img[mask]).any()


def test_rows_are_seeded_and_independent_of_batching(tiny_ddpm):
    eng = load_ddpm_engine(str(tiny_ddpm))
    img, mask = photo(30, 40), create_advanced_mask("thick", 30, 40, np.random.default_rng(2))
    a, b = eng.inpaint(img, mask, [11, 12], FAST, progress=False)
    (b_alone,) = eng.inpaint(img, mask, [12], FAST, progress=False)
    assert np.array_equal(b, b_alone)
    assert not np.array_equal(a, b)
    assert eng.inpaint(img, np.zeros((30, 40), bool), [1], FAST, progress=False)[0].tobytes() == img.tobytes()


def test_windows_cover_the_mask_and_skip_empty_ones():
    mask = np.zeros((100, 100), bool)
    mask[10, 5:95] = True  # a long horizontal crack
    mask[90, 90] = True
    wins = plan_windows(mask, 32, 8, margin=8)
    covered = np.zeros_like(mask)
    for v in wins:
        window = covered[v.top : v.top + 32, v.left : v.left + 32]
        assert window.shape == (32, 32)
        window[...] = True
        assert mask[v.top : v.top + 32, v.left : v.left + 32].any()
    assert covered[mask].all()
    assert len(wins) < 16  # far fewer than tiling the whole canvas
    w = blend_weights(32, 8)
    assert w.min() > 0 and w[16, 16] == 1 and w[0, 0] < w[4, 4] < w[8, 8]


def test_intermediates_and_soften(tiny_ddpm, tmp_path):
    eng = load_ddpm_engine(str(tiny_ddpm), save_intermediates=str(tmp_path / "steps"), intermediate_every=1,
                           mask_soften=2.0)
    img = photo(20, 20)
    mask = np.zeros((20, 20), bool)
    mask[8:12, 8:12] = True
    (out,) = eng.inpaint(img, mask, [4], FAST, progress=False)
    files = sorted(p.name for p in (tmp_path / "steps").iterdir())
    assert files == [f"seed4_step{i:04d}of0003.png" for i in (1, 2, 3)]
    assert np.array_equal(out[:4], img[:4])  # far from the mask: untouched
    assert (out[7, 8:12] != img[7, 8:12]).any()  # the soft band just outside the mask is blended


def test_seed_api_round_trip(tmp_path):
    img = photo(9, 11)
    save_png(tmp_path / "a.png", img)
    t = load_image(tmp_path / "a.png")
    assert t.shape == (1, 3, 9, 11) and t.min() >= -1 and t.max() <= 1
    save_tensor_as_image(t, tmp_path / "b.png")
    assert np.array_equal(load_rgb(tmp_path / "b.png"), img)
    grey = np.full((9, 11, 3), 255, np.uint8)
    grey[3:6, 3:6] = 0  # black = repaint
    save_png(tmp_path / "m.png", grey)
    m = load_mask(tmp_path / "m.png")
    assert m.shape == (1, 1, 9, 11) and m.sum() == 9
    soft = load_mask(tmp_path / "m.png", soften=1.5)
    assert soft[0, 0, 4, 4] == 1 and 0 < soft[0, 0, 4, 2] < 1 and soft[0, 0, 0, 10] < 0.01


def test_bad_models_are_one_line_errors(tiny_ddpm, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InpaintKitError, match="not a DDPM model folder"):
        load_ddpm_engine(str(tmp_path / "empty"))
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    with pytest.raises(InpaintKitError, match="not an inpaint-kit DDPM config"):
        load_ddpm_engine(str(other))
    # weights from the tiny network under a config that asks for a different network
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.safetensors").write_bytes((tiny_ddpm / "model.safetensors").read_bytes())
    cfg = json.loads((tiny_ddpm / "config.json").read_text())
    cfg["block_out_channels"] = [16, 48]
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InpaintKitError, match="weights do not match config.json") as e:
        load_ddpm_engine(str(bad))
    assert "\n" not in str(e.value)
    with pytest.raises(InpaintKitError, match="--sampler 'euler' unknown"):
        load_ddpm_engine(str(tiny_ddpm), sampler="euler")


def test_unconditional_network_inpaints_through_reinjection(tmp_path):
    torch.manual_seed(1)
    net = InpaintUNet(ModelConfig(conditioning="unconditional", resolution=16, **PRESETS["tiny"]))
    assert net.unet.config.in_channels == 3
    folder = save_model(tmp_path / "uncond", net)
    eng = load_ddpm_engine(str(folder), sampler="ddpm")
    img, mask = photo(16, 16), create_advanced_mask("center", 16, 16, np.random.default_rng(0))
    (out,) = eng.inpaint(img, mask, [0], FAST, progress=False)
    assert np.array_equal(out[~mask], img[~mask]) and (out[mask] != img[mask]).any()


def test_large_holes_get_a_coarse_pass_without_leaking_the_hole(tiny_ddpm):
    eng = load_ddpm_engine(str(tiny_ddpm))
    assert eng.describe()["coarse_factor_max"] == 4.0
    img = photo(48, 48)
    mask = np.zeros((48, 48), bool)
    mask[8:40, 8:40] = True
    (a,) = eng.inpaint(img, mask, [5], FAST, progress=False)
    other = img.copy()
    other[mask] = 0  # different content under the hole must not change the result
    (b,) = eng.inpaint(other, mask, [5], FAST, progress=False)
    assert np.array_equal(a[mask], b[mask])
    flat = load_ddpm_engine(str(tiny_ddpm), coarse_factor_max=1.0)
    assert "coarse_factor_max" not in flat.describe()
    assert not np.array_equal(flat.inpaint(img, mask, [5], FAST, progress=False)[0], a)
    (full,) = eng.inpaint(img, np.ones((48, 48), bool), [5], FAST, progress=False)  # nothing known at all
    assert full.shape == img.shape


def test_classical_init_starts_from_the_fill_and_keeps_known_pixels(tiny_ddpm):
    from inpaint_kit.classical import cv2_inpaint

    img = photo(40, 48, seed=3)
    mask = create_advanced_mask("thick", 40, 48, np.random.default_rng(4))
    telea = cv2_inpaint(img, mask, "telea")
    low = load_ddpm_engine(str(tiny_ddpm), init="telea", strength=0.05)
    assert low.describe()["init"] == "telea" and low.describe()["strength"] == 0.05
    assert "coarse_factor_max" not in low.describe()  # the classical fill replaces the coarse pass
    a, b = low.inpaint(img, mask, [7, 8], FAST, progress=False)
    assert np.array_equal(a[~mask], img[~mask]) and np.array_equal(b[~mask], img[~mask])
    assert np.array_equal(a, low.inpaint(img, mask, [7], FAST, progress=False)[0])  # seeded per row
    assert not np.array_equal(a[mask], b[mask])
    (high,) = load_ddpm_engine(str(tiny_ddpm), init="telea", strength=1.0).inpaint(img, mask, [7], FAST, progress=False)
    dist = lambda x: np.abs(x[mask].astype(int) - telea[mask].astype(int)).mean()  # noqa: E731
    assert dist(a) < 0.5 * dist(high), (dist(a), dist(high))  # low strength stays near the fill
    (full,) = low.inpaint(img, np.ones((40, 48), bool), [7], FAST, progress=False)  # nothing known: from noise
    assert full.shape == img.shape


def test_sampling_defaults_come_from_the_model_config(tiny_ddpm, tmp_path):
    from inpaint_kit.ddpm.unet import load_model

    net = load_model(tiny_ddpm)
    net.config.extra = {"inference": {"sampler": "ddim", "init": "ns", "strength": 0.4}}
    folder = save_model(tmp_path / "with_defaults", net)
    d = load_ddpm_engine(str(folder)).describe()
    assert (d["sampler"], d["init"], d["strength"]) == ("ddim", "ns", 0.4)
    d = load_ddpm_engine(str(folder), sampler="ddpm", init="noise").describe()  # explicit options win
    assert d["sampler"] == "ddpm" and "init" not in d
    assert load_ddpm_engine(str(folder), sampler="repaint").describe()["sampler"] == "repaint"  # from noise
    d = load_ddpm_engine(str(tiny_ddpm)).describe()  # a model naming no defaults: plain ddpm from noise
    assert d["sampler"] == "ddpm" and "init" not in d
    net.config.extra = {"inference": {"init": "magic"}}
    save_model(tmp_path / "bad_defaults", net)
    with pytest.raises(InpaintKitError, match="bad extra.inference"):
        load_ddpm_engine(str(tmp_path / "bad_defaults"))


@pytest.mark.parametrize("options, message", [
    ({"init": "blur"}, "--init 'blur' unknown"),
    ({"init": "telea", "strength": 0.0}, r"--strength must be in \(0, 1\]"),
    ({"init": "telea", "strength": 1.5}, r"--strength must be in \(0, 1\]"),
    ({"init": "telea", "sampler": "repaint"}, "RePaint always starts from noise"),
])
def test_bad_init_options_are_one_line_errors(tiny_ddpm, options, message):
    with pytest.raises(InpaintKitError, match=message):
        load_ddpm_engine(str(tiny_ddpm), **options)
