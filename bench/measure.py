"""What the training benchmarks measure in their child processes, and how they publish it: one place for
the process's memory counters, the timed-updates loop and the environment line."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from markdown_section import write_section  # bench/ is on sys.path when a bench script runs


def status(field: str) -> int:
    """A ``VmRSS``/``VmHWM`` value of this process in bytes (Linux ``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def time_updates(trainer, steps: int) -> dict:
    """One warm-up update (allocator, first-call overheads; not timed), then ``steps`` timed ones with the peak
    RSS reset to the current RSS: the median wall time, the mean process CPU time, the peak RSS and its growth
    during the timed updates (gradients, optimizer state, activations)."""
    trainer.train_step()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS to the current RSS
    rss0 = status("VmRSS")
    wall, cpu = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.train_step()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    median = sorted(wall)[len(wall) // 2]
    return {"steps_per_s": 1.0 / median, "s_per_step": median, "cpu_s_per_step": sum(cpu) / len(cpu),
            "peak_rss": status("VmHWM"), "train_rss": status("VmHWM") - rss0}


def environment(threads: int, details: str) -> str:
    """The line every table is published with: torch version, threads, CPUs and the load at the end."""
    import torch

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"Environment: torch {torch.__version__}, {threads} torch thread(s) on {os.cpu_count()} CPUs (load "
            f"average {load} at the end: other jobs shared the machine), {details}.")


def publish(markdown: Path | None, script: str, argv, section: str, notes: str, body: str, env: str) -> None:
    """Print ``body`` and ``env``; with ``markdown``, also write the section (notes, the command, body, env)."""
    print(body + "\n\n" + env)
    if markdown:
        command = f"python bench/{script} " + " ".join(argv if argv is not None else sys.argv[1:])
        write_section(markdown, section, "\n\n".join([notes, f"Command: `{command.strip()}`", body, env]))
        print(f"updated {markdown}", file=sys.stderr)
