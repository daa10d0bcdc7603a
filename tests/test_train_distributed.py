"""Training on several processes, proven: ``torchrun --nproc_per_node 2`` (CPU, gloo) runs train-lora and
train-ddpm on the tiny presets (one launch, a few updates each, stopped after one update and resumed).

Checked: both ranks end with bit-identical trainable weights; they equal (within float rounding) one
process with the same global batch, as the Trainer promises (per-draw generators, DDP-averaged
gradients); the global step is counted once; only rank 0 writes checkpoints, logs and weights (seen by
an audit hook: rank 1 creates, renames or opens for writing nothing in the run folders; one TensorBoard
event file); and the 2-process resume continues the run exactly. Another trainer joins by adding its phases
(``"trainer": "package.module:TrainerClass package.module:ConfigClass"``, see tests/distributed_driver.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from inpaint_kit.train.ddpm.trainer import DdpmTrainer
from inpaint_kit.train.ddpm.config import DdpmTrainConfig
from inpaint_kit.train.lora.config import LoraTrainConfig
from inpaint_kit.train.lora.trainer import LoraTrainer
from inpaint_kit.train.trainer import trainable_state_dict

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.distributed  # part of `make test`; deselect with -m "not distributed"


def torchrun(n: int, plan: dict, tmp: Path) -> subprocess.CompletedProcess:
    """Launch tests/distributed_driver.py on ``n`` CPU processes exactly as a user would (torchrun)."""
    (tmp / "plan.json").write_text(json.dumps(plan))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n),
           str(HERE / "distributed_driver.py"), str(tmp / "plan.json")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def launched(tmp_path_factory, tiny_model_dir):
    """One torchrun launch: for each trainer, 2 processes x --batch 1 stop after update 1, then resume to 2."""
    tmp = tmp_path_factory.mktemp("dist")
    rng = np.random.default_rng(0)
    (tmp / "lora_data" / "imgs").mkdir(parents=True)
    (tmp / "ddpm_data").mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp / "lora_data" / "imgs" / f"p{i}.png")
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp / "ddpm_data" / f"d{i}.png")
    common = dict(steps=2, batch=1, save_every=1, seed=3, progress=False, lr_scheduler="linear", warmup_steps=1,
                  device="cpu")
    configs = {
        "lora": dict(data=str(tmp / "lora_data"), model=str(tiny_model_dir), size=64, rank=4, lr=1e-2,
                     mask_source="random", **common),
        "ddpm": dict(data=str(tmp / "ddpm_data"), preset="tiny", size=16, lr=1e-3, log_every=0, **common),
    }
    phases = []
    for name, cfg in configs.items():
        out = str(tmp / f"{name}_2proc")
        phases.append({"trainer": name, "config": {**cfg, "output_dir": out, "stop_after": 1}})
        phases.append({"trainer": name, "config": {"output_dir": out, "resume": "latest", "progress": False}})
    (tmp / "report").mkdir()
    torchrun(2, {"report": str(tmp / "report"), "phases": phases}, tmp)
    return tmp, configs


def rank_report(tmp: Path, phase: int, rank: int):
    return (json.loads((tmp / "report" / f"{phase}_rank{rank}.json").read_text()),
            load_file(str(tmp / "report" / f"{phase}_rank{rank}.safetensors")))


def one_process(trainer_cls, config_cls, cfg: dict, out: Path):
    """The same run on one process with the same global batch (2 x --batch 1 = --batch 2)."""
    trainer = trainer_cls(config_cls(**{**cfg, "batch": 2, "output_dir": str(out)}))
    result = trainer.run()
    return trainable_state_dict(trainer.acc.unwrap_model(trainer.models[0])), result.losses


def assert_same_update(a: dict, b: dict, lr: float) -> None:
    """Equal up to rounding as amplified by Adam: no element off by 10 % of a step, the mean by under 1 %."""
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 0.1 * lr
    assert max((a[k] - b[k]).abs().mean().item() for k in a) < 0.01 * lr


@pytest.mark.parametrize("name, phase", [("lora", 1), ("ddpm", 3)])
def test_ranks_agree_and_match_one_process_with_the_same_global_batch(launched, name, phase, tmp_path):
    tmp, configs = launched
    (r0, w0), (r1, w1) = rank_report(tmp, phase, 0), rank_report(tmp, phase, 1)
    assert r0["processes"] == r1["processes"] == 2
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)  # synchronised, bit for bit
    trainer_cls, config_cls = {"lora": (LoraTrainer, LoraTrainConfig), "ddpm": (DdpmTrainer, DdpmTrainConfig)}[name]
    single, losses = one_process(trainer_cls, config_cls, configs[name], tmp_path / "one")
    # the same samples: one process's loss of update k is the mean of the two ranks' losses
    for k, p in enumerate((phase - 1, phase)):
        ranks = [rank_report(tmp, p, r)[0]["losses"][-1] for r in (0, 1)]
        assert losses[k] == pytest.approx(sum(ranks) / 2, rel=1e-5)
    # the same weights up to float rounding: Adam normalises each gradient element, so where a gradient
    # element is a near-cancelling sum its rounding (batch of 2 vs all-reduce of 2 x 1) shows as part of a
    # step of size lr. A different sample would move nearly every element by about lr (mean ~ lr).
    assert single.keys() == w0.keys()
    assert_same_update(single, w0, configs[name]["lr"])


@pytest.mark.parametrize("name, phase", [("lora", 1), ("ddpm", 3)])
def test_global_step_counted_once_and_only_rank_0_writes(launched, name, phase):
    tmp, _ = launched
    out = tmp / f"{name}_2proc"
    for p in (phase - 1, phase):
        r0, r1 = rank_report(tmp, p, 0)[0], rank_report(tmp, p, 1)[0]
        assert r1["writes"] == [], r1["writes"][:5]
        assert r0["writes"], "the audit hook saw rank 0 write nothing: it is not watching"
    r0, r1 = rank_report(tmp, phase - 1, 0)[0], rank_report(tmp, phase, 0)[0]
    assert r0["step"] == 1 and r1["step"] == 2 and len(r1["losses"]) == 1  # resumed at 1, one more update
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_000001", "step_000002"]
    state = json.loads((out / "checkpoints" / "step_000002" / "trainer_state.json").read_text())
    record = json.loads((out / "training_config.json").read_text())
    assert state["step"] == record["step"] == 2 and record["processes"] == 2 and record["global_batch"] == 2
    events = list((out / "logs").rglob("events.out.tfevents.*"))  # events.out.tfevents.<time>.<host>.<pid>.<n>
    assert events and len({e.name.split(".")[-2] for e in events}) == 1  # written by one process only


def test_resume_on_one_process_continues_a_two_process_run(launched, tmp_path):
    """A run checkpointed by 2 processes x --batch 1 continues on 1 process with --batch 2 (same global batch)."""
    import shutil

    tmp, configs = launched
    out = tmp_path / "ddpm"
    shutil.copytree(tmp / "ddpm_2proc", out)
    shutil.rmtree(out / "checkpoints" / "step_000002")
    trainer = DdpmTrainer(DdpmTrainConfig.from_options({"output_dir": str(out), "resume": "latest", "batch": 2,
                                                         "progress": False}))
    assert trainer.run().step == 2
    _, w2 = rank_report(tmp, 3, 0)
    assert_same_update(trainable_state_dict(trainer.net), w2, configs["ddpm"]["lr"])
