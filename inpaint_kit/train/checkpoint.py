"""Where a training run lives on disk, and every check that can be made before a model loads (no torch).

Every trainer writes the same layout::

    <output_dir>/training_config.json       the run's record: every setting, step reached, NaN skips, ...
    <output_dir>/checkpoints/step_000500/    accelerate state + trainer_state.json (written to a hidden
                                             .tmp_step_000500 folder, then renamed: never half a checkpoint)
    <output_dir>/logs/                       TensorBoard
    <output_dir>/validation/                 previews (when --validate_every is set)
    <output_dir>/<the trainer's weights>     e.g. lora_unet.safetensors, or config.json + model.safetensors

``trainer_state.json`` is the checkpoint's identity card: which trainer wrote it, the whole config, the
base-model fingerprint, the number of processes and the global batch. ``--resume`` never trusts a
folder name alone: it reads this card and checks it against the run being resumed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..errors import InpaintKitError

STATE_NAME = "trainer_state.json"
CONFIG_NAME = "training_config.json"
CHECKPOINTS = "checkpoints"
TMP_PREFIX = ".tmp_step_"
RUN_FILES = (CHECKPOINTS, CONFIG_NAME, "logs", "validation")  # every trainer's outputs; trainers add their weights
LEGACY_DDPM = "checkpoint.pt"  # train-ddpm before it moved onto accelerate


def checkpoint_name(step: int) -> str:
    """``step_000500``: the folder name of the checkpoint after ``step`` updates."""
    return f"step_{step:06d}"


def _step_of(folder: Path) -> int:
    try:
        return int(folder.name.removeprefix("step_"))
    except ValueError:
        return -1


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints (a ``trainer_state.json`` inside) of ``output_dir``, oldest first by step."""
    root = Path(output_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [c for c in root.glob("step_*") if (c / STATE_NAME).is_file() and _step_of(c) >= 0]
    return sorted(found, key=_step_of)


def find_checkpoint(resume: str, output_dir: str | Path) -> Path:
    """Resolve ``--resume``: ``latest`` = the newest checkpoint in ``output_dir``; a path = that checkpoint
    folder, or the newest checkpoint of that output folder. One-line error when there is none."""
    where = Path(output_dir) if resume == "latest" else Path(resume)
    if (where / STATE_NAME).is_file():
        return where
    found = list_checkpoints(where)
    if found:
        return found[-1]
    if (where / LEGACY_DDPM).is_file():
        raise InpaintKitError(f"--resume {where / LEGACY_DDPM}: a checkpoint of the older train-ddpm, which this "
                              f"version cannot continue; start a new run from its weights with --init_from {where}")
    if not where.exists():
        raise InpaintKitError(f"--resume {resume}: {where} does not exist; nothing to resume (drop --resume to "
                              "start a new run)")
    raise InpaintKitError(f"--resume {resume}: no checkpoint in {where} (looked for {CHECKPOINTS}/step_*/{STATE_NAME}); "
                          "drop --resume to start a new run")


def read_state(checkpoint: str | Path) -> dict:
    """The ``trainer_state.json`` of a checkpoint folder, with one-line errors for a broken one."""
    path = Path(checkpoint) / STATE_NAME
    try:
        state = json.loads(path.read_text())
    except OSError as e:
        raise InpaintKitError(f"--resume {path}: cannot read it ({e.strerror or e})")
    except ValueError as e:
        raise InpaintKitError(f"--resume {path}: not valid JSON ({e}); the checkpoint is damaged, resume an older one")
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict) or "step" not in state:
        raise InpaintKitError(f"--resume {path}: not an inpaint-kit trainer state (no step/config record); it was "
                              "written by another program or an older inpaint-kit: start a new run")
    return state


def held_outputs(output_dir: str | Path, names) -> list[str]:
    """Which of the run-output ``names`` already exist in ``output_dir``."""
    out = Path(output_dir)
    return [n for n in names if (out / n).exists()] if out.is_dir() else []


def check_output_dir(output_dir: str | Path, names, resume_from: Path | None, overwrite: bool) -> None:
    """Refuse an ``output_dir`` that is a file, or that holds another run's outputs (``names``) when this run
    neither resumes it nor ``--overwrite``\\ s it. Read-only: safe on every process."""
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise InpaintKitError(f"--output_dir {out}: is a file, not a folder; choose another --output_dir")
    held = held_outputs(out, names)
    if not held or overwrite:
        return
    if resume_from is not None and out.resolve() in Path(resume_from).resolve().parents:
        return  # continuing the run that lives here
    what = "resuming another folder's checkpoint into it" if resume_from is not None else "a new run"
    raise InpaintKitError(f"--output_dir {out}: already holds a training run ({', '.join(held)}); refusing {what}. "
                          "Pass --resume to continue it, --overwrite to replace it, or choose another --output_dir")


def prepare_output_dir(output_dir: str | Path, names, overwrite: bool) -> list[Path]:
    """Create ``output_dir`` (checking that it is writable), remove the previous run's ``names`` with
    ``overwrite``, and remove stale temporary files and folders left by killed saves. Main process only.
    Returns what was removed."""
    out = Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write_test.{os.getpid()}.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise InpaintKitError(f"--output_dir {out}: not writable ({e.strerror or e}); choose another --output_dir")
    removed = []
    if overwrite:
        for name in held_outputs(out, names):
            _remove(out / name)
            removed.append(out / name)
    return removed + clean_stale(out)


def clean_stale(output_dir: str | Path) -> list[Path]:
    """Remove what killed saves leave behind: ``checkpoints/.tmp_step_*`` folders, the ``.lora.*`` folders of
    :func:`inpaint_kit.train.adapters.save_lora` and the ``.<name>.<pid>.tmp`` files of
    :func:`inpaint_kit.images.atomic_write` (anywhere in the run folder). Returns the removed paths."""
    out = Path(output_dir)
    stale = list((out / CHECKPOINTS).glob(TMP_PREFIX + "*")) + list(out.glob(".lora.*"))
    stale += [p for p in out.rglob(".*.tmp") if p.is_file()]
    for p in stale:
        _remove(p)
    return stale


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
