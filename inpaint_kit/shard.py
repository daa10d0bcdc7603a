"""Sharding batch runs over processes, GPUs and machines.

We schedule nothing ourselves: ``torchrun`` / ``accelerate launch`` start the processes (and, across
machines, their multi-node launch connects them); each process reads its place from accelerate's
``PartialState`` and takes every ``count``-th item of the sorted, deterministic item list. Users who
start independent jobs themselves (one per node of a cluster queue) pass ``--shard i/n`` instead (or as
well: the two compose). A row's seed never depends on the shard, so outputs are those of one process.

Every process appends its manifest lines to the one ``manifest.jsonl`` under a file lock, and the
file is compacted to one line per item under the same lock (:mod:`inpaint_kit.batch`), so processes and
independent ``--shard`` jobs sharing an output folder never tear or lose lines. Resume decides per item
from the files on disk, so a run may resume with another number of processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import InpaintKitError


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


def current(shard: str | None = None, device: str | None = None) -> Shard:
    """This process's :class:`Shard`. When launched with several processes, the process group is set up
    through accelerate's ``PartialState`` (gloo on CPU, NCCL on GPUs), which also gives the device:
    CPU processes when ``device`` is ``cpu`` or the machine has no CUDA (accelerate only forms a group of
    CPU processes when asked to)."""
    index, count = parse_shard(shard)
    rank, world = launched_world()
    if world > 1:
        import torch

        cpu = (device or "").startswith("cpu") or not torch.cuda.is_available()
        state = partial_state(cpu=cpu)
        rank, world = state.process_index, state.num_processes
    return Shard(index, count, rank, world)


def partial_state(cpu: bool = False):
    """accelerate's process state (one per process: the first call decides ``cpu``)."""
    from accelerate import PartialState

    return PartialState(cpu=cpu)


def device_for(shard: Shard, device: str | None) -> str | None:
    """The device a launched process uses when ``--device`` is not given: its own (one GPU per process),
    as accelerate assigns it."""
    if device is not None or not shard.launched:
        return device
    dev = partial_state().device
    return "cpu" if dev.type == "cpu" else str(dev)


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
