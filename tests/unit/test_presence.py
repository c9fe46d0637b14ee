"""The replica presence check: the disk-vs-map comparison (pure) and what the
datanode does with a replica whose files were removed by hand (real files)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dfs.codec import checksum_of
from dfs.datanode.blockstore import BlockStore, ChunkEntry, Replica
from dfs.datanode.presence import PresenceCheck, list_dirs, vanished


def rep(bid: int, d: str = "/dn/current/01") -> Replica:
    return Replica(bid, 1, 10, f"{d}/blk_{bid}_1.data", f"{d}/blk_{bid}_1.meta")


def test_vanished_names_what_is_missing():
    a, b, c, d = rep(1), rep(2), rep(3), rep(4, "/dn/current/02")
    listing = {"/dn/current/01": {"blk_1_1.data", "blk_1_1.meta", "blk_2_1.meta", "blk_3_1.data",
                                  "blk_9_1.data", "blk_9_1.meta"}}       # 9: on disk, not in the map
    assert vanished([a, b, c, d], listing) == [(b, "data"), (c, "meta"), (d, "data and meta")]
    assert vanished([a], listing) == []
    assert vanished([], listing) == []


def test_list_dirs_treats_a_missing_directory_as_empty(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_bytes(b"")
    assert list_dirs([str(tmp_path / "x"), str(tmp_path / "gone")]) == {
        str(tmp_path / "x"): {"f"}, str(tmp_path / "gone"): set()}


@pytest.fixture
def store(tmp_path):
    s = BlockStore(str(tmp_path / "dn"))
    yield s
    s.pool.close()


def stored(store: BlockStore, bid: int) -> Replica:
    w = store.writer(bid, 1, 1 << 20)
    rec = os.urandom(100)
    w.write(ChunkEntry(len(rec), len(rec), checksum_of(rec)), rec)
    return w.finalize()


@pytest.mark.parametrize("gone", ["data", "meta", "both"])
def test_a_replica_with_a_file_removed_is_dropped_and_reported(store, gone):
    keep, victim = stored(store, 1), stored(store, 2)
    if gone in ("data", "both"):
        os.unlink(victim.data_path)
    if gone in ("meta", "both"):
        os.unlink(victim.meta_path)
    lost = []
    check = PresenceCheck(store, 60, lambda r, what: lost.append((r.block_id, what)))
    assert check.check_once() == 1
    assert lost == [(2, {"data": "data", "meta": "meta", "both": "data and meta"}[gone])]
    assert store.get(2) is None and store.get(1) is keep
    assert not os.path.exists(victim.data_path) and not os.path.exists(victim.meta_path)   # leftovers too
    assert check.check_once() == 0        # reported once
    assert [r.block_id for r in store.report()] == [1]


def test_drop_lost_rechecks_the_disk_and_the_map(store):
    r = stored(store, 3)
    assert not store.drop_lost(r)              # both files there: a stale listing cannot drop it
    newer = stored(store, 3)                   # replaced meanwhile (same names, new object)
    os.unlink(newer.data_path)
    assert not store.drop_lost(r)              # not the replica the map holds now
    assert store.drop_lost(newer)
    assert not store.drop_lost(newer)          # already gone


def test_a_full_check_of_many_replicas_finds_only_the_lost_ones(store):
    reps = [stored(store, b) for b in range(1, 301)]
    for r in reps[::100]:
        os.unlink(r.data_path)
    lost = []
    assert PresenceCheck(store, 60, lambda r, what: lost.append(r.block_id)).check_once() == 3
    assert sorted(lost) == [1, 101, 201]
    assert len(store.replicas) == 297


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan"])
def test_a_bad_interval_is_one_clear_line(tmp_path, value):
    r = subprocess.run([sys.executable, "-m", "dfs", "datanode", "--data-dir", str(tmp_path / "dn"),
                        "--namenode", "127.0.0.1:1", "--replica-check-interval", value],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2   # a usage error (SPEC §3), found by the parser: see docs/cli.md
    assert r.stderr == (f"dfs: datanode: argument --replica-check-interval: invalid interval '{value}' "
                        "(a number of seconds > 0 and < 1e9); see 'dfs datanode --help'\n")
    assert not (tmp_path / "dn").exists()
