"""Namenode durability without sockets: a NameSystem on a file-backed SqliteStore.

- Metadata that cannot be stored (a full disk: a COMMIT made to fail as SQLite's
  does on ENOSPC): the failed calls fail with MetadataStoreError and nothing of them
  is kept - not on disk, not in memory, and no replica is deleted on their behalf.
- Leases restart with the namenode.
- The retry cache: a retried call gets its first outcome, across a restart.
- Metadata that cannot be read (no file descriptor left for the read snapshot of
  fsck and du): MetadataStoreError saying why, not an internal error."""

from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from dfs import errors
from dfs.namenode import store as store_module
from dfs.namenode.namespace import LEASE_SOFT_LIMIT, Caller
from dfs.namenode.namesystem import RETRY_CACHE_SECONDS
from dfs.namenode.store import SqliteStore
from tests.unit.test_namesystem import BS, ROOT, Clock, beat, make, register, start, write

KEY = os.urandom(32)
NEW = dict(overwrite=False, replication=0, block_size=BS, mode=0o644, create_parent=False)
GONE = Caller("root", ("supergroup",), client_name="client-gone")


class _FullDisk:
    """The store's connection, whose COMMIT fails while ``full`` (as SQLITE_FULL does)."""

    def __init__(self, db: sqlite3.Connection):
        self.db, self.full = db, False

    def execute(self, sql: str, *args):
        if self.full and sql == "COMMIT":
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.db, name)


def _store(tmp_path) -> tuple[SqliteStore, _FullDisk]:
    store = SqliteStore(str(tmp_path / "ns.db"))
    store._db = disk = _FullDisk(store._db)  # type: ignore[assignment]
    return store, disk


def _invalidations(ns, nodes) -> set[int]:
    return {b for cmds in beat(ns, nodes).values() for b in cmds.invalidate}


def test_a_delete_that_cannot_be_committed_keeps_the_file_and_its_replicas(tmp_path):
    store, disk = _store(tmp_path)
    ns = make(store)
    nodes = register(ns, 3)
    _, blocks, _ = write(ns, "/keep", [BS, 100])
    disk.full = True
    full = "namenode cannot store its metadata: database or disk is full"
    with pytest.raises(errors.MetadataStoreError, match=full):
        ns.delete(ROOT, "/keep", recursive=False)
    assert ns.stat(ROOT, "/keep").size == BS + 100
    assert _invalidations(ns, nodes) == set()          # no replica of it is deleted
    assert all(len(ns.bmap.holders(b)) == 3 for b, _ in blocks)
    with pytest.raises(errors.MetadataStoreError):
        ns.rename(ROOT, "/keep", "/moved", overwrite=False)
    assert ns.stat(ROOT, "/keep") and ns.stat(ROOT, "/") is not None
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.stat(ROOT, "/moved")
    # Space again: the same calls work, and only now are the replicas deleted.
    disk.full = False
    ns.rename(ROOT, "/keep", "/moved", overwrite=False)
    assert ns.delete(ROOT, "/moved", recursive=False)
    assert _invalidations(ns, nodes) == {b for b, _ in blocks}


def test_a_failed_complete_leaves_the_file_open_and_its_writer_can_complete_it_later(tmp_path):
    store, disk = _store(tmp_path)
    ns = make(store)
    register(ns, 3)
    row, _, _ = ns.create(ROOT, "/w", overwrite=False, replication=0, block_size=BS, mode=0o644,
                          create_parent=False, complete=False)
    lb = ns.add_block(ROOT, row["id"], None, [], [])
    addrs = [d.address for d in lb.locations]
    disk.full = True
    with pytest.raises(errors.MetadataStoreError):
        ns.complete(ROOT, row["id"], (lb.block_id, 77), addrs)
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.stat(ROOT, "/w")
    info = ns.bmap.blocks[lb.block_id]
    assert not info.complete and lb.block_id in ns.bmap.writing   # memory as the store has it
    disk.full = False
    assert ns.complete(ROOT, row["id"], (lb.block_id, 77), addrs).size == 77
    assert ns.bmap.blocks[lb.block_id].complete


