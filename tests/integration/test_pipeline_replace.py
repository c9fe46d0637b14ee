"""Replace-datanode-on-failure (dfs/client/writer.py, docs/healing.md): a block
is acknowledged only once stored on enough live nodes. Two nodes of a pipeline
SIGKILLed one after the other mid-block used to leave that block on its head
alone, acknowledged; the head's death then lost acknowledged data (SPEC §2:
an acknowledged write survives kill -9 of any single process)."""

from __future__ import annotations

import os
import signal

from dfs.testing.faults import MiB, check_all, locations, tmp_files


def _kill_two_downstream_mid_block(c, monkeypatch, path: str, data: bytes):
    """Write ``path`` with the head of every pipeline on datanode0 (the writer's host);
    once block 1 is partly sent, SIGKILL its two downstream nodes one after the other,
    then write the rest and close. -> (the head, the two killed nodes)."""
    head = c.datanodes[0]
    monkeypatch.setenv("DFS_CLIENT_HOST", head.address.rpartition(":")[0])
    client = c.client(retry_seconds=20)
    w = client.create(path, block_size=3 * MiB)
    try:
        w.write(data[:2 * MiB])    # > 1 MiB buffered: sending starts; block 1 is 2/3 sent
        down = c.wait_for(lambda: (lambda ds: ds if len(ds) == 2 and tmp_files(head) else None)(
            [d for d in c.datanodes[1:] if tmp_files(d)]), 20, "block 1's pipeline", interval=0.02)
        for victim in down:
            c.kill(victim, signal.SIGKILL)
        w.write(data[2 * MiB:])
        w.close()
    except BaseException:
        w.abort()
        raise
    return head, down


def test_two_pipeline_nodes_killed_mid_write_every_block_keeps_two_live_replicas(make_cluster, monkeypatch):
    c = make_cluster(datanodes=5)                # replication 3
    data = os.urandom(10 * MiB + 12345)          # 4 blocks of 3 MiB
    head, down = _kill_two_downstream_mid_block(c, monkeypatch, "/f", data)
    alive = {d.address for d in c.datanodes if d.alive}
    blocks = locations(c, "/f")
    assert len(blocks) == 4
    for b in blocks:
        live = set(b["names"]) & alive
        assert len(live) >= 2, f"block at {b['offset']} acknowledged on {sorted(live)} only"
    # Any single node may die now: every block still has a live replica.
    c.kill(head, signal.SIGKILL)
    check_all(c, {"/f": data})


def test_no_replacement_left_the_write_goes_on_with_fewer(make_cluster, monkeypatch):
    """Best effort (SPEC §6): with 3 nodes and two of them killed, no replacement
    exists; the put still succeeds, on the one node left."""
    c = make_cluster(datanodes=3)
    data = os.urandom(7 * MiB)
    head, down = _kill_two_downstream_mid_block(c, monkeypatch, "/g", data)
    for b in locations(c, "/g"):
        assert set(b["names"]) & {head.address}
    check_all(c, {"/g": data})
