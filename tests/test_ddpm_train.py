"""Training the from-scratch DDPM: the loss falls, runs save/resume exactly, bad input is one line."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from inpaint_kit.cli import main
from inpaint_kit.ddpm.schedule import make_schedule
from inpaint_kit.ddpm.train import CHECKPOINT_NAME, TrainConfig, WindowSampler, loss_fn, train
from inpaint_kit.ddpm.unet import PRESETS, InpaintUNet, ModelConfig, load_model, read_config
from inpaint_kit.errors import InpaintKitError


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """Three smooth synthetic 40x48 photos (gradients), enough for 16-pixel windows."""
    d = tmp_path_factory.mktemp("ddpm_data")
    yy, xx = np.mgrid[0:40, 0:48]
    for i in range(3):
        img = np.stack([xx * 5 + 20 * i, yy * 6, (xx + yy) * 3], -1) % 256
        (d / "sub").mkdir(exist_ok=True)
        Image.fromarray(img.astype(np.uint8)).save(d / ("sub" if i else "") / f"img{i}.png")
    return d


def tiny_cfg(data, out, **kw):
    base = dict(data=str(data), out=str(out), size=16, batch=4, steps=6, lr=1e-3, warmup=2, preset="tiny",
                save_every=3, log_every=0, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def test_window_sampler_shapes_ranges_and_nonempty_masks(image_dir):
    ws = WindowSampler(str(image_dir), 16, ("thin", "center", "stripes"), 0.5, 1.0)
    assert len(ws.images) == 3  # found recursively
    x, m = ws.batch(8, np.random.default_rng(0))
    assert x.shape == (8, 3, 16, 16) and m.shape == (8, 1, 16, 16)
    assert x.min() >= -1 and x.max() <= 1
    assert set(m.unique().tolist()) <= {0.0, 1.0} and (m.flatten(1).sum(1) > 0).all()
    x2, m2 = ws.batch(8, np.random.default_rng(0))
    assert torch.equal(x, x2) and torch.equal(m, m2)


@pytest.mark.parametrize("prediction", ["epsilon", "v"])
def test_loss_falls_within_a_few_dozen_steps(image_dir, prediction):
    torch.manual_seed(0)
    net = InpaintUNet(ModelConfig(resolution=16, prediction=prediction, **PRESETS["tiny"]))
    sched = make_schedule("cosine", 1000)
    ws = WindowSampler(str(image_dir), 16, ("center", "random_rect"), 0.5, 1.0)
    held = ws.batch(16, np.random.default_rng(99))

    def held_loss():
        with torch.no_grad():
            return loss_fn(net, sched, *held, "masked", torch.Generator().manual_seed(0)).item()

    before = held_loss()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
    rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    for _ in range(40):
        loss = loss_fn(net, sched, *ws.batch(8, rng), "masked", gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = held_loss()
    assert after < 0.8 * before, (before, after)


def test_saved_folder_round_trips_and_resume_is_exact(image_dir, tmp_path):
    straight = train(tiny_cfg(image_dir, tmp_path / "a", prediction="v"), progress=False)
    cfg = json.loads((straight / "config.json").read_text())
    assert cfg["_inpaint_kit"] == "ddpm" and cfg["resolution"] == 16 and cfg["extra"]["training"]["steps"] == 6
    assert cfg["prediction"] == "v"
    net = load_model(straight)
    assert read_config(straight).block_out_channels == PRESETS["tiny"]["block_out_channels"]
    # resume: stop after 3 steps, then 3 more from the checkpoint, gives the same weights as 6 straight
    train(tiny_cfg(image_dir, tmp_path / "b", stop_after=3, prediction="v"), progress=False)
    resumed = train(tiny_cfg(image_dir, tmp_path / "b", steps=6, resume=True, prediction="v"), progress=False)
    assert torch.load(resumed / CHECKPOINT_NAME, weights_only=True)["step"] == 6
    other = load_model(resumed)
    for (k, v), w in zip(net.state_dict().items(), other.state_dict().values()):
        assert torch.allclose(v, w, atol=1e-6), k


def test_init_from_starts_from_a_saved_model(image_dir, tmp_path):
    first = train(tiny_cfg(image_dir, tmp_path / "a", steps=2), progress=False)
    second = train(tiny_cfg(image_dir, tmp_path / "b", steps=1, lr=1e-12, warmup=1, init_from=str(first),
                            prediction="v"), progress=False)
    a, b = load_model(first).state_dict(), load_model(second).state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    with pytest.raises(InpaintKitError, match="its network differs from --preset small"):
        train(tiny_cfg(image_dir, tmp_path / "c", steps=1, init_from=str(first), preset="small"), progress=False)


def test_cli_trains_and_reports(image_dir, tmp_path, capsys):
    out = tmp_path / "m"
    code = main(["train-ddpm", "--data", str(image_dir), "--out", str(out), "--preset", "tiny", "--size", "16",
                 "--batch", "2", "--steps", "2", "--sample_every", "2", "--log_every", "1"])
    assert code == 0
    assert (out / "model.safetensors").is_file() and (out / "samples" / "step_0000002.png").is_file()
    assert Image.open(out / "samples" / "step_0000002.png").size == (48, 64)  # 4 rows of 3 tiles, 16 px
    # a second run into the same folder without --resume refuses
    assert main(["train-ddpm", "--data", str(image_dir), "--out", str(out), "--preset", "tiny", "--size", "16",
                 "--steps", "1"]) == 2
    assert "pass --resume" in capsys.readouterr().err


def test_bad_inputs_are_one_line_errors(image_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InpaintKitError, match="no images found"):
        train(tiny_cfg(empty, tmp_path / "x"), progress=False)
    with pytest.raises(InpaintKitError, match="resolution 15 is not a multiple of the network's downsampling 2"):
        train(tiny_cfg(image_dir, tmp_path / "x", size=15), progress=False)
    with pytest.raises(InpaintKitError, match="nothing to resume"):
        train(tiny_cfg(image_dir, tmp_path / "x", resume=True), progress=False)
    assert main(["train-ddpm", "--data", str(image_dir), "--out", str(tmp_path / "y"), "--size", "60"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: resolution 60 is not a multiple") and err.count("\n") == 1
    with pytest.raises(InpaintKitError, match="unknown blob"):
        train(tiny_cfg(image_dir, tmp_path / "x", mask_kinds=("blob",)), progress=False)


def test_timestep_focus_draws_the_requested_share_below_the_strength():
    from inpaint_kit.ddpm.train import sample_timesteps

    gen = torch.Generator().manual_seed(0)
    uniform = sample_timesteps(20000, 1000, gen)
    assert 0.27 < (uniform < 300).float().mean() < 0.33 and uniform.max() > 990
    focused = sample_timesteps(20000, 1000, gen, focus_strength=0.3, focus_fraction=0.75)
    # 75 % below 300 by construction, plus 30 % of the uniform quarter
    assert 0.80 < (focused < 300).float().mean() < 0.85 and focused.max() > 990
    with pytest.raises(InpaintKitError, match="--focus_strength"):
        TrainConfig(data="d", out="o", focus_fraction=1.5).validate()
