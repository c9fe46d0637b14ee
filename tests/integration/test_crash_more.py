"""Namenode durability beyond a plain SIGKILL: a full metadata disk, writers whose
lease outlives a namenode restart, and calls retried after the namenode applied them
(their reply lost with a killed namenode). Real processes, real faults."""

from __future__ import annotations

import errno
import os
import signal
import sqlite3
import threading
import time

import pytest

from dfs import errors
from dfs.testing.cluster import free_port
from dfs.testing.faults import (
    MiB,
    check_all,
    error_lines,
    put_bytes,
    replicas_on_disk,
    run_datanode,
    run_server,
    until,
)


def _fill(directory: str) -> str:
    """Fill the filesystem of ``directory`` to the last byte; -> the filler file."""
    filler = os.path.join(directory, "filler")
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
    return filler


def test_a_full_metadata_disk_fails_calls_clearly_and_loses_nothing(make_cluster, tmpfs):
    c = make_cluster(start=False)
    tmpfs(c.namenode.data_dir)
    c.start()
    client = c.client(retry_seconds=20)
    acked = {f"/keep/{i}": os.urandom(300_000 + i) for i in range(4)}
    for path, data in acked.items():
        client.write_bytes(path, data)
    blocks = [b.block_id for b in client.block_locations("/keep/0")]
    filler = _fill(c.namenode.data_dir)

    # Each mutation now fails with one clear line; none is retried for ever.
    r = c.cli("rm", "/keep/0")
    assert r.returncode == 1
    full = "namenode cannot store its metadata: database or disk is full"
    assert error_lines(r, "rm") == [f"dfs: rm: /keep/0: {full}"]
    with pytest.raises(errors.MetadataStoreError, match="database or disk is full"):
        client.rename("/keep/1", "/moved")
    with pytest.raises(errors.MetadataStoreError):
        client.write_bytes("/new", b"x" * 1000)
    r = c.cli("mkdir", "/d")
    assert r.returncode == 1 and "namenode cannot store its metadata" in r.stderr.decode()
    # The failed delete deleted no replica: give the datanodes a few heartbeats to act.
    time.sleep(3 * c.heartbeat + 1)
    assert replicas_on_disk(c, blocks[0]) == 3
    assert sorted(e.path for e in client.listdir("/keep")) == sorted(acked)
    check_all(c, acked)
    # Killed and restarted on the full disk, it serves what it has and still refuses clearly.
    c.kill(c.namenode, signal.SIGKILL)
    c.restart(c.namenode)
    c.wait_for_datanodes(3, timeout=60)
    check_all(c, acked)
    with pytest.raises(errors.MetadataStoreError):
        client.delete("/keep/0")

    # Space again: the namenode goes on where it was, and a kill -9 loses nothing acknowledged.
    os.unlink(filler)
    client.rename("/keep/1", "/moved")
    acked["/moved"] = acked.pop("/keep/1")
    assert client.delete("/keep/0")
    del acked["/keep/0"]
    client.write_bytes("/new", b"y" * 1000)
    acked["/new"] = b"y" * 1000
    c.kill(c.namenode, signal.SIGKILL)
    c.restart(c.namenode)
    c.wait_for_datanodes(3)
    assert not client.exists("/keep/0")
    check_all(c, acked)
    until(lambda: replicas_on_disk(c, blocks[0]) == 0, 30, "the deleted file's replicas to go")
    assert c.fsck("/")["status"] == "HEALTHY"


def test_a_writer_mid_file_keeps_its_lease_across_a_namenode_restart(make_cluster):
    # Its lease lapsed (by the clock) while the namenode was down; a restarted namenode
    # must give it a whole lease period to come back, not remove its file at once.
    lease = 12.0     # the margin for a restart on a loaded machine: the writer calls within it
    c = make_cluster(env={"DFS_LEASE_SOFT_LIMIT": str(lease)})
    client = c.client(retry_seconds=60)
    data = os.urandom(int(3.5 * MiB))
    w = client.create("/slow")
    w.write(data[:int(1.5 * MiB)])                     # one block done, the next one open
    time.sleep(0.5)
    c.kill(c.namenode, signal.SIGKILL)
    w.write(data[int(1.5 * MiB):int(1.8 * MiB)])       # inside the open block: no namenode call
    time.sleep(lease + 1)                              # the lease it last renewed has lapsed
    c.restart(c.namenode)
    c.wait_for_datanodes(3, timeout=60)
    until(lambda: not client.safemode("get").on, 60, "safe mode to end")
    time.sleep(1.5)                                    # lease expiry is checked every tick (0.15 s)
    w.write(data[int(1.8 * MiB):])                     # needs AddBlock: the file must still be open
    w.close()
    check_all(c, {"/slow": data})
    assert "expired" not in open(c.namenode.log_path).read()


