"""What the block scanner and a failed copy's local check make of errors: a replica is
marked corrupt on evidence about it (bad records, EIO), never for want of descriptors."""

from __future__ import annotations

import errno
import os

import pytest

from dfs.codec import checksum_of
from dfs.datanode import scanner
from dfs.datanode.blockstore import BlockStore, ChunkEntry
from dfs.datanode.ioerrors import not_the_replica
from dfs.datanode.replicator import Replicator


def _store_with(tmp_path, *block_ids: int) -> BlockStore:
    store = BlockStore(str(tmp_path / "dn"))
    for b in block_ids:
        w = store.writer(b, 1, 4096)
        rec = os.urandom(100)
        w.write(ChunkEntry(len(rec), 80, checksum_of(rec)), rec)
        w.finalize()
    return store


def _failing_open(code: int):
    def fail(path, *a, **kw):
        raise OSError(code, os.strerror(code), path)
    return fail


@pytest.mark.parametrize("code", [errno.EMFILE, errno.ENFILE, errno.ENOMEM])
def test_running_short_of_descriptors_or_memory_says_nothing_of_the_replica(code):
    assert not_the_replica(OSError(code, os.strerror(code)))


@pytest.mark.parametrize("e", [OSError(errno.EIO, "I/O error"), OSError(errno.EINVAL, "not a regular file"),
                               FileNotFoundError(errno.ENOENT, "gone"), ValueError("meta checksum")])
def test_damage_is_about_the_replica(e):
    assert not not_the_replica(e)


def test_verify_without_descriptors_is_no_verdict(tmp_path, monkeypatch):
    store = _store_with(tmp_path, 1)
    monkeypatch.setattr(scanner, "open_regular", _failing_open(errno.EMFILE))
    with pytest.raises(OSError) as e:
        scanner.verify_replica(store.get(1))
    assert e.value.errno == errno.EMFILE
    monkeypatch.setattr(scanner, "open_regular", _failing_open(errno.EIO))
    assert "Input/output error" in scanner.verify_replica(store.get(1))   # the disk's word: damaged


def test_a_scan_out_of_descriptors_marks_nothing_and_checks_again_next_pass(tmp_path, monkeypatch):
    store = _store_with(tmp_path, 1, 2)
    found = []
    s = scanner.Scanner(store, 60, found.append)
    monkeypatch.setattr(scanner, "open_regular", _failing_open(errno.EMFILE))
    assert s.scan_once() == 0
    assert found == [] and store.corrupt_ids() == []
    monkeypatch.undo()
    with open(store.get(2).data_path, "r+b") as f:   # real damage is still found
        f.write(b"\0" * 8)
    assert s.scan_once() == 1
    assert found == [2] and store.corrupt_ids() == [2]


def test_a_failed_copy_out_of_descriptors_leaves_the_local_replica_alone(tmp_path, monkeypatch):
    store = _store_with(tmp_path, 1)
    found = []
    r = Replicator(store, on_corrupt=found.append)
    try:
        monkeypatch.setattr(scanner, "open_regular", _failing_open(errno.EMFILE))
        r._check_local(store.get(1))
        assert found == [] and not store.get(1).corrupt
        monkeypatch.setattr(scanner, "open_regular", _failing_open(errno.EIO))
        r._check_local(store.get(1))
        assert found == [1] and store.get(1).corrupt
    finally:
        r.shutdown()