def test_a_lost_commit_fails_every_call_that_shared_it_and_forgets_blocks_it_allocated(tmp_path):
    store, disk = _store(tmp_path)
    ns = make(store)
    register(ns, 3)
    write(ns, "/a", [10])
    row, _, _ = ns.create(ROOT, "/b", overwrite=False, replication=0, block_size=BS, mode=0o644,
                          create_parent=False, complete=False)
    disk.full = True
    with pytest.raises(errors.MetadataStoreError):
        ns.add_block(ROOT, row["id"], None, [], [])
    # The allocation was never stored: the block map does not know the block either.
    assert set(ns.bmap.blocks) == {b["id"] for b in store.blocks(ns.stat(ROOT, "/a").inode_id)}
    disk.full = False
    lb = ns.add_block(ROOT, row["id"], None, [], [])
    addrs = [d.address for d in lb.locations]
    assert ns.complete(ROOT, row["id"], (lb.block_id, 5), addrs).size == 5


def test_the_store_survives_a_reopen_after_a_failed_commit(tmp_path):
    store, disk = _store(tmp_path)
    ns = make(store)
    register(ns, 3)
    write(ns, "/a", [BS, 3])
    disk.full = True
    with pytest.raises(errors.MetadataStoreError):
        write(ns, "/b", [4])
    with pytest.raises(errors.MetadataStoreError):
        ns.mkdir(ROOT, "/d", parents=False, mode=0o755)
    disk.full = False
    ns.mkdir(ROOT, "/d", parents=False, mode=0o755)
    store.close()
    ns2 = make(SqliteStore(str(tmp_path / "ns.db")))
    _, entries, _ = ns2.listdir(ROOT, "/", "", 100)
    assert [(e.path, e.size) for e in entries] == [("/a", BS + 3), ("/d", 0)]


def test_a_statement_that_finds_the_database_full_fails_only_its_call(tmp_path):
    # SQLITE_FULL from a write itself (max_page_count stands in for the disk): the
    # call fails with the clear error, earlier files are intact.
    store = SqliteStore(str(tmp_path / "ns.db"))
    ns = make(store)
    register(ns, 3)
    write(ns, "/a", [BS])
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(errors.MetadataStoreError, match="database or disk is full"):
        for i in range(2000):
            ns.mkdir(ROOT, f"/dir-with-a-long-name-{i:05d}-" + "x" * 200, parents=False, mode=0o755)
    assert ns.stat(ROOT, "/a").size == BS
    store._db.execute("PRAGMA max_page_count = 1073741823")
    ns.mkdir(ROOT, "/later", parents=False, mode=0o755)
    assert ns.stat(ROOT, "/later").is_dir


# -- leases across a restart -------------------------------------------------------


def test_leases_restart_with_the_namenode(tmp_path):
    clock = Clock()
    ns = make(SqliteStore(str(tmp_path / "ns.db")), clock)
    nodes = register(ns, 3)
    renewing, silent = start(ns, "/renewing"), start(ns, "/silent", GONE)
    ns.store.close()
    clock.advance(10 * LEASE_SOFT_LIMIT)       # the namenode was down far longer than a lease
    ns = make(SqliteStore(str(tmp_path / "ns.db")), clock)
    for d in nodes:
        ns.register(d)
    assert not ns.in_safemode()
    ns.tick()
    # Neither writer has had a chance to renew since the restart: both keep their file.
    assert ns.store.get(renewing["id"]) and ns.store.get(silent["id"])
    clock.advance(LEASE_SOFT_LIMIT / 2)
    ns.renew_lease(ROOT)                        # /renewing's writer is back; /silent's is gone
    clock.advance(LEASE_SOFT_LIMIT / 2 - 1)
    ns.tick()
    assert ns.store.get(silent["id"]) is not None               # still within a lease of the start
    clock.advance(2)
    ns.tick()
    assert ns.store.get(silent["id"]) is None                   # a lease from the start, then gone
    assert ns.store.get(renewing["id"]) is not None             # renewed: kept


# -- the retry cache -----------------------------------------------------------------


def _call(n: int, caller: Caller = ROOT) -> Caller:
    return dataclasses.replace(caller, call_id=n)


