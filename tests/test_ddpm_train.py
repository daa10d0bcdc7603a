"""Training the from-scratch DDPM (DdpmTrainer on the shared Trainer): the real train() makes the loss fall,
runs save/resume exactly (bit for bit) with the run's own settings, damaged or foreign checkpoints and bad
input are one line, and the shipped builtin model still loads."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from inpaint_kit.cli import build_parser, main
from inpaint_kit.ddpm.schedule import make_schedule
from inpaint_kit.train.ddpm.data import WindowSampler
from inpaint_kit.train.ddpm.trainer import DdpmTrainer, loss_fn, sample_timesteps, train
from inpaint_kit.ddpm.unet import PRESETS, load_model, read_config
from inpaint_kit.errors import InpaintKitError
from inpaint_kit.train.ddpm.config import DDPM_PRESETS, DdpmTrainConfig


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
    base = dict(data=str(data), output_dir=str(out), size=16, batch=4, steps=6, lr=1e-3, warmup_steps=2,
                preset="tiny", save_every=3, log_every=0, seed=3, progress=False)
    base.update(kw)
    return DdpmTrainConfig(**base)


def test_window_sampler_shapes_ranges_and_nonempty_masks(image_dir):
    ws = WindowSampler(str(image_dir), 16, ("thin", "center", "stripes"), 0.5, 1.0)
    assert len(ws.images) == 3  # found recursively
    x, m = ws.batch(8, np.random.default_rng(0))
    assert x.shape == (8, 3, 16, 16) and m.shape == (8, 1, 16, 16)
    assert x.min() >= -1 and x.max() <= 1
    assert set(m.unique().tolist()) <= {0.0, 1.0} and (m.flatten(1).sum(1) > 0).all()
    x2, m2 = ws.batch(8, np.random.default_rng(0))
    assert torch.equal(x, x2) and torch.equal(m, m2)
    xs, ms = ws.sample(np.random.default_rng(5))
    assert xs.shape == (3, 16, 16) and ms.shape == (1, 16, 16)


def test_augment_makes_windows_look_scanned_and_zero_changes_nothing(image_dir):
    """--augment: with probability 1 every window is turned grey or sepia (then grain and JPEG), with 0 the
    windows are the ones drawn before the flag existed (same generator draws)."""
    from inpaint_kit.train.augment import SEPIA

    kinds = ("thin", "center")
    plain = WindowSampler(str(image_dir), 16, kinds, 0.5, 1.0)
    assert torch.equal(plain.batch(6, np.random.default_rng(1))[0],
                       WindowSampler(str(image_dir), 16, kinds, 0.5, 1.0, augment=0.0).batch(6, np.random.default_rng(1))[0])
    scan = WindowSampler(str(image_dir), 16, kinds, 0.5, 1.0, augment=1.0)
    for seed in range(6):
        orig = plain.window(np.random.default_rng(seed)).astype(np.float32)
        out = scan.window(np.random.default_rng(seed)).astype(np.float32)
        # the mirror is drawn after the scan changes, so the same seed may mirror one and not the other
        assert min(np.abs(out - o).mean() for o in (orig, orig[:, ::-1])) > 5  # colourful photos: toning shows
        toned = [t(o) for o in (orig, orig[:, ::-1]) for t in (
            lambda o: np.repeat((o @ np.array([0.299, 0.587, 0.114], np.float32))[..., None], 3, axis=2),
            lambda o: np.clip(o @ SEPIA.T, 0, 255))]
        # what is left after toning is grain (sigma <= 8) and JPEG error, not the photo's own colours
        assert min(np.abs(out - t).mean() for t in toned) < 9, seed
    with pytest.raises(InpaintKitError, match="--augment 1.5"):
        tiny_cfg(image_dir, "/tmp/x", augment=1.5).validate()


@pytest.mark.parametrize("prediction", ["epsilon", "v"])
def test_real_train_makes_the_held_out_loss_fall(image_dir, tmp_path, prediction):
    """Through DdpmTrainer.run() (accelerate, AdamW, schedule): fails if the optimizer step is removed."""
    trainer = DdpmTrainer(tiny_cfg(image_dir, tmp_path / "run", steps=40, batch=8, lr=2e-3, warmup_steps=0,
                                   lr_scheduler="constant", save_every=1000, prediction=prediction,
                                   mask_kinds="center,random_rect"))
    net, sched = trainer.net, make_schedule("cosine", 1000)
    held = WindowSampler(str(image_dir), 16, ("center", "random_rect"), 0.5, 1.0).batch(16, np.random.default_rng(99))

    def held_loss():
        with torch.no_grad():
            return loss_fn(net, sched, *held, "masked", torch.Generator().manual_seed(0)).item()

    before = held_loss()
    result = trainer.run()
    after = held_loss()
    assert result.step == 40 and after < 0.8 * before, (before, after)
    assert read_config(tmp_path / "run").prediction == prediction


def test_saved_folder_round_trips_and_resume_is_bit_exact(image_dir, tmp_path):
    straight = train(tiny_cfg(image_dir, tmp_path / "a", prediction="v")).out
    cfg = json.loads((straight / "config.json").read_text())
    assert cfg["_inpaint_kit"] == "ddpm" and cfg["resolution"] == 16 and cfg["extra"]["training"]["steps"] == 6
    assert cfg["prediction"] == "v" and "resume" not in cfg["extra"]["training"]
    assert read_config(straight).block_out_channels == PRESETS["tiny"]["block_out_channels"]
    load_model(straight)  # --model <output_dir> loads it
    # 3 steps, then a resume with the run's own settings (no --prediction: it must stay v) to 6
    train(tiny_cfg(image_dir, tmp_path / "b", stop_after=3, prediction="v"))
    resumed = DdpmTrainer(DdpmTrainConfig.from_options({"output_dir": str(tmp_path / "b"), "resume": "latest",
                                                         "progress": False}))
    assert resumed.cfg.prediction == "v" and resumed.cfg.preset == "tiny" and resumed.cfg.size == 16
    assert resumed.run().step == 6
    for name in ("model.safetensors", "checkpoints/step_000006/trainable_0.safetensors",
                 "checkpoints/step_000006/ema.safetensors"):
        a, b = load_file(str(tmp_path / "a" / name)), load_file(str(tmp_path / "b" / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    record = json.loads((tmp_path / "b" / "training_config.json").read_text())
    assert record["trainer"] == "train-ddpm" and record["step"] == 6 and record["config"]["prediction"] == "v"
    # EMA weights are exported, not the raw ones
    raw = load_file(str(tmp_path / "a" / "checkpoints/step_000006/trainable_0.safetensors"))
    ema = load_file(str(tmp_path / "a" / "model.safetensors"))
    assert any(not torch.equal(raw[k], ema[k]) for k in raw)


def test_resume_keeps_the_runs_settings_and_refuses_contradicting_flags(image_dir, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train-ddpm", "--data", str(image_dir), "--output_dir", str(out), "--preset", "tiny", "--size", "16",
            "--batch", "2", "--no_progress"]
    assert main(base + ["--prediction", "v", "--steps", "4", "--stop_after", "2", "--save_every", "2"]) == 0
    capsys.readouterr()
    assert main(["train-ddpm", "--output_dir", str(out), "--resume", "--prediction", "epsilon"]) == 2
    err = capsys.readouterr().err.strip()
    assert "trained with --prediction v (not epsilon)" in err and "\n" not in err
    assert main(["train-ddpm", "--out", str(out), "--resume", "--no_progress"]) == 0  # the README's resume line
    assert read_config(out).prediction == "v"
    record = json.loads((out / "training_config.json").read_text())
    assert record["step"] == 4 and record["config"]["prediction"] == "v" and record["config"]["batch"] == 2


def test_resume_errors_name_the_file_and_the_reason(image_dir, tmp_path):
    out = tmp_path / "run"
    train(tiny_cfg(image_dir, out, steps=2, save_every=2))
    ckpt = out / "checkpoints" / "step_000002"

    def resume_error(match, **kw):
        with pytest.raises(InpaintKitError, match=match) as e:
            DdpmTrainer(DdpmTrainConfig.from_options({"output_dir": str(out), "resume": "latest", "steps": 3,
                                                       "progress": False, **kw})).run()
        assert "\n" not in str(e.value)

    # another network: the flags say so, or the checkpoint's own files do
    resume_error(r"trained with --preset tiny \(not small\)", preset="small")
    good_state = (ckpt / "trainer_state.json").read_text()
    state = json.loads(good_state)
    state["base"]["network"]["block_out_channels"] = [8, 16]
    (ckpt / "trainer_state.json").write_text(json.dumps(state))
    resume_error(r"trained on another network \(network:")
    (ckpt / "trainer_state.json").write_text(json.dumps({**json.loads(good_state), "trainer": "train-lora"}))
    resume_error("written by train-lora, not train-ddpm")
    (ckpt / "trainer_state.json").write_text(good_state)
    # a truncated checkpoint
    good = (ckpt / "trainable_0.safetensors").read_bytes()
    (ckpt / "trainable_0.safetensors").write_bytes(good[: len(good) // 2])
    resume_error(r"trainable_0.safetensors: not a readable safetensors file")
    (ckpt / "trainable_0.safetensors").write_bytes(good)
    ema = (ckpt / "ema.safetensors").read_bytes()
    (ckpt / "ema.safetensors").write_bytes(ema[:200])
    resume_error(r"ema.safetensors: not a readable safetensors file")
    (ckpt / "ema.safetensors").write_bytes(ema)

    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    (ckpt / "optimizer.bin").write_bytes(pickle.dumps(Exploit()))
    resume_error(r"optimizer.bin: cannot be loaded \(torch.load\(weights_only=True\) refuses it")


def test_old_checkpoint_pt_run_and_stale_temp_files(image_dir, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "checkpoint.pt").write_bytes(b"x")
    with pytest.raises(InpaintKitError, match="checkpoint of the older train-ddpm.* --init_from"):
        DdpmTrainConfig.from_options({"output_dir": str(old), "resume": "latest"})
    out = tmp_path / "run"
    train(tiny_cfg(image_dir, out, steps=1))
    stale = [out / ".checkpoint.pt.4242.tmp", out / ".model.safetensors.77.tmp", out / "checkpoints" / ".tmp_step_000009"]
    for p in stale[:2]:
        p.write_bytes(b"0" * 10)
    stale[2].mkdir()
    DdpmTrainer(tiny_cfg(image_dir, out, steps=2, resume="latest"))
    assert not any(p.exists() for p in stale)


def test_builtin_model_still_loads_and_presets_agree():
    net = load_model("inpaint_kit/assets/builtin")
    assert net.config.prediction == "v" and sum(p.numel() for p in net.parameters()) > 5e6
    assert DDPM_PRESETS == tuple(PRESETS)


def test_cli_trains_writes_previews_and_refuses_a_second_run(image_dir, tmp_path, capsys):
    out = tmp_path / "m"
    code = main(["train-ddpm", "--data", str(image_dir), "--out", str(out), "--preset", "tiny", "--size", "16",
                 "--batch", "2", "--steps", "2", "--sample_every", "2", "--log_every", "1", "--no_progress"])
    assert code == 0
    assert (out / "model.safetensors").is_file() and (out / "validation" / "step_000002.png").is_file()
    assert Image.open(out / "validation" / "step_000002.png").size == (48, 64)  # 4 rows of 3 tiles, 16 px
    assert main(["train-ddpm", "--data", str(image_dir), "--out", str(out), "--preset", "tiny", "--size", "16",
                 "--steps", "1"]) == 2
    assert "Pass --resume to continue it" in capsys.readouterr().err


def test_bad_inputs_are_one_line_errors(image_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InpaintKitError, match="no images found"):
        train(tiny_cfg(empty, tmp_path / "x"))
    with pytest.raises(InpaintKitError, match="resolution 15 is not a multiple of the network's downsampling 2"):
        train(tiny_cfg(image_dir, tmp_path / "x", size=15))
    with pytest.raises(InpaintKitError, match="does not exist; nothing to resume"):
        DdpmTrainConfig.from_options({"output_dir": str(tmp_path / "none"), "resume": "latest"})
    assert main(["train-ddpm", "--data", str(image_dir), "--output_dir", str(tmp_path / "y"), "--size", "60"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: resolution 60 is not a multiple") and err.count("\n") == 1
    with pytest.raises(InpaintKitError, match="unknown blob"):
        tiny_cfg(image_dir, tmp_path / "x", mask_kinds="thin,blob").validate()
    with pytest.raises(SystemExit) as e:
        main(["train-ddpm", "--data", str(image_dir), "--output_dir", str(tmp_path / "y"), "--preset", "huge"])
    assert e.value.code == 2 and "--preset: invalid choice: 'huge'" in capsys.readouterr().err


def test_timestep_focus_draws_the_requested_share_below_the_strength():
    gen = torch.Generator().manual_seed(0)
    uniform = sample_timesteps(20000, 1000, gen)
    assert 0.27 < (uniform < 300).float().mean() < 0.33 and uniform.max() > 990
    focused = sample_timesteps(20000, 1000, gen, focus_strength=0.3, focus_fraction=0.75)
    # 75 % below 300 by construction, plus 30 % of the uniform quarter
    assert 0.80 < (focused < 300).float().mean() < 0.85 and focused.max() > 990
    with pytest.raises(InpaintKitError, match="--focus_strength"):
        DdpmTrainConfig(data="d", output_dir="o", focus_fraction=1.5).validate()


@pytest.mark.parametrize("command", ["train-ddpm", "train-lora"])
def test_every_training_flag_has_help_and_the_shared_names(command):
    parser = build_parser(command)
    shown = [a for a in parser._actions if a.help != "==SUPPRESS==" and a.dest != "help"]
    assert all(a.help for a in shown), [a.option_strings for a in shown if not a.help]
    flags = {s for a in shown for s in a.option_strings}
    assert {"--data", "--output_dir", "--resume", "--warmup_steps", "--validate_every", "--device", "--threads",
            "--mixed_precision", "--save_every", "--steps", "--batch", "--lr", "--seed"} <= flags
    args = parser.parse_args(["--data_root", "d", "--out", "o", "--warmup", "3", "--sample_every", "5", "--resume"])
    assert (args.data, args.output_dir, args.warmup_steps, args.validate_every, args.resume) == ("d", "o", 3, 5, "latest")


def test_bf16_mixed_precision_trains_on_cpu_and_keeps_fp32_weights(image_dir, tmp_path):
    result = train(tiny_cfg(image_dir, tmp_path / "bf16", steps=2, mixed_precision="bf16", device="cpu"))
    assert result.step == 2 and all(np.isfinite(result.losses))
    weights = load_file(str(tmp_path / "bf16" / "model.safetensors"))
    assert all(v.dtype == torch.float32 for v in weights.values())


def test_the_builtin_recipe_commands_still_parse_into_valid_configs():
    """weights/builtin/RECIPE.md's train-ddpm lines (old spellings --out/--warmup/--sample_every) still work."""
    import re
    import shlex

    from inpaint_kit.commands.training import config_from_args

    recipe = Path(__file__).resolve().parent.parent / "inpaint_kit" / "assets" / "builtin" / "RECIPE.md"
    joined = recipe.read_text().replace("\\\n", " ")  # continuation lines joined
    commands = re.findall(r"^inpaint-kit train-ddpm ([^#\n]*)", joined, re.M)
    assert len(commands) == 5
    for line in commands:
        args = build_parser("train-ddpm").parse_args([a for a in shlex.split(line) if a != "--resume"])
        cfg = config_from_args(DdpmTrainConfig, args)
        assert cfg.output_dir.startswith("/work/ddpm_runs/") and cfg.preset == "small" and cfg.warmup_steps in (50, 100)
        assert cfg.validate_every in (250, 500, 700, 1100) and cfg.lr_scheduler == "cosine"


class InterruptAt2(DdpmTrainer):
    def train_step(self):
        if self.step == 2:
            raise KeyboardInterrupt
        return super().train_step()


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes_the_run(image_dir, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        InterruptAt2(tiny_cfg(image_dir, out, steps=4, save_every=100)).run()
    assert (out / "checkpoints" / "step_000002" / "ema.safetensors").is_file()
    assert json.loads((out / "training_config.json").read_text())["step"] == 2
    assert DdpmTrainer(DdpmTrainConfig.from_run(str(out), progress=False)).run().step == 4
