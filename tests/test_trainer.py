"""The shared Trainer base (inpaint_kit.train.trainer): run folder rules, resume identity checks, damaged
checkpoints, settings inherited on --resume, and the flags built from config fields.

Most tests use ``ToyTrainer``: the smallest real subclass (a linear layer fitted to x -> sum(x)); every
line of the base class runs as it does for the SD and DDPM trainers, in a fraction of a second."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from inpaint_kit.cli import build_parser, main
from inpaint_kit.errors import InpaintKitError
from inpaint_kit.train.config import TrainerConfig, option, redefault
from inpaint_kit.train.lora.config import LoraTrainConfig
from inpaint_kit.train.trainer import Trainer, trainable_state_dict


@dataclass
class ToyConfig(TrainerConfig):
    data: str = redefault(TrainerConfig, "data", "synthetic")
    lr_scheduler: str = redefault(TrainerConfig, "lr_scheduler", "linear")
    lr: float = redefault(TrainerConfig, "lr", 0.05)
    width: int = option(4, help="input width")
    noise: float = option(0.0, resume="change", help="label noise")


class ToyTrainer(Trainer):
    name = "train-toy"
    weights_names = ("toy.safetensors",)

    def build_models(self):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.seed)
            self.net = torch.nn.Linear(self.cfg.width, 1)

    def trainable_modules(self):
        return [self.net]

    def micro_loss(self, micro):
        gens = self.generators(self.draws(micro))
        x = torch.cat([torch.randn(1, self.cfg.width, generator=g) for g in gens])
        return ((self.models[0](x) - x.sum(1, keepdim=True)) ** 2).mean()

    def save_weights(self):
        from safetensors.torch import save_file

        save_file(trainable_state_dict(self.net), str(self.out / "toy.safetensors"))
        return self.out / "toy.safetensors"


def toy(out, **kw):
    return ToyConfig(**{"output_dir": str(out), "steps": 4, "batch": 2, "save_every": 100, "progress": False, **kw})


def weights(trainer):
    return {k: v.clone() for k, v in trainer.net.state_dict().items()}


def test_toy_learns_and_resume_is_exact(tmp_path):
    straight = ToyTrainer(toy(tmp_path / "a", accum=2))
    result = straight.run()
    assert result.step == 4 and result.losses[-1] < result.losses[0]
    first = ToyTrainer(toy(tmp_path / "b", accum=2, stop_after=2))
    assert first.run().step == 2
    assert [p.name for p in (tmp_path / "b" / "checkpoints").iterdir()] == ["step_000002"]
    resumed = ToyTrainer(ToyConfig.from_run(str(tmp_path / "b")))
    assert resumed.run().step == 4 and resumed.cfg.accum == 2 and resumed.cfg.stop_after is None
    a, b = weights(straight), weights(resumed)
    assert all(torch.allclose(a[k], b[k], atol=1e-7) for k in a)
    assert resumed.losses == pytest.approx(straight.losses[2:], rel=1e-6)
    record = json.loads((tmp_path / "b" / "training_config.json").read_text())
    assert record["step"] == 4 and record["trainer"] == "train-toy" and record["global_batch"] == 2


def test_output_dir_holding_a_run_is_refused_unless_resume_or_overwrite(tmp_path):
    out = tmp_path / "run"
    ToyTrainer(toy(out, steps=2)).run()
    with pytest.raises(InpaintKitError, match="already holds a training run .*Pass --resume .* --overwrite") as e:
        ToyTrainer(toy(out, steps=1))
    assert "\n" not in str(e.value)
    (out / "notes.txt").write_text("mine")
    ToyTrainer(toy(out, steps=1, overwrite=True)).run()
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step_000001"]  # the old run's step_000002 is gone
    assert (out / "notes.txt").read_text() == "mine"  # only the run's own files are replaced
    # resuming another folder's checkpoint into a folder that holds a run: refused too
    ToyTrainer(toy(tmp_path / "other", steps=1)).run()
    with pytest.raises(InpaintKitError, match="refusing resuming another folder's checkpoint"):
        ToyTrainer(toy(out, steps=2, resume=str(tmp_path / "other")))
    with pytest.raises(InpaintKitError, match="--resume continues .* --overwrite replaces it; pass one"):
        ToyTrainer(toy(out, resume="latest", overwrite=True))


def test_unusable_output_dir_is_one_line_before_any_model(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InpaintKitError, match="--output_dir .*file: is a file"):
        ToyTrainer(toy(tmp_path / "file"))
    with pytest.raises(InpaintKitError, match="--output_dir .*: not writable"):
        ToyTrainer(toy(tmp_path / "file" / "below"))


def test_stale_temp_files_of_killed_saves_are_removed_at_start(tmp_path):
    out = tmp_path / "run"
    ToyTrainer(toy(out, steps=1)).run()
    stale = [out / "checkpoints" / ".tmp_step_000007", out / ".lora.x1y2", out / ".toy.safetensors.4242.tmp",
             out / "validation" / ".step_000001.png.99.tmp"]
    for p in stale[:2]:
        p.mkdir(parents=True)
        (p / "half").write_bytes(b"0" * 10)
    for p in stale[2:]:
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"0" * 10)
    ToyTrainer(toy(out, steps=2, resume="latest"))
    assert not any(p.exists() for p in stale)
    assert (out / "checkpoints" / "step_000001").is_dir()


def test_resume_takes_the_runs_settings_and_refuses_contradicting_ones(tmp_path, capsys):
    out = tmp_path / "run"
    ToyTrainer(toy(out, width=6, steps=2, noise=0.1)).run()
    cfg = ToyConfig.from_options({"output_dir": str(out), "resume": "latest", "steps": 3, "progress": False})
    assert cfg.width == 6 and cfg.noise == 0.1 and cfg.batch == 2 and cfg.steps == 3
    with pytest.raises(InpaintKitError, match=r"trained with --lr 0.05 \(not 0.1\), --width 6 \(not 4\)") as e:
        ToyTrainer(ToyConfig.from_options({"output_dir": str(out), "resume": "latest", "width": 4, "lr": 0.1}))
    assert "\n" not in str(e.value) and "leave these flags out" in str(e.value)
    ToyTrainer(ToyConfig.from_options({"output_dir": str(out), "resume": "latest", "noise": 0.2, "progress": False}))
    assert "resume: --noise 0.2 (was 0.1)" in capsys.readouterr().out
    with pytest.raises(InpaintKitError, match=r"global batch is 2 \(1 process\(es\) x --batch 2\), this one 4 .*"
                                              r"pass --batch 2"):
        ToyTrainer(ToyConfig.from_options({"output_dir": str(out), "resume": "latest", "batch": 4}))


def test_resume_refuses_other_trainers_and_damaged_checkpoints(tmp_path):
    out = tmp_path / "run"
    ToyTrainer(toy(out, steps=1)).run()
    ckpt = out / "checkpoints" / "step_000001"
    state = json.loads((ckpt / "trainer_state.json").read_text())

    def resume_error(match):
        with pytest.raises(InpaintKitError, match=match) as e:
            ToyTrainer(toy(out, steps=2, resume="latest")).run()
        assert "\n" not in str(e.value)
        return str(e.value)

    (ckpt / "trainer_state.json").write_text(json.dumps({**state, "trainer": "train-lora"}))
    resume_error("written by train-lora, not train-toy")
    (ckpt / "trainer_state.json").write_text("{not json")
    resume_error("trainer_state.json: not valid JSON")
    (ckpt / "trainer_state.json").write_text(json.dumps(state))

    good = (ckpt / "trainable_0.safetensors").read_bytes()
    (ckpt / "trainable_0.safetensors").write_bytes(good[: len(good) // 2])
    resume_error(r"trainable_0.safetensors: not a readable safetensors file")
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(1, 9), "bias": torch.zeros(1)}, str(ckpt / "trainable_0.safetensors"))
    resume_error(r"trainable_0.safetensors: holds other weights than this run trains \(first difference: weight\)")
    (ckpt / "trainable_0.safetensors").write_bytes(good)

    opt = (ckpt / "optimizer.bin").read_bytes()
    (ckpt / "optimizer.bin").write_bytes(opt[:100])
    resume_error(r"optimizer.bin: cannot be loaded")

    class Exploit:  # what a malicious checkpoint carries: a callable run at unpickling time
        def __reduce__(self):
            return (print, ("pwned",))

    (ckpt / "optimizer.bin").write_bytes(pickle.dumps(Exploit()))
    message = resume_error(r"optimizer.bin: cannot be loaded \(torch.load\(weights_only=True\) refuses it")
    assert "pwned" not in message
    (ckpt / "optimizer.bin").unlink()
    resume_error(r"optimizer.bin is missing; the checkpoint is incomplete")


def test_resume_without_a_checkpoint_is_one_line(tmp_path):
    with pytest.raises(InpaintKitError, match="does not exist; nothing to resume"):
        ToyTrainer(toy(tmp_path / "none", resume="latest"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InpaintKitError, match="no checkpoint in .*empty"):
        ToyTrainer(toy(tmp_path / "empty", resume="latest"))


def test_validation_of_shared_settings():
    with pytest.raises(InpaintKitError, match="--warmup_steps 10 has no effect with --lr_scheduler constant"):
        LoraTrainConfig(data="d", warmup_steps=10).validate()
    with pytest.raises(InpaintKitError, match="--stop_after 5: must be between 1 and --steps 4"):
        ToyConfig(output_dir="o", steps=4, stop_after=5).validate()
    with pytest.raises(InpaintKitError, match="--mixed_precision fp32: choose from no, fp16, bf16"):
        ToyConfig(output_dir="o", mixed_precision="fp32").validate()
    with pytest.raises(InpaintKitError, match="--data is required"):
        LoraTrainConfig().validate()
    with pytest.raises(InpaintKitError, match="--validate_every: train-toy has no validation preview"):
        ToyTrainer(ToyConfig(output_dir="o", validate_every=2))


def test_flags_are_built_from_the_config_fields():
    parser = build_parser("train-lora")
    args = parser.parse_args(["--data_root", "d", "--out", "o", "--warmup", "3", "--no_damage_aware",
                              "--train", "lora", "text_encoder"])
    # aliases land in the canonical fields; flags left out are absent (so --resume can take the run's)
    assert (args.data, args.output_dir, args.warmup_steps, args.damage_aware, args.train) == \
           ("d", "o", 3, False, ["lora", "text_encoder"])
    assert not hasattr(args, "rank") and not hasattr(args, "lr")
    text = parser.format_help()
    assert "--data_root" not in text and "--warmup " not in text  # old spellings accepted, not shown
    d = LoraTrainConfig.field_defaults()
    assert f"(default: {d['rank']})" in " ".join(text.split()) and "{constant,constant_with_warmup," in text
    with pytest.raises(SystemExit):
        parser.parse_args(["--data", "d", "--mixed_precision", "fp32"])


def test_cli_resume_inherits_the_runs_settings(tmp_path, tiny_model_dir, capsys):
    import numpy as np
    from PIL import Image

    (tmp_path / "d" / "imgs").mkdir(parents=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
        tmp_path / "d" / "imgs" / "a.png")
    out = str(tmp_path / "run")
    base = ["train-lora", "--model", str(tiny_model_dir), "--output_dir", out, "--no_progress"]
    assert main(base + ["--data", str(tmp_path / "d"), "--mask_source", "random", "--size", "64", "--rank", "4",
                        "--steps", "2", "--stop_after", "1"]) == 0
    capsys.readouterr()
    assert main(base + ["--rank", "8", "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --resume ") and "trained with --rank 4 (not 8)" in err and "\n" not in err
    assert main(base + ["--resume"]) == 0  # --data, --size, --rank 4, --mask_source, --steps 2 from the run
    record = json.loads(Path(out, "training_config.json").read_text())
    assert record["step"] == 2 and record["config"]["rank"] == 4 and record["config"]["size"] == 64
