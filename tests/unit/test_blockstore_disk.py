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


# -- a data dir that cannot be read back: dead --------------------------------------------------


def test_only_errors_of_a_dead_disk_count_towards_its_death():
    eio, gone, emfile = (OSError(e, os.strerror(e)) for e in (errno.EIO, errno.ENOENT, errno.EMFILE))
    assert blockstore.unreadable_strikes(0, eio) == 1
    assert blockstore.unreadable_strikes(1, gone) == 2
    assert blockstore.unreadable_strikes(1, emfile) == 1    # the process is short of fds, not the disk
    assert blockstore.unreadable_strikes(1, None) == 0      # it read fine: a glitch, forgotten


def test_a_data_dir_that_cannot_be_read_back_dies_and_forgets_its_replicas(tmp_path, monkeypatch, caplog):
    store = BlockStore(str(tmp_path / "dn"))
    _store_one(store, 7)
    _store_one(store, 8)
    assert store.usage()[1] > 0 and not store.dead
    calls = []

    def dead_disk(path):
        calls.append(path)
        raise OSError(errno.EIO, "Input/output error", path)

    monkeypatch.setattr(blockstore, "read_back", dead_disk)
    cap, used, free = store.usage()
    assert (cap, free) == (0, 0) and used > 0 and not store.dead     # one failure: no room, not dead yet
    assert store.get(7) is not None
    assert store.usage() == (0, 0, 0) and store.dead == "Input/output error"
    assert store.get(7) is None and store.report() == [] and store.snapshot() == []
    dead = [r.getMessage() for r in caplog.records if "is dead" in r.getMessage()]
    assert dead == [f"data dir {store.root} is dead: it cannot be read back (Input/output error); its 2 "
                    "replicas are no longer served or reported (the namenode copies them elsewhere) until "
                    "a restart"]
    store.usage()
    assert len(calls) == 2                 # dead for good: no more checks, no more lines
    with pytest.raises(StorageError):      # a write under way when it died is not taken back
        _store_one(store, 9)
    assert store.get(9) is None
    # Nothing was deleted: a restart (the disk back) loads and reports them again.
    os.close(store._dir_lock)
    monkeypatch.undo()
    assert {r.block_id for r in BlockStore(store.root).report()} == {7, 8}


def test_a_data_dir_removed_under_the_store_dies_without_a_traceback(tmp_path):
    # rm -rf of the whole data dir: every heartbeat used to fail in statfs (ENOENT) and
    # log "heartbeat failed" with a traceback, for as long as the datanode ran.
    import shutil
    store = BlockStore(str(tmp_path / "dn"))
    _store_one(store, 7)
    store.pool.close()   # its keeper may be making spares: rm -rf again until all is gone
    while os.path.exists(store.root):
        shutil.rmtree(store.root, ignore_errors=True)
    assert store.usage()[::2] == (0, 0) and not store.dead
    assert store.usage() == (0, 0, 0) and store.dead == "No such file or directory"


def test_a_read_only_or_full_data_dir_is_not_dead(tmp_path, monkeypatch):
    store = BlockStore(str(tmp_path / "dn"))
    _store_one(store, 7)
    subprocess.run(["chattr", "+i", store.tmp], check=True)
    try:
        with pytest.raises(StorageError):
            _store_one(store, 8)
        for _ in range(3):
            assert store.usage()[2] == 0         # refuses writes: no room ...
        assert store.failed and not store.dead   # ... but reads back: serves on
        assert store.get(7) is not None
    finally:
        subprocess.run(["chattr", "-i", store.tmp], check=True)
    # The free space held still: other processes on this disk (a parallel test deleting
    # a big file) could free FULL_MARGIN meanwhile, which is "writable again".
    frozen = blockstore.shutil.disk_usage(store.root)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(blockstore.shutil, "disk_usage", lambda path: usage(*frozen))
    store.refused(OSError(errno.ENOSPC, "No space left on device"), "writing block 9")
    for _ in range(3):
        store.usage()
    assert store.failed and not store.dead and store.get(7) is not None


def _du(root) -> int:
    """Bytes the replica files take on disk, as `du` counts them."""
    return sum(os.stat(os.path.join(d, f)).st_blocks * 512
               for d, _, files in os.walk(os.path.join(root, "current")) for f in files)


def test_used_is_what_the_replicas_take_on_disk_not_their_records(tmp_path):
    """A small file's replica is two files of a few hundred bytes each taking whole
    file-system blocks: "used" counts those (as HDFS's du-based DFS Used), also after a
    restart. It counted the data records alone: 100 x 100 bytes said 10 KB, not ~800 KB."""
    root = str(tmp_path / "dn")
    store = BlockStore(root)
    for b in range(100):
        _store_one(store, b + 1)
    on_disk = _du(root)
    assert on_disk >= 100 * 2 * 512                       # two files per replica, each blocks of its own
    assert store.usage()[1] == on_disk
    store.delete(50)
    assert store.usage()[1] == _du(root) < on_disk
    os.close(store._dir_lock)                            # as the process's exit would
    assert BlockStore(root).usage()[1] == _du(root)      # loaded from disk at a restart


def test_a_hand_edited_identity_of_the_wrong_shape_is_refused_at_start(tmp_path):
    # {"uuid": 5} was taken: the datanode said "listening", then logged a heartbeat
    # TypeError every beat, for ever; {"uuid": ""} registered as "".
    assert blockstore.parse_identity({"uuid": "u1"}) == ("u1", "")
    assert blockstore.parse_identity({"uuid": "u1", "cluster_id": "CID-x"}) == ("u1", "CID-x")
    bad = [('{"uuid": 5}', '"uuid" is 5: a non-empty string of printable characters expected'),
           ('{"uuid": ""}', '"uuid" is "": a non-empty string of printable characters expected'),
           ('{"cluster_id": "CID-x"}', '"uuid" is null: a non-empty string of printable characters expected'),
           ('{"uuid": "u1", "cluster_id": ["CID-x"]}', '"cluster_id" is ["CID-x"]: a string expected'),
           ('{"uuid": "a\\nb"}', '"uuid" is "a\\nb": a non-empty string of printable characters expected'),
           ('[' * 100000 + ']' * 100000, ""),   # a RecursionError in json: a traceback
           ('["u1"]', "not a JSON object: list"),
           ('{"uuid": ', "")]   # not JSON: as before
    for i, (text, why) in enumerate(bad):
        root = tmp_path / f"dn{i}"   # a BlockStore that refuses to start keeps its dir locked
        root.mkdir()
        ident = root / "datanode.json"
        ident.write_text(text)
        with pytest.raises(OSError) as e:
            BlockStore(str(root))
        assert (e.value.filename, e.value.strerror) == (
            str(ident), "damaged datanode identity file" + (f" ({why})" if why else "")), text
