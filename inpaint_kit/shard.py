"""Sharding batch runs over processes, GPUs and machines.

We schedule nothing ourselves: ``torchrun`` / ``accelerate launch`` start the processes (and, across
machines, their multi-node launch connects them); each process reads its place from accelerate's
``PartialState`` and takes every ``count``-th item of the sorted, deterministic item list. Users who
start independent jobs themselves (one per node of a cluster queue) pass ``--shard i/n`` instead (or as
well: the two compose). A row's seed never depends on the shard, so outputs are those of one process.

Manifest lines: every process appends to its own part file ``.manifest.<tag>.jsonl`` beside
``manifest.jsonl``; at the end of a run (and at the start of the next one, for parts left by a killed
run) the parts are merged into ``manifest.jsonl`` under a file lock, keeping one line per output (the
newest), and written atomically. Independent ``--shard`` jobs may merge concurrently: the lock orders them.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import InpaintKitError
from .images import atomic_write

MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class Shard:
    """This process's share of a batch: items ``k`` with ``k % count == index`` of the ``--shard`` part,
    then, when launched with several processes, every ``world``-th of those for ``rank``."""

    index: int = 0  # --shard i (0-based)
    count: int = 1  # --shard n
    rank: int = 0  # process rank from torchrun / accelerate launch
    world: int = 1  # number of launched processes

    @property
    def is_main(self) -> bool:
        """The process that merges and prints the report of a launched group (rank 0)."""
        return self.rank == 0

    @property
    def launched(self) -> bool:
        return self.world > 1

    @property
    def active(self) -> bool:
        return self.count > 1 or self.world > 1

    def take(self, items: list) -> list:
        """This process's items, in order; the union over every shard and rank is ``items``, once each."""
        mine = items[self.index :: self.count]
        return mine[self.rank :: self.world]

    def tag(self) -> str:
        """A file-name tag unique to this process of this run (host and pid guard against reuse of a
        stale part by a later run with the same layout)."""
        return f"shard{self.index}of{self.count}.rank{self.rank}of{self.world}.{socket.gethostname()}.{os.getpid()}"

    def describe(self) -> str:
        parts = []
        if self.count > 1:
            parts.append(f"shard {self.index}/{self.count}")
        if self.world > 1:
            parts.append(f"rank {self.rank} of {self.world} processes")
        return ", ".join(parts) or "one process"


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` (0 <= i < n) -> ``(i, n)``; None -> ``(0, 1)``."""
    if text is None:
        return 0, 1
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise InpaintKitError(f"--shard {text!r}: expected i/n, e.g. --shard 0/4 for the first of four jobs") from None
    if n < 1 or not 0 <= i < n:
        raise InpaintKitError(f"--shard {text}: needs 0 <= i < n (the shards of 4 jobs are 0/4, 1/4, 2/4, 3/4)")
    return i, n


def launched_world() -> tuple[int, int]:
    """``(rank, world_size)`` from the environment torchrun and accelerate launch set; (0, 1) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def current(shard: str | None = None) -> Shard:
    """This process's :class:`Shard`. When launched with several processes, the process group is set up
    through accelerate's ``PartialState`` (gloo on CPU, NCCL on GPUs), which also gives the device."""
    index, count = parse_shard(shard)
    rank, world = launched_world()
    if world > 1:
        state = partial_state()
        rank, world = state.process_index, state.num_processes
    return Shard(index, count, rank, world)


def partial_state():
    from accelerate import PartialState

    return PartialState()


def device_for(shard: Shard, device: str | None) -> str | None:
    """The device a launched process uses when ``--device`` is not given: its own (one GPU per process),
    as accelerate assigns it."""
    if device is not None or not shard.launched:
        return device
    return str(partial_state().device)


def wait_for_everyone(shard: Shard) -> None:
    if shard.launched:
        partial_state().wait_for_everyone()


def gather(shard: Shard, value) -> list:
    """``[value of rank 0, value of rank 1, ...]`` on every rank (``[value]`` when not launched)."""
    if not shard.launched:
        return [value]
    import torch.distributed as dist

    out = [None] * shard.world
    dist.all_gather_object(out, value)
    return out


# --- the manifest -----------------------------------------------------------------------------

def part_path(output_dir: Path, shard: Shard) -> Path:
    return Path(output_dir) / f".manifest.{shard.tag()}.jsonl"


def append_line(path: Path, record: dict) -> None:
    """Append one JSON line with a single ``write`` on an ``O_APPEND`` descriptor, under the folder's
    manifest lock (so a concurrent merge never drops it); a killed process leaves whole lines."""
    data = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    with locked(path.parent):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


@contextmanager
def locked(output_dir: Path):
    """An exclusive lock on ``<output_dir>/.manifest.lock`` (processes on one machine, or a file system
    with working POSIX locks)."""
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(output_dir) / ".manifest.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_lines(path: Path) -> list[dict]:
    """The records of a JSON-lines file; a torn last line (a killed writer) is dropped."""
    records = []
    if not path.is_file():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def merge_manifest(output_dir: Path) -> Path:
    """Fold every part file into ``manifest.jsonl``: one line per output (the newest record wins, in file
    order: the manifest first, then the parts by modification time), written atomically, parts removed."""
    output_dir = Path(output_dir)
    final = output_dir / MANIFEST
    with locked(output_dir):
        parts = sorted(output_dir.glob(".manifest.*.jsonl"), key=lambda p: (p.stat().st_mtime, p.name))
        if not parts and final.exists():
            return final
        by_output: dict[str, dict] = {}
        for path in [final, *parts]:
            for record in read_lines(path):
                key = record.get("output") or json.dumps(record, sort_keys=True)
                by_output.pop(key, None)  # re-insert: the newest record goes last
                by_output[key] = record
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in by_output.values())
        atomic_write(final, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        for path in parts:
            path.unlink(missing_ok=True)
    return final
