"""The write path fails over fast and retries safely (dfs/client/writer.py,
docs/transport.md). Real processes: a datanode frozen with SIGSTOP (the kernel
still accepts its connections), a namenode SIGKILLed between committing a call
and replying to it."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time

from dfs.client.writer import required_replicas
from dfs.testing.faults import MiB, check_all, locations

# Heartbeats every 2 s: the namenode goes on offering a frozen node for 4 s (until it is
# stale), so the write meets it even when the put is slow to start on a loaded machine.
SLOW_BEATS = dict(datanodes=4, heartbeat=2.0, dead_timeout=30.0)


def _put_with_a_frozen_node(c, tmp_path, frozen, client_node):
    """``dfs put`` 8 MiB (1 MiB blocks) at replication 3 from ``client_node``'s host (placed
    first in every pipeline) while ``frozen`` is SIGSTOPped; checks every block is stored on
    the required replicas, none of them the frozen node, and reads back byte-identical.
    -> (seconds the put took, its debug log)."""
    src = tmp_path / "src"
    data = os.urandom(8 * MiB)
    src.write_bytes(data)
    c.pause(frozen)
    try:
        t0 = time.monotonic()
        r = c.cli("--debug", "put", "--replication", "3", str(src), "/f", timeout=90,
                  env={"DFS_CLIENT_HOST": client_node.address.rpartition(":")[0]})
        took = time.monotonic() - t0
        assert r.returncode == 0, r.stderr.decode()[-3000:]
        blocks = locations(c, "/f")
    finally:
        c.resume(frozen)
    assert len(blocks) == 8
    for b in blocks:
        assert frozen.address not in b["names"], b
        assert len(set(b["names"])) >= required_replicas(3, 3), b
    check_all(c, {"/f": data})
    return took, r.stderr.decode()


def test_a_frozen_first_datanode_is_given_up_in_seconds_not_the_data_timeout(make_cluster, tmp_path):
    # A client on the frozen node's address heads every pipeline with it until it is
    # named. Before the pipeline's setup reply had a deadline of its own, the put
    # waited the first block's whole ack timeout (17.5 s of DFS_DATA_TIMEOUT's 20 s).
    c = make_cluster(**SLOW_BEATS)
    frozen = c.datanodes[0]
    took, log = _put_with_a_frozen_node(c, tmp_path, frozen, frozen)
    print(f"put of 8 MiB, replication 3, first datanode frozen: {took:.1f} s")
    assert f"datanode {frozen.address} did not answer the pipeline setup" in log   # it was met
    assert took < 12, f"the put waited {took:.1f} s on the frozen node"


def test_a_frozen_datanode_down_the_pipeline_is_given_up_in_seconds(make_cluster, tmp_path):
    # Racks alternate (/rack1, /rack2, ...): from datanode1's host the second and third
    # replicas go to the two /rack1 nodes, datanode0 (frozen) one of them. The node before
    # it used to wait its ack timeout (12.5 s) before naming it; now its setup deadline.
    c = make_cluster(**SLOW_BEATS)
    frozen, head = c.datanodes[0], c.datanodes[1]
    took, log = _put_with_a_frozen_node(c, tmp_path, frozen, head)
    print(f"put of 8 MiB, replication 3, a downstream datanode frozen: {took:.1f} s")
    named = "".join(open(d.log_path).read() for d in c.datanodes if d is not frozen)
    assert f"downstream datanode {frozen.address} did not answer the pipeline setup" in named
    assert took < 12, f"the put waited {took:.1f} s on the frozen node"   # was >= 12.5 (ack timeout)


def test_a_rolling_restart_of_every_datanode_does_not_fail_a_write(make_cluster):
    # Each datanode SIGTERMed and restarted once, one at a time, while a file is written:
    # at least 3 of 4 are up throughout, and a datanode killed mid-put does not fail the
    # put (SPEC §6). The writer avoided every node that had failed it for the whole
    # write, so once all four had bounced the namenode had nowhere to put the next block
    # ("no datanode left for the block: every live one failed this write").
    # Replication 4 and a 256 KiB block every ~50 ms: every pipeline runs through every
    # node, so each node's restart fails one (a restart no pipeline met went unnoticed).
    c = make_cluster(datanodes=4)
    c.wait_for_datanodes(4)
    piece = 256 * 1024
    restarted = threading.Event()
    written, outcome = bytearray(), {}

    def write():
        try:
            with c.client().create("/rolling", replication=4, block_size=piece) as f:
                until = None    # write on for a while once every node has restarted
                while until is None or time.monotonic() < until:
                    data = os.urandom(piece)
                    f.write(data)
                    written.extend(data)
                    if until is None and restarted.is_set():
                        until = time.monotonic() + 1.0
                    time.sleep(0.05)
        except Exception as e:   # noqa: BLE001 - reported by the test's thread
            outcome["error"] = e

    writer = threading.Thread(target=write)
    writer.start()
    c.wait_for(lambda: len(written) >= 4 * piece, 30, "the write to begin")
    for d in c.datanodes:
        c.kill(d, signal.SIGTERM)
        time.sleep(0.3)
        c.restart(d)
        time.sleep(1.2)
    restarted.set()
    writer.join(timeout=120)
    assert not writer.is_alive()
    assert "error" not in outcome, repr(outcome["error"])
    check_all(c, {"/rolling": bytes(written)})


def _blocks_on_disk(c, path_name: str) -> list[tuple[int, int]]:
    """(block id, committed) of the file being written as ``path_name``, as the
    namenode's store holds them (read while the namenode is down)."""
    db = sqlite3.connect(f"file:{os.path.join(c.namenode.data_dir, 'namespace.db')}?mode=ro", uri=True)
    try:
        return db.execute("SELECT b.id, b.committed FROM block b JOIN inode i ON b.inode = i.id "
                          "WHERE i.pending_name = ? OR i.name = ? ORDER BY b.idx",
                          (path_name, path_name)).fetchall()
    finally:
        db.close()