def test_calls_retried_after_the_namenode_died_having_applied_them_succeed(make_cluster):
    # The namenode SIGKILLs itself right after each call below is committed and fsynced,
    # before replying (DFS_TEST_DIE_AFTER); the client retries it against the restarted
    # namenode, which must answer with the first outcome, not "not open for writing",
    # "No such file or directory" or "File exists".
    c = make_cluster()
    client = c.client(retry_seconds=60)
    data = os.urandom(int(1.5 * MiB))
    outcome: dict = {}

    def dying_after(rpc: str, fn):
        c.env["DFS_TEST_DIE_AFTER"] = rpc
        c.restart(c.namenode)
        c.wait_for_datanodes(3, timeout=60)
        t = threading.Thread(target=lambda: outcome.__setitem__(rpc, _run(fn)), daemon=True)
        t.start()
        assert c.namenode.proc.wait(timeout=60) == -signal.SIGKILL
        del c.env["DFS_TEST_DIE_AFTER"]
        c.restart(c.namenode)
        t.join(90)
        assert not t.is_alive()
        assert not isinstance(outcome[rpc], Exception), f"{rpc} retried: {outcome[rpc]!r}"
        return outcome[rpc]

    st = dying_after("Complete", lambda: client.write_bytes("/f", data))
    assert st.size == len(data)
    st = dying_after("Create", lambda: client.write_bytes("/g", data[:1000]))
    assert st.size == 1000
    assert dying_after("Rename", lambda: client.rename("/f", "/h")).path == "/h"
    assert dying_after("Mkdir", lambda: client.mkdir("/d")).is_dir
    assert dying_after("Delete", lambda: client.delete("/g")) is True
    c.wait_for_datanodes(3, timeout=60)
    assert sorted(e.path for e in client.listdir("/")) == ["/d", "/h"]
    check_all(c, {"/h": data})
    assert open(c.namenode.log_path).read().count("answered with its recorded outcome") >= 5


def _run(fn):
    try:
        return fn()
    except Exception as e:    # reported by the assertions on the outcome
        return e


def test_a_datanode_whose_disk_is_full_says_so_naming_its_dir(make_cluster, tmpfs, tmp_path):
    c = make_cluster(datanodes=1, start=False)
    tmpfs(c.datanodes[0].data_dir, "8m")
    c.start()
    small = os.urandom(MiB)
    c.client().write_bytes("/small", small)
    big = tmp_path / "big"
    big.write_bytes(os.urandom(12 * MiB))
    r = c.cli("put", str(big), "/big")
    assert r.returncode == 1
    [line] = error_lines(r, "put")
    # Which of the two depends on whether the heartbeat that reports the disk full has
    # reached the namenode before the writer asks it for another target: worded alike.
    assert line.startswith(("dfs: put: /big: no space left: all 1 datanodes this write tried are full",
                            "dfs: put: /big: no space left: all 1 live datanodes are full")), line
    assert f"{c.datanodes[0].address}: {c.datanodes[0].data_dir}: No space left on device" in line
    assert not c.client().exists("/big")
    check_all(c, {"/small": small})


def test_a_namenode_that_cannot_write_its_store_exits_with_one_line(make_cluster, tmpfs):
    # A namespace.db to create (a new cluster) on a full disk: SQLite's own error, one line.
    # (Without master.key too: a key without its namespace is refused before, test_servers.)
    c = make_cluster(datanodes=1, start=False)
    tmpfs(c.namenode.data_dir)
    c.start()
    c.stop()
    for name in os.listdir(c.namenode.data_dir):
        if name.startswith(("namespace.db", "master.key")):
            os.unlink(os.path.join(c.namenode.data_dir, name))
    room = os.path.join(c.namenode.data_dir, "lost+found")   # allowed in a new data dir
    os.mkdir(room)
    _fill(room)
    r = run_server(c, *c.namenode.argv)
    err = r.stderr.decode()
    assert r.returncode == 1 and "Traceback" not in err, err
    db = os.path.join(c.namenode.data_dir, "namespace.db")
    assert err.strip().splitlines()[-1] == \
        f"dfs: namenode: {db}: cannot open the metadata store: database or disk is full"


def test_servers_starting_on_a_full_disk_name_the_file(make_cluster, tmpfs, tmp_path):
    # They said "dfs: datanode: No space left on device", naming nothing: the pid
    # written into in_use.lock and the flush of datanode.json.tmp raise without a file
    # name (and datanode.json.tmp was left behind).
    c = make_cluster(datanodes=0, start=False)
    disk = tmpfs(str(tmp_path / "disk"), "64k")
    filler = _fill(disk)
    dn, nn = os.path.join(disk, "dn"), os.path.join(disk, "nn")
    r = run_datanode(c, dn)
    assert r.returncode == 1 and error_lines(r, "datanode") == [
        f"dfs: datanode: {dn}/in_use.lock: No space left on device"], r.stderr
    host = c.namenode_address.rpartition(":")[0]
    r = run_server(c, "namenode", "--data-dir", nn, "--listen", f"{host}:{free_port(host)}")
    assert r.returncode == 1 and error_lines(r, "namenode") == [
        f"dfs: namenode: {nn}/in_use.lock: No space left on device"], r.stderr

    # A lock file left by an earlier start: the pid goes into its block, datanode.json
    # finds no room.
    os.unlink(filler)
    with open(os.path.join(dn, "in_use.lock"), "w") as f:
        f.write("4242\n")
    _fill(disk)
    r = run_datanode(c, dn)
    assert r.returncode == 1 and error_lines(r, "datanode") == [
        f"dfs: datanode: {dn}/datanode.json: No space left on device"], r.stderr
    assert os.listdir(dn) == ["in_use.lock"]


