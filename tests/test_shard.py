"""Sharding (inpaint_kit.shard): every item goes to exactly one process; manifests merge into one valid file."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest

from inpaint_kit.errors import InpaintKitError
from inpaint_kit.shard import Shard, parse_shard


@pytest.mark.parametrize("count,world", [(1, 1), (1, 2), (3, 1), (2, 3), (4, 2)])
def test_shards_and_ranks_partition_the_items_in_order(count, world):
    items = list(range(23))
    taken = [Shard(i, count, r, world).take(items) for i in range(count) for r in range(world)]
    assert sorted(x for t in taken for x in t) == items  # each item exactly once
    assert all(t == sorted(t) for t in taken)
    assert max(map(len, taken)) - min(map(len, taken)) <= 1 + (count > 1 and world > 1)
    assert Shard(0, 1, 1, 2).take(items) == items[1::2]  # rank k takes items k, k+world, ...


@pytest.mark.parametrize("bad", ["3", "a/b", "4/4", "-1/2", "0/0", "1/2/3"])
def test_bad_shard_is_one_line_naming_the_form(bad):
    with pytest.raises(InpaintKitError, match=r"--shard"):
        parse_shard(bad)
    assert parse_shard("2/4") == (2, 4) and parse_shard(None) == (0, 1)


def _writer(folder, index, n):
    from inpaint_kit.batch import append_manifest, compact_manifest

    for k in range(n):
        append_manifest(folder, {"output": f"{index}-{k}", "pad": "x" * 3000})
        if k % 7 == 0:
            compact_manifest(folder)  # another process compacting while the others append


def test_processes_sharing_a_manifest_never_tear_or_lose_lines(tmp_path):
    """What sharded processes and independent --shard jobs do to one output folder's manifest."""
    from inpaint_kit.batch import MANIFEST, compact_manifest

    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(tmp_path, i, 40)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    compact_manifest(tmp_path)
    lines = (tmp_path / MANIFEST).read_text().splitlines()
    assert len(lines) == 160 and len({json.loads(x)["output"] for x in lines}) == 160