def test_an_add_block_retried_after_the_namenode_died_having_committed_it_gets_the_same_block(
        make_cluster):
    # The namenode SIGKILLs itself right after an AddBlock is committed, before replying
    # (DFS_TEST_DIE_AFTER). The writer retries it against the restarted namenode and
    # must get that block back (the retry cache), not an error nor another block.
    c = make_cluster(env={"DFS_TEST_DIE_AFTER": "AddBlock"})    # 1 MiB blocks
    client = c.client(retry_seconds=60)
    data = os.urandom(int(2.5 * MiB))
    w = client.create("/f")
    # 1 MiB chunks: the second one queued needs block 2, whose AddBlock kills the namenode
    # (block 1 came with Create)
    w.write(data[:int(2.2 * MiB)])
    assert c.namenode.proc.wait(timeout=60) == -signal.SIGKILL
    before = _blocks_on_disk(c, "f")
    assert len(before) == 2 and not before[1][1], before    # block 2 allocated (block 1 draining)
    del c.env["DFS_TEST_DIE_AFTER"]
    c.restart(c.namenode)
    w.write(data[int(2.2 * MiB):])
    w.close()
    c.wait_for_datanodes(3, timeout=60)
    after = [b["block_id"] for b in locations(c, "/f")]
    assert after[:2] == [before[0][0], before[1][0]] and len(after) == 3, (before, after)
    assert "answered with its recorded outcome" in open(c.namenode.log_path).read()
    check_all(c, {"/f": data})


def test_a_slow_writer_keeps_its_lease_when_the_namenode_lease_is_shorter_than_20s(make_cluster):
    # The client renewed every 20 s whatever the namenode's lease: under a 2 s one, a live
    # writer pausing between writes (a slow producer) had its file removed. The Create reply
    # says the lease period; the client renews within it.
    c = make_cluster(datanodes=1, replication=1, env={"DFS_LEASE_SOFT_LIMIT": "2"})
    data = os.urandom(6 * MiB)
    w = c.client().create("/slow", block_size=4 * MiB)
    w.write(data[:5 * MiB])                        # the second block open: AddBlock renewed it
    time.sleep(5)                                  # two and a half lease periods, no write
    w.write(data[5 * MiB:])
    w.close()
    check_all(c, {"/slow": data})
    assert "expired" not in open(c.namenode.log_path).read()


def test_a_writer_whose_lease_expired_is_told_so_of_its_path(make_cluster):
    # Its pipeline fails after the namenode recovered the lease: the AbandonBlock of the
    # retry is refused, naming the file by its id; write() must say the user's path.
    c = make_cluster(datanodes=1, replication=1, env={"DFS_LEASE_SOFT_LIMIT": "1"})
    client = c.client()
    client._lease_acquired = lambda w: None      # its renewals stop, as in a paused process
    w = client.create("/f", block_size=4 * MiB)
    w.write(os.urandom(3 * MiB))                   # sending: its pipeline is open
    c.wait_for(lambda: "dropped the unfinished version of f " in open(c.namenode.log_path).read(), 30,
               "the namenode to recover the lease")
    c.kill(c.datanodes[0])                         # the pipeline fails: abandon, then retry
    err = None
    t = time.monotonic()
    while err is None and time.monotonic() - t < 30:
        try:
            w.write(b"x" * MiB)
        except OSError as e:
            err = e
        time.sleep(0.2)
    assert err is not None and str(err).startswith("/f: "), err
    w.abort()
