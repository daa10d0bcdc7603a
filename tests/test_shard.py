"""Sharding (inpaint_kit.shard): every item goes to exactly one process; manifests merge into one valid file."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest

from inpaint_kit.errors import InpaintKitError
from inpaint_kit.shard import MANIFEST, Shard, append_line, merge_manifest, parse_shard, part_path, read_lines


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


def test_merge_keeps_one_line_per_output_newest_wins_and_drops_torn_lines(tmp_path):
    (tmp_path / MANIFEST).write_text(json.dumps({"output": "a", "status": "failed"}) + "\n")
    p0, p1 = part_path(tmp_path, Shard(0, 2)), part_path(tmp_path, Shard(1, 2))
    append_line(p0, {"output": "a", "status": "ok"})
    append_line(p1, {"output": "b", "status": "ok"})
    with open(p1, "a") as f:
        f.write('{"output": "c", "sta')  # a writer killed mid-line (not possible with append_line)
    merge_manifest(tmp_path)
    records = read_lines(tmp_path / MANIFEST)
    assert [(r["output"], r["status"]) for r in records] == [("a", "ok"), ("b", "ok")]
    assert not list(tmp_path.glob(".manifest.*.jsonl"))  # parts folded in
    merge_manifest(tmp_path)  # idempotent
    assert read_lines(tmp_path / MANIFEST) == records


def _writer(folder, index, n):
    shard = Shard(index, 4)
    for k in range(n):
        append_line(part_path(folder, shard), {"output": f"{index}-{k}", "pad": "x" * 3000})
        if k % 7 == 0:
            merge_manifest(folder)  # concurrent merges while others append


def test_concurrent_jobs_append_and_merge_without_losing_or_tearing_lines(tmp_path):
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(tmp_path, i, 40)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    merge_manifest(tmp_path)
    lines = (tmp_path / MANIFEST).read_text().splitlines()
    assert len(lines) == 160 and len({json.loads(x)["output"] for x in lines}) == 160
