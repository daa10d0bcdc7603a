"""train-controlnet and train-defect under ``torchrun --nproc_per_node 2`` (issue 14): both run as one
2-process data-parallel run of the shared Trainer (whose gradient synchronisation, single writer and
resume are proven in test_train_distributed.py): the run records 2 processes and the doubled global
batch, counts its steps once, and writes one set of outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def torchrun(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", "-m", "inpaint_kit", *args,
           "--device", "cpu", "--threads", "1", "--no_progress"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)


def check_run(out: Path, done: subprocess.CompletedProcess, steps: int) -> dict:
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((out / "training_config.json").read_text())
    assert record["processes"] == 2 and record["global_batch"] == 2 and record["step"] == steps
    assert not list(out.rglob("*.tmp")) and not list(out.glob(".*"))  # no half-written or stray files
    assert done.stdout.count(f"trained {steps} steps") == 1, done.stdout  # one closing summary, not one per process
    return record


@pytest.mark.distributed
def test_train_controlnet_on_two_processes(tmp_path):
    from inpaint_kit.presets import write_tiny_model

    base = write_tiny_model(tmp_path / "base", preset="tiny", seed=0, base=True)
    out = tmp_path / "cn"
    done = torchrun(["train-controlnet", "--model", str(base), "--data", str(REPO / "train_data"), "--size", "64",
                     "--steps", "2", "--batch", "1", "--output_dir", str(out)])
    check_run(out, done, 2)
    assert (out / "config.json").is_file() and (out / "diffusion_pytorch_model.safetensors").is_file()


@pytest.mark.distributed
def test_train_defect_on_two_processes(tmp_path, tiny_model_dir):
    from inpaint_kit.train.defect.data import write_fixture

    data = write_fixture(tmp_path / "mvtec")
    out = tmp_path / "defect"
    done = torchrun(["train-defect", "--data", str(data), "--object_class", "bottle", "--defect_type", "crack",
                     "--num_refs", "2", "--model", str(tiny_model_dir), "--size", "64", "--steps", "2", "--batch", "1",
                     "--lora_rank", "2", "--output_dir", str(out)])
    check_run(out, done, 2)
    assert (out / "lora_unet.safetensors").is_file()
