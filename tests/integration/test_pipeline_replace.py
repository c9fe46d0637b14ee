"""Replace-datanode-on-failure (dfs/client/writer.py, docs/healing.md): a block
is acknowledged only once stored on enough live nodes. Two nodes of a pipeline
SIGKILLed one after the other mid-write used to leave a block on its head
alone, acknowledged; the head's death then lost acknowledged data (SPEC §2:
an acknowledged write survives kill -9 of any single process)."""

from __future__ import annotations

import os
import signal

import pytest

from dfs.testing.faults import MiB, check_all, locations, node_state, tmp_files


def _receiving(c, head, n: int):
    """The ``n`` live downstream nodes of the pipeline streaming now (head: datanode0)."""
    def found():
        ds = [d for d in c.datanodes if d is not head and d.alive and tmp_files(d)]
        return ds if len(ds) == n and tmp_files(head) else None
    return c.wait_for(found, 20, f"{n} nodes receiving a block", interval=0.02)


def _write_killing_two(c, monkeypatch, path: str, data: bytes, apart: bool):
    """Write ``path`` (3 MiB blocks) with every pipeline headed by datanode0 (the
    writer's host). Once block 1 is partly sent, SIGKILL two downstream nodes: both
    of its pipeline at once, or (``apart``) one of it, then, once the namenode
    stopped offering that one, one of the pipeline of block 2 that was not in
    block 1's (block 1's acknowledgement is read only after block 2 is sent).
    -> (head, killed nodes)."""
    head = c.datanodes[0]
    monkeypatch.setenv("DFS_CLIENT_HOST", head.address.rpartition(":")[0])
    client = c.client(retry_seconds=20)
    w = client.create(path, block_size=3 * MiB)
    killed = []
    try:
        w.write(data[:2 * MiB])    # > 1 MiB buffered: sending starts; block 1 is 2/3 sent
        down = _receiving(c, head, 2)
        if not apart:
            killed = down
            for victim in down:
                c.kill(victim, signal.SIGKILL)
            w.write(data[2 * MiB:])
        else:
            middle = c.datanodes[1]            # the only node of /rack2: second in the chain
            assert middle in down
            killed.append(middle)
            c.kill(middle, signal.SIGKILL)         # the tail loses its upstream: block 1 on 1 node
            c.wait_for(lambda: node_state(c, middle.address) != "live", 20, "the victim to go stale")
            w.write(data[2 * MiB:5 * MiB])     # block 1 ended, block 2 2/3 sent
            # Not a node that may hold block 1 (a second fault of that block's replicas).
            second = next(d for d in _receiving(c, head, 2) if d not in down)
            killed.append(second)
            c.kill(second, signal.SIGKILL)
            w.write(data[5 * MiB:])
        w.close()
    except BaseException:
        w.abort()
        raise
    return head, killed


@pytest.mark.parametrize("apart", [False, True], ids=["same-pipeline", "next-pipeline"])
def test_two_pipeline_nodes_killed_mid_write_every_block_keeps_two_live_replicas(make_cluster, monkeypatch,
                                                                                  apart):
    # Rack-aware placement puts the second replica on the one node of /rack2.
    c = make_cluster(datanodes=5, racks=["/rack1", "/rack2", "/rack1", "/rack1", "/rack1"])   # replication 3
    data = os.urandom(10 * MiB + 12345)          # 4 blocks of 3 MiB
    head, killed = _write_killing_two(c, monkeypatch, "/f", data, apart)
    alive = {d.address for d in c.datanodes if d.alive}
    assert len(alive) == 3 and head.address in alive
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
    head, _ = _write_killing_two(c, monkeypatch, "/g", data, apart=False)
    for b in locations(c, "/g"):
        assert head.address in b["names"]
    check_all(c, {"/g": data})


@pytest.mark.parametrize("tail", [0, 100_000], ids=["whole-blocks", "short-last-block"])
def test_close_never_succeeds_with_a_last_block_short_of_its_required_replicas(make_cluster, monkeypatch,
                                                                                tail):
    """A block's acknowledgement is read only after the next block is sent (``_settle``),
    and the last ones' at close(). Two downstream nodes of the pipeline of the last
    full block are SIGKILLed while it streams, with the block before it still draining
    (whole blocks: its ack is read by close's ``_settle(None, None)``; with a short
    last block: by ``_finish``). close() must not succeed until every block of the
    file is stored on ``required_replicas`` nodes: the blocks the writer accepted are
    recorded and checked, then every block read back after the head's kill -9."""
    from dfs.client import writer as writer_mod
    accepted: dict[int, tuple[list[str], int]] = {}
    real_ack = writer_mod.FileWriter._ack

    def spy(self, block, sock):
        failed = real_ack(self, block, sock)
        if failed is None:
            accepted[block.block_id] = (list(self._unreported[-1][2]), block.allocated)
        return failed
    monkeypatch.setattr(writer_mod.FileWriter, "_ack", spy)
    rewrites = []
    real_rewrite = writer_mod.FileWriter._rewrite

    def count_rewrite(self, block, sock, failed, abandon=True):
        rewrites.append(list(failed))
        return real_rewrite(self, block, sock, failed, abandon)
    monkeypatch.setattr(writer_mod.FileWriter, "_rewrite", count_rewrite)
    c = make_cluster(datanodes=5, racks=["/rack1", "/rack2", "/rack1", "/rack1", "/rack1"])   # replication 3
    head = c.datanodes[0]
    monkeypatch.setenv("DFS_CLIENT_HOST", head.address.rpartition(":")[0])
    data = os.urandom(6 * MiB + tail)            # 2 full blocks of 3 MiB (+ a short third)
    w = c.client(retry_seconds=20).create("/last", block_size=3 * MiB)
    try:
        w.write(data[:4 * MiB])                  # block 1 ended (draining), block 2 1/3 sent
        down = _receiving(c, head, 2)
        for victim in down:
            c.kill(victim, signal.SIGKILL)
        w.write(data[4 * MiB:])
        w.close()
    except BaseException:
        w.abort()
        raise
    alive = {d.address for d in c.datanodes if d.alive}
    blocks = locations(c, "/last")
    assert len(blocks) == (3 if tail else 2)
    for b in blocks:
        nodes, allocated = accepted[b["block_id"]]
        need = writer_mod.required_replicas(3, allocated)
        assert need >= 2 and len(set(nodes) & alive) >= need, (b, nodes, allocated)
    assert rewrites, "the kills hit no pipeline: the test tested nothing"
    c.kill(head, signal.SIGKILL)
    check_all(c, {"/last": data})