def test_a_retried_mutation_gets_its_first_outcome_even_after_a_restart(tmp_path):
    clock = Clock()
    ns = make(SqliteStore(str(tmp_path / "ns.db")), clock, master_key=KEY)
    register(ns, 3)
    row, key, _ = ns.create(_call(1), "/f", **NEW, complete=False)
    lb = ns.add_block(_call(2), row["id"], None, [], [])
    addrs = [d.address for d in lb.locations]
    done = ns.complete(_call(3), row["id"], (lb.block_id, 9), addrs)
    ns.mkdir(_call(4), "/d", parents=False, mode=0o755)
    moved = ns.rename(_call(5), "/f", "/d/g", overwrite=False)
    ns.store.close()
    # The namenode was killed before any of these replies left: the client retries each.
    ns = make(SqliteStore(str(tmp_path / "ns.db")), clock, master_key=KEY)
    nodes = register(ns, 3)
    assert ns.in_safemode()        # no block reported yet: retries are answered all the same
    row2, key2, _ = ns.create(_call(1), "/f", **NEW, complete=False)
    assert (row2["id"], key2) == (row["id"], key)
    assert ns.complete(_call(3), row["id"], (lb.block_id, 9), addrs) == done
    assert ns.mkdir(_call(4), "/d", parents=False, mode=0o755).is_dir
    assert ns.rename(_call(5), "/f", "/d/g", overwrite=False) == moved
    for d in nodes:
        ns.block_report(d.uuid, [(lb.block_id, lb.genstamp, 9)])
    assert ns.delete(_call(6), "/d/g", recursive=False)
    assert ns.delete(_call(6), "/d/g", recursive=False)       # its retry
    # A new call is no retry: it fails as before.
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.delete(_call(7), "/d/g", recursive=False)
    with pytest.raises(errors.DfsFileNotFoundError, match="not open for writing"):
        ns.complete(_call(8), row["id"], (lb.block_id, 9), [])
    # Nor is the same call number from another client.
    with pytest.raises(errors.DfsFileExistsError):
        ns.mkdir(_call(4, GONE), "/d", parents=False, mode=0o755)


def test_a_call_that_failed_runs_again_when_retried_and_outcomes_expire(tmp_path):
    clock = Clock()
    ns = make(SqliteStore(str(tmp_path / "ns.db")), clock)
    register(ns, 3)
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.mkdir(_call(1), "/a/b", parents=False, mode=0o755)
    ns.mkdir(_call(2), "/a", parents=False, mode=0o755)
    assert ns.mkdir(_call(1), "/a/b", parents=False, mode=0o755).is_dir   # nothing recorded: runs
    clock.advance(RETRY_CACHE_SECONDS - 5)
    ns.tick()
    assert ns.mkdir(_call(2), "/a", parents=False, mode=0o755).is_dir     # still answered
    clock.advance(10)
    ns.tick()
    with pytest.raises(errors.DfsFileExistsError):                          # forgotten
        ns.mkdir(_call(2), "/a", parents=False, mode=0o755)
    # (and failures leave none)
    assert ns.store._db.execute("SELECT count(*) FROM retry_cache").fetchone()[0] == 0


def test_a_retry_cache_entry_is_lost_with_its_mutation_when_the_commit_fails(tmp_path):
    store, disk = _store(tmp_path)
    ns = make(store)
    register(ns, 3)
    disk.full = True
    with pytest.raises(errors.MetadataStoreError):
        ns.mkdir(_call(1), "/a", parents=False, mode=0o755)
    disk.full = False
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.stat(ROOT, "/a")
    assert ns.mkdir(_call(1), "/a", parents=False, mode=0o755).is_dir      # its retry runs it


def test_a_retried_create_with_its_first_block_gets_the_same_file_key_and_block(tmp_path):
    ns = make(SqliteStore(str(tmp_path / "ns.db")), master_key=KEY)
    register(ns, 3)
    first = ns.create_with_block(_call(1), "/f", **NEW)
    again = ns.create_with_block(_call(1), "/f", **NEW)
    assert again[0]["id"] == first[0]["id"] and again[1] == first[1] and again[2] is None
    assert (again[3].block_id, again[3].genstamp, [d.uuid for d in again[3].locations]) == \
        (first[3].block_id, first[3].genstamp, [d.uuid for d in first[3].locations])
    assert len(ns.store.blocks(first[0]["id"])) == 1          # not a second block
    row = ns.store._db.execute("SELECT length(outcome) FROM retry_cache").fetchone()
    assert row[0] < 300                                        # compact: no row, no key
    # Retried against a restarted namenode its datanodes have not registered with yet:
    # the same targets all the same (the writer needs their addresses only).
    ns.store.close()
    ns = make(SqliteStore(str(tmp_path / "ns.db")), master_key=KEY)
    again = ns.create_with_block(_call(1), "/f", **NEW)
    assert [d.address for d in again[3].locations] == [d.address for d in first[3].locations]
    assert again[1] == first[1]


