"""Sharded batch restoration (issue 14): under ``torchrun --nproc_per_node 2`` each item is restored once,
with the pixels of a single-process run, one manifest line per item and one report; ``--shard i/n``
jobs add up to the whole batch; a run resumes with another number of processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaint_kit.cli import main
from inpaint_kit.images import load_image

BIN = Path(sys.executable).parent
N = 5


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    rng = np.random.default_rng(0)
    for sub in ("imgs", "masks"):
        (root / sub).mkdir()
    for k in range(N):
        h, w = 40 + 4 * k, 56
        Image.fromarray(rng.integers(0, 256, (h, w, 3), np.uint8)).save(root / "imgs" / f"im{k}.png")
        m = np.full((h, w), 255, np.uint8)
        m[10:20, 8 + k : 30 + k] = 0
        Image.fromarray(m).save(root / "masks" / f"im{k}.png")
    (root / "imgs" / "broken.png").write_bytes(b"not a png")  # fails on whichever process gets it
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "masks" / "broken.png")
    return root


def args(batch: Path, model: Path, out: Path, *extra) -> list[str]:
    return ["infer", "--model", str(model), "--batch_imgs_dir", str(batch / "imgs"), "--batch_masks_dir",
            str(batch / "masks"), "--output_dir", str(out), "--size", "64", "--steps", "2", "--rows", "2",
            "--seed", "3", "--save_rows", "--device", "cpu", "--no_progress", *extra]


def torchrun(argv: list[str], nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(BIN / "torchrun"), "--standalone", f"--nproc_per_node={nproc}", "-m", "inpaint_kit", *argv]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def pixels(out: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(out)): load_image(p) for p in sorted(out.rglob("*.png"))}


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def single(batch, tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    assert main(args(batch, tiny_model_dir, out)) == 1  # the broken item fails, the rest is written
    return out


def test_two_processes_restore_each_item_once_with_single_process_pixels(batch, tiny_model_dir, single, tmp_path):
    out = tmp_path / "two"
    done = torchrun(args(batch, tiny_model_dir, out))
    assert done.returncode == 1, done.stderr[-3000:]  # the broken item, on one rank, fails the run
    ref, got = pixels(single), pixels(out)
    assert sorted(got) == sorted(ref) and len(ref) == N * 3  # collage + 2 rows per good item
    assert all(np.array_equal(got[k], ref[k]) for k in ref)
    lines = manifest(out)
    assert len(lines) == N + 1 and len({r["output"] for r in lines}) == N + 1
    assert sum(r["status"] == "ok" for r in lines) == N
    # one report, from rank 0, summing both ranks
    summaries = [ln for ln in done.stderr.splitlines() if "written," in ln]
    assert len(summaries) == 1 and f"{N} written" in summaries[0] and "1 failed" in summaries[0]
    assert "rank 0 of 2 processes" in summaries[0]


def test_shard_jobs_add_up_and_resume_with_another_process_count(batch, tiny_model_dir, single, tmp_path, capsys):
    out = tmp_path / "shards"
    # sorted items: broken, im0 .. im4; shard 0/3 takes items 0 and 3: broken (fails) and im2
    assert main(args(batch, tiny_model_dir, out, "--shard", "0/3")) == 1
    assert sorted(pixels(out)) == ["im2_collage.png", "im2_row0_seed3.png", "im2_row1_seed4.png"]
    assert "[shard 0/3] 1 written, 0 skipped (already done), 1 failed" in capsys.readouterr().err
    # the rest, resumed by two launched processes: im2 is skipped, not redone
    done = torchrun(args(batch, tiny_model_dir, out))
    summary = [ln for ln in done.stderr.splitlines() if "written," in ln][0]
    assert f"{N - 1} written, 1 skipped" in summary
    ref, got = pixels(single), pixels(out)
    assert sorted(got) == sorted(ref) and all(np.array_equal(got[k], ref[k]) for k in ref)
    assert len(manifest(out)) == N + 1


def test_bad_shard_is_a_one_line_error(batch, tiny_model_dir, tmp_path, capsys):
    assert main(args(batch, tiny_model_dir, tmp_path / "o", "--shard", "3/3")) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--shard 3/3" in err
    assert not (tmp_path / "o").exists()
