"""Run under ``torchrun --nproc_per_node N``: train each phase of a JSON plan on every process and report
what each rank ended with (its trainable weights, step) and what it wrote inside the run folders.

Writes are observed with a Python audit hook (``open`` for writing, ``mkdir``, ``rename``/``replace``,
``remove``): every file a trainer writes is created through one of them (checkpoints are filled inside a
freshly made temporary folder, then renamed), so a rank that records none wrote nothing. Used by
tests/test_train_distributed.py and bench/bench_scale_train.py; not a test module itself."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

WRITE_EVENTS = ("os.mkdir", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree")


def watch(roots: list[str], writes: list[str]) -> None:
    roots = [os.path.realpath(r) for r in roots]

    def inside(path) -> bool:
        if not isinstance(path, (str, bytes, os.PathLike)):
            return False
        p = os.path.realpath(os.fsdecode(path))
        return any(p == r or p.startswith(r + os.sep) for r in roots)

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writing = (mode and any(c in mode for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            if writing and inside(path):
                writes.append(f"open {path}")
        elif event in WRITE_EVENTS and args and (inside(args[0]) or (len(args) > 1 and inside(args[1]))):
            writes.append(f"{event} {args[0]}")

    sys.addaudithook(hook)


TRAINERS = {  # short names; any other trainer: "package.module:TrainerClass package.module:ConfigClass"
    "lora": "inpaint_kit.train.lora.trainer:LoraTrainer inpaint_kit.train.lora.config:LoraTrainConfig",
    "ddpm": "inpaint_kit.train.ddpm.trainer:DdpmTrainer inpaint_kit.train.ddpm.config:DdpmTrainConfig",
}


def load(spec: str):
    import importlib

    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def run_phase(phase: dict):
    """One training run (or a resume) of a Trainer subclass on its config's ``from_options`` (so a resume
    takes the run's settings, as ``--resume`` does): returns the trainer, its result and the seconds."""
    cls, cfg_cls = (load(s) for s in TRAINERS.get(phase["trainer"], phase["trainer"]).split())
    trainer = cls(cfg_cls.from_options(phase["config"]))
    step, trainer.step_seconds = trainer.train_step, []

    def timed_step():  # wall time of each update (the ranks meet at every gradient all-reduce)
        t = time.perf_counter()
        loss = step()
        trainer.step_seconds.append(time.perf_counter() - t)
        return loss

    trainer.train_step = timed_step
    t0 = time.perf_counter()
    result = trainer.run()
    return trainer, result, time.perf_counter() - t0


def main() -> None:
    import torch
    from safetensors.torch import save_file

    from inpaint_kit.train.trainer import trainable_state_dict

    plan = json.loads(Path(sys.argv[1]).read_text())
    torch.set_num_threads(plan.get("threads", 1))
    rank = int(os.environ.get("RANK", "0"))
    report = Path(plan["report"])
    writes: list[str] = []
    watch([p["config"]["output_dir"] for p in plan["phases"]], writes)
    for i, phase in enumerate(plan["phases"]):
        start = len(writes)
        trainer, result, seconds = run_phase(phase)
        weights = trainable_state_dict(trainer.acc.unwrap_model(trainer.models[0]))
        save_file(weights, str(report / f"{i}_rank{rank}.safetensors"))
        (report / f"{i}_rank{rank}.json").write_text(json.dumps({
            "rank": rank, "processes": trainer.acc.num_processes, "step": result.step, "losses": result.losses,
            "seconds": seconds, "train_seconds": result.seconds,
            "step_seconds": trainer.step_seconds, "global_batch": trainer.cfg.batch * trainer.acc.num_processes,
            "threads": torch.get_num_threads(), "writes": writes[start:]}))


if __name__ == "__main__":
    main()