def test_the_retry_cache_keeps_at_most_the_newest_entries(tmp_path):
    store = SqliteStore(str(tmp_path / "ns.db"))
    for i in range(5):
        store.record_call("c", i, 100.0 + i, b"x")
    store.sync()
    assert store.expire_calls(0.0, keep=2) == 3
    assert store.expire_calls(50.0) == 0
    assert [r[0] for r in store._db.execute("SELECT call FROM retry_cache ORDER BY call")] == [3, 4]


def test_a_decommission_that_cannot_be_stored_leaves_the_node_in_service(tmp_path):
    store, disk = _store(tmp_path)
    ns = make(store)
    nodes = register(ns, 4)
    disk.full = True
    with pytest.raises(errors.MetadataStoreError):
        ns.decommission(nodes[0].address)
    assert ns.members.nodes[nodes[0].uuid].admin_state == "normal"
    disk.full = False
    ns.decommission(nodes[0].address)
    assert ns.members.nodes[nodes[0].uuid].admin_state == "decommissioning"
    # ... and a cancel that cannot be stored leaves it decommissioning
    disk.full = True
    with pytest.raises(errors.MetadataStoreError):
        ns.decommission(nodes[0].address, cancel=True)
    assert ns.members.nodes[nodes[0].uuid].admin_state == "decommissioning"
    disk.full = False
    ns.decommission(nodes[0].address, cancel=True)
    assert ns.members.nodes[nodes[0].uuid].admin_state == "normal"
    disk.full = True                      # once cancelled, a new decommission unstored: in service
    with pytest.raises(errors.MetadataStoreError):
        ns.decommission(nodes[0].address)
    assert ns.members.nodes[nodes[0].uuid].admin_state == "normal"


def test_a_retried_abandon_block_succeeds(tmp_path):
    ns = make(SqliteStore(str(tmp_path / "ns.db")))
    register(ns, 3)
    row = start(ns, "/f")
    lb = ns.add_block(_call(1), row["id"], None, [], [])
    ns.abandon_block(_call(2), row["id"], lb.block_id)
    ns.abandon_block(_call(2), row["id"], lb.block_id)     # its retry
    with pytest.raises(errors.InvalidArgumentError):
        ns.abandon_block(_call(3), row["id"], lb.block_id)


def test_every_call_sharing_a_group_commit_that_fails_fails(tmp_path):
    store, disk = _store(tmp_path)
    ns = make(store)
    register(ns, 3)
    outcome: dict[str, object] = {}

    def mkdir(path):
        try:
            outcome[path] = ns.mkdir(ROOT, path, parents=False, mode=0o755)
        except errors.DfsError as e:
            outcome[path] = e

    with ns._sync_lock:          # a commit's fsync in progress: both calls wait for the next one
        threads = [threading.Thread(target=mkdir, args=(p,)) for p in ("/x", "/y")]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while True:
            with ns.lock:
                if store._in_tx and len(store.children(1)) == 2:   # both applied, uncommitted
                    break
            assert time.monotonic() < deadline, "the calls were not applied"
            time.sleep(0.01)
        disk.full = True
    for t in threads:
        t.join(30)
    assert all(isinstance(outcome[p], errors.MetadataStoreError) for p in ("/x", "/y")), outcome
    disk.full = False
    assert [e.path for e in ns.listdir(ROOT, "/", "", 10)[1]] == []


def test_a_failed_fsync_stops_the_namesystem_and_deletes_no_replica(tmp_path, monkeypatch):
    """The WAL's fsync fails after the COMMIT of a delete (EIO): the delete's caller
    fails, no replica of the file is deleted (a power loss could bring the file back),
    the server's stop hook is called once, and every later mutation is refused, while
    reads go on."""
    store = SqliteStore(str(tmp_path / "ns.db"))
    ns = make(store)
    stops = []
    ns.on_unsyncable = stops.append
    nodes = register(ns, 3)
    _, blocks, _ = write(ns, "/doomed", [BS, 100])
    ns.mkdir(ROOT, "/d", False, 0o755)

    def eio(fd):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(os, "fdatasync", eio)
    with pytest.raises(errors.MetadataStoreError, match="Input/output error"):
        ns.delete(ROOT, "/doomed", recursive=False)
    assert len(stops) == 1 and "Input/output error" in str(stops[0])
    assert _invalidations(ns, nodes) == set()
    assert all(len(ns.bmap.holders(b)) == 3 for b, _ in blocks)
    monkeypatch.undo()    # the disk works again: the namesystem still refuses changes
    for change in (lambda: ns.mkdir(ROOT, "/e", False, 0o755),
                   lambda: ns.rename(ROOT, "/d", "/f", overwrite=False),
                   lambda: ns.create(ROOT, "/g", **NEW, complete=True)):
        with pytest.raises(errors.MetadataStoreError, match="Input/output error"):
            change()
    assert ns.stat(ROOT, "/d").is_dir and _invalidations(ns, nodes) == set()
    assert len(stops) == 1


