"""A batch run reads cleanly in a log file (issue 15): no carriage-return bars, no library loading bars or
known warnings, one plain line per finished item; --verbose brings the libraries' messages back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

BIN = Path(sys.executable).parent


def batch(tmp_path: Path) -> list[str]:
    rng = np.random.default_rng(0)
    for sub in ("imgs", "masks"):
        (tmp_path / sub).mkdir()
    for k in range(2):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), np.uint8)).save(tmp_path / "imgs" / f"a{k}.png")
        m = np.full((40, 48), 255, np.uint8)
        m[8:20, 8:30] = 0
        Image.fromarray(m).save(tmp_path / "masks" / f"a{k}.png")
    return ["infer", "--batch_imgs_dir", str(tmp_path / "imgs"), "--batch_masks_dir", str(tmp_path / "masks"),
            "--size", "64", "--steps", "2", "--rows", "2", "--seed", "1", "--device", "cpu"]


QUIET_VARS = ("TRANSFORMERS_VERBOSITY", "DIFFUSERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS")


def run(args: list[str]) -> subprocess.CompletedProcess:
    # a fresh shell's environment: in-process CLI runs of other tests set the quiet defaults in os.environ
    env = {**{k: v for k, v in os.environ.items() if k not in QUIET_VARS}, "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(BIN / "inpaint-kit"), *args], capture_output=True, text=True, env=env, timeout=300)


def test_batch_output_in_a_log_file_is_plain_lines(tmp_path, tiny_model_dir):
    args = batch(tmp_path) + ["--model", str(tiny_model_dir)]
    done = run(args + ["--output_dir", str(tmp_path / "out")])
    assert done.returncode == 0, done.stderr
    err = done.stderr
    assert "\r" not in err  # no bars redrawn in place
    for noise in ("Loading pipeline components", "torchvision", "it/s"):
        assert noise not in err
    lines = [ln.split(" (")[0] for ln in err.splitlines() if ln.startswith("images: ")]
    assert lines == ["images: 1/2 done", "images: 2/2 done"]  # one line per finished item
    assert "2 written, 0 skipped" in err
    quiet = run(args + ["--output_dir", str(tmp_path / "q"), "--no_progress"])
    assert "images: " not in quiet.stderr and "2 written" in quiet.stderr
    loud = run(args + ["--output_dir", str(tmp_path / "v"), "--verbose"])
    assert "torchvision" in loud.stderr  # the library's own warning, shown when asked for