def test_a_namenode_whose_log_fsync_fails_stops_and_deletes_no_replica(make_cluster, tmp_path):
    # While the trigger file exists the WAL's fsync fails with EIO (DFS_TEST_FAIL_FSYNC_IF):
    # the namenode must stop at once (HDFS's namenode exits when its edit log cannot be
    # synced) instead of serving changes that may never reach the disk, and the delete
    # whose fsync failed must not have deleted any replica.
    trigger = str(tmp_path / "disk-fails")
    c = make_cluster(env={"DFS_TEST_FAIL_FSYNC_IF": trigger})
    client = c.client(retry_seconds=5)
    data = os.urandom(int(1.5 * MiB))
    client.write_bytes("/keep", data)
    blocks = [b.block_id for b in client.block_locations("/keep")]
    on_disk = [replicas_on_disk(c, b) for b in blocks]
    assert on_disk == [3] * len(blocks)
    open(trigger, "w").close()
    with pytest.raises(errors.NamenodeUnreachableError):   # its reply never comes
        c.client(retry_seconds=1).delete("/keep")
    assert c.namenode.proc.wait(timeout=30) == 1
    log_text = open(c.namenode.log_path).read()
    assert "stopping: namenode cannot store its metadata: [Errno 5] Input/output error" in log_text
    time.sleep(1.5)                                  # datanodes would have deleted by now
    assert [replicas_on_disk(c, b) for b in blocks] == on_disk
    os.unlink(trigger)
    c.restart(c.namenode)
    c.wait_for_datanodes(3, timeout=60)
    client = c.client(retry_seconds=30)
    # The delete was committed before its fsync failed: with the process gone but the
    # machine up, the WAL still holds it. Either outcome is sound; a half one is not.
    if client.exists("/keep"):
        check_all(c, {"/keep": data})
    client.write_bytes("/after", data[:1000])
    check_all(c, {"/after": data[:1000]})


def test_an_online_backup_of_the_namespace_restores(make_cluster, tmp_path):
    # The namespace database stays readable while the namenode runs (WAL mode: a reader
    # never blocks its commits), so SQLite's online backup of it is a consistent copy
    # (docs/healing.md). A namenode restarted on that copy serves what was acknowledged
    # before it, byte-identical, and knows nothing of what came after.
    c = make_cluster()
    before = {"/keep/a": os.urandom(MiB + 7), "/keep/empty": b""}
    for path, data in before.items():
        put_bytes(c, path, data)
    db = os.path.join(c.namenode.data_dir, "namespace.db")
    copy = str(tmp_path / "backup.db")
    live, dst = sqlite3.connect(f"file:{db}?mode=ro", uri=True), sqlite3.connect(copy)
    live.backup(dst)
    live.close()
    dst.close()
    put_bytes(c, "/later", os.urandom(MiB))          # the namenode was not held up meanwhile
    c.kill(c.namenode, signal.SIGKILL)
    for name in os.listdir(c.namenode.data_dir):
        if name.startswith("namespace.db"):
            os.unlink(os.path.join(c.namenode.data_dir, name))
    os.replace(copy, db)
    c.restart(c.namenode)
    c.wait_for_datanodes(3)
    check_all(c, before)
    assert not c.client(retry_seconds=20).exists("/later")
    c.wait_for_status("HEALTHY")


def test_after_a_restart_blocks_wait_for_the_datanodes_that_were_live(make_cluster):
    """One datanode's block report ends safe mode in a small cluster; a block placed then
    went on that node alone and was acknowledged with 1 replica of 3 while the other
    two were only late to register (seen under namenode kill loops). Now a block waits
    (as safe mode, retried) until the datanodes live before the restart are back."""
    c = make_cluster(dead_timeout=20.0)
    client = c.client(retry_seconds=60)
    client.write_bytes("/before", b"x" * 1000)
    c.kill(c.namenode, signal.SIGKILL)
    late = c.datanodes[1:]
    for dn in late:
        c.pause(dn)
    c.restart(c.namenode)
    until(lambda: not client.safemode("get").on, 30, "safe mode to end on one block report")
    done: list[BaseException | None] = []
    data = os.urandom(300_000)

    def write():
        try:
            client.write_bytes("/after", data)
            done.append(None)
        except BaseException as e:   # noqa: BLE001 - shown by the assertion below
            done.append(e)
    t = threading.Thread(target=write)
    t.start()
    time.sleep(2.0)
    assert not done, "the write completed while 2 of the 3 datanodes had not registered again"
    for dn in late:
        c.resume(dn)
    t.join(60)
    assert done == [None]
    blocks = client.block_locations("/after")
    assert [len(b.names) for b in blocks] == [3]
    check_all(c, {"/before": b"x" * 1000, "/after": data})