# -- the WAL's fsync ------------------------------------------------------------
def _durable_mkdir(store: SqliteStore, name: str) -> None:
    store.begin_op()
    store.insert(parent=1, name=name, is_dir=1, mode=0o755, owner="root", grp="supergroup",
                 mtime=0.0, ctime=0.0)
    store.end_op()
    store.want_durable()
    store.sync()


def test_the_wal_fsync_does_not_stat_the_wal_file(tmp_path, monkeypatch):
    # A stat() of the WAL makes Linux 6.13+ stamp the next write with a fine-grained
    # mtime, and each fdatasync then writes the inode too (~35 us more per durable call).
    store = SqliteStore(str(tmp_path / "ns.db"))
    _durable_mkdir(store, "a")   # the first flush opens the WAL
    stats = []
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: (stats.append(p), real_stat(p, *a, **k))[1])
    fd = store._wal_fd
    for i in range(3):
        _durable_mkdir(store, f"d{i}")
    monkeypatch.undo()
    assert not [p for p in stats if str(p).endswith("-wal")]
    assert store._wal_fd == fd
    store.close()


@pytest.mark.parametrize("how", ["unlinked", "renamed"])
def test_the_wal_fsync_follows_a_replaced_wal_file(tmp_path, how):
    store = SqliteStore(str(tmp_path / "ns.db"))
    _durable_mkdir(store, "a")
    wal = str(tmp_path / "ns.db-wal")
    # SQLite's file is kept as .old either way, and put back before it closes.
    if how == "unlinked":
        os.link(wal, wal + ".old")
        os.unlink(wal)                    # as SQLite does
    else:
        os.rename(wal, wal + ".old")
    with open(wal, "wb"):                 # a new file at the WAL's path
        pass
    assert os.fstat(store._wal()).st_ino == os.stat(wal).st_ino
    os.rename(wal + ".old", wal)
    assert os.fstat(store._wal()).st_ino == os.stat(wal).st_ino
    store.close()


def test_a_tree_read_that_cannot_open_the_store_fails_with_one_line_not_an_internal_error(
        tmp_path, monkeypatch, caplog):
    # fsck, du and count read a snapshot on a connection of their own: with no file
    # descriptor left, sqlite3.connect failed and the client got "internal error in namenode".
    ns = make(SqliteStore(str(tmp_path / "ns.db")))
    register(ns, 3)
    write(ns, "/f", [100])

    def no_descriptor(*args, **kw):
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(store_module.sqlite3, "connect", no_descriptor)
    cannot = "^namenode cannot read its metadata: unable to open database file$"
    with caplog.at_level(logging.ERROR), pytest.raises(errors.MetadataStoreError, match=cannot):
        ns.fsck(ROOT, "/")
    with pytest.raises(errors.MetadataStoreError, match=cannot):
        ns.content_summary(ROOT, "/")
    [first, _] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert first.getMessage() == ("reading the tree under /: namenode cannot read its metadata: "
                                  "unable to open database file") and first.exc_info is None
    monkeypatch.undo()
    assert ns.content_summary(ROOT, "/")["length"] == 100


def test_a_snapshot_with_no_file_descriptor_left_says_so(tmp_path):
    # A real RLIMIT_NOFILE, every descriptor below it taken (in a process of its own).
    script = textwrap.dedent(f"""
        import os, resource
        from dfs import errors
        from dfs.namenode.store import SqliteStore
        store = SqliteStore({str(tmp_path / "ns.db")!r})
        store.sync()
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        taken = []
        try:
            while True:
                taken.append(os.open("/dev/null", os.O_RDONLY))
        except OSError:
            pass
        try:
            with store.snapshot() as snap:
                snap.subtree(1)
        except errors.MetadataStoreError as e:
            print(type(e).__name__, e)
        for fd in taken:
            os.close(fd)
        with store.snapshot() as snap:
            print("read", snap.subtree(1))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "MetadataStoreError namenode cannot read its metadata: unable to open database file "
        "(Too many open files)", "read []"], r.stdout
