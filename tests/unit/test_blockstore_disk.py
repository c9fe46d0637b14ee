"""BlockStore on a misbehaving disk, without a network: a data dir that refuses writes
is reported full until writable again; replicas damaged while the datanode was down."""

from __future__ import annotations

import collections
import errno
import os
import subprocess

import pytest

from dfs.codec import checksum_of
from dfs.datanode import blockstore
from dfs.datanode.blockstore import BlockStore, ChunkEntry, StorageError

MiB = 1 << 20
Usage = collections.namedtuple("Usage", "total used free")


def _store_one(store: BlockStore, block_id: int) -> None:
    w = store.writer(block_id, 1, 4096)
    rec = os.urandom(100)
    w.write(ChunkEntry(len(rec), 80, checksum_of(rec)), rec)
    w.finalize()


def test_a_full_disk_reports_no_room_until_a_margin_is_freed(tmp_path, monkeypatch):
    store = BlockStore(str(tmp_path / "dn"))
    free = [10 * MiB]
    monkeypatch.setattr(blockstore.shutil, "disk_usage", lambda p: Usage(100 * MiB, 0, free[0]))
    assert store.usage()[2] == 10 * MiB
    told = []
    store.on_failed = lambda: told.append(1)
    err = store.refused(OSError(errno.ENOSPC, "No space left on device"), "writing block 1")
    assert isinstance(err, StorageError) and err.errno == errno.ENOSPC
    assert str(err) == f"{store.root}: No space left on device (writing block 1)"
    assert store.usage()[2] == 0
    store.refused(OSError(errno.ENOSPC, "No space left on device"), "writing block 2")
    assert told == [1]                       # once per failure, for a heartbeat at once
    free[0] += MiB - 1
    assert store.usage()[2] == 0 and store.failed
    free[0] += 1
    assert store.usage()[2] == 11 * MiB and not store.failed


def test_a_disk_that_refuses_new_files_reports_no_room_until_a_probe_succeeds(tmp_path):
    store = BlockStore(str(tmp_path / "dn"))
    subprocess.run(["chattr", "+i", store.tmp], check=True)
    try:
        with pytest.raises(StorageError) as e:
            _store_one(store, 7)
        assert "Operation not permitted (creating block 7)" in str(e.value)
        assert store.usage()[2] == 0 and store.usage()[2] == 0     # the probe fails too
    finally:
        subprocess.run(["chattr", "-i", store.tmp], check=True)
    assert store.usage()[2] > 0 and not store.failed
    assert os.listdir(store.tmp) == []                              # the probe left nothing
    _store_one(store, 7)
    assert store.get(7) is not None


def test_a_replica_whose_data_file_vanished_while_down_is_not_loaded(tmp_path):
    root = str(tmp_path / "dn")
    store = BlockStore(root)
    _store_one(store, 5)
    _store_one(store, 6)
    rep5, rep6 = store.get(5), store.get(6)
    os.close(store._dir_lock)      # as if the datanode had stopped
    os.unlink(rep5.data_path)
    with open(rep6.data_path, "ab") as f:
        f.write(b"x")
    again = BlockStore(root)
    assert again.get(5) is None and not os.path.exists(rep5.meta_path)
    assert again.get(6).corrupt and [r.block_id for r in again.report()] == []


def test_a_tmp_dir_that_cannot_be_emptied_at_start_is_refused_with_its_reason(tmp_path):
    root = str(tmp_path / "dn")
    store = BlockStore(root)
    os.close(store._dir_lock)
    with open(os.path.join(store.tmp, "blk_1_1.0.data"), "wb") as f:
        f.write(b"partial")
    subprocess.run(["chattr", "+i", store.tmp], check=True)
    try:
        with pytest.raises(OSError) as e:
            BlockStore(root)
        assert str(e.value) == (f"[Errno {errno.EPERM}] cannot remove the unfinished writes in it: "
                                f"Operation not permitted: '{store.tmp}'")
    finally:
        subprocess.run(["chattr", "-i", store.tmp], check=True)


def test_a_subdirectory_removed_under_a_running_datanode_is_made_again(tmp_path):
    # rm -r of current/07 while it runs: the next replica placed there used to fail with
    # ENOENT for as long as the datanode ran (it remembered the directory as made).
    import shutil
    store = BlockStore(str(tmp_path / "dn"))
    _store_one(store, 7)
    shutil.rmtree(os.path.join(store.current, "07"))
    _store_one(store, 7 + 256)
    assert store.get(7 + 256) is not None
    assert os.listdir(os.path.join(store.current, "07")) and not store.failed


def test_a_fifo_in_a_replicas_place_is_a_damaged_replica_not_a_hang(tmp_path):
    # open() of a FIFO blocks until a writer comes: a read of the replica, the scanner
    # and a repair copy each left a thread stuck for good.
    from dfs.datanode.scanner import verify_replica
    store = BlockStore(str(tmp_path / "dn"))
    _store_one(store, 9)
    rep = store.get(9)
    for path in (rep.data_path, rep.meta_path):
        saved = path + ".saved"
        os.rename(path, saved)
        os.mkfifo(path)
        with pytest.raises(OSError) as e:
            blockstore.open_regular(path).close()
        assert e.value.errno == errno.EINVAL
        assert "not a regular file" in verify_replica(rep)
        os.unlink(path)
        os.rename(saved, path)
    assert verify_replica(rep) is None
    with blockstore.open_regular(rep.data_path) as f:     # named by its path (drop-behind reopens it)
        assert f.name == rep.data_path
