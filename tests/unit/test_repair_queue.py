"""The repair queue kept between plans (repair_queue.py, replication.plan with ``queue``):
its order, its cursor, what a plan costs with a big backlog, and small blocks."""

from __future__ import annotations

import random

from dfs.namenode.blockmap import BlockInfo, BlockMap
from dfs.namenode.repair_queue import RepairQueue
from dfs.namenode.replication import ENDANGERED, UNDER, VERY_UNDER, InFlight, has_room, plan
from tests.unit.test_namesystem import ROOT, make, register, write
from tests.unit.test_replication import bmap, cluster

KiB, MiB = 1 << 10, 1 << 20


class CountingDict(dict):
    """bmap.blocks, counting the planner's look-ups (it reads a block's info first)."""

    gets = 0

    def get(self, key, default=None):
        self.gets += 1
        return super().get(key, default)


def counted(m: BlockMap) -> CountingDict:
    m.blocks = CountingDict(m.blocks)
    return m.blocks


def run(m, nodes, queue, in_flight, blocks=None, seed=0, **kw):
    kw.setdefault("max_streams", 4)
    kw.setdefault("hard_limit", 4)
    return plan(m, nodes, set(nodes), set(nodes), in_flight, random.Random(seed), blocks=blocks, queue=queue,
                **kw)


def land(m: BlockMap, fl: InFlight, copy) -> None:
    for t in copy.targets:
        assert m.add_replica(copy.block_id, t, 1, m.blocks[copy.block_id].length)
        fl.done(copy.block_id, t)


def test_the_queue_keeps_its_order_and_resumes_each_bucket_at_its_cursor():
    q = RepairQueue()
    for b in (5, 1, 3):
        q.put(b, (UNDER, 0.5))
    q.put(9, (ENDANGERED, 0.0))
    q.put(7, (UNDER, 1 / 3))
    seen = [(k, b) for k, bucket in q.walk() for b in bucket]
    assert seen == [((ENDANGERED, 0.0), 9), ((UNDER, 1 / 3), 7), ((UNDER, 0.5), 1), ((UNDER, 0.5), 3),
                    ((UNDER, 0.5), 5)]
    # Left after handling 1 (the walk asked for 3 and stopped): the next walk resumes at 3.
    for key, bucket in q.walk():
        if key == (UNDER, 0.5):
            assert next(bucket) == 1
            assert next(bucket) == 3
            break
    q.put(0, (UNDER, 0.5))        # behind the cursor: waits until it comes round
    assert [b for k, bucket in q.walk() if k == (UNDER, 0.5) for b in bucket] == [3, 5]
    assert [b for k, bucket in q.walk() if k == (UNDER, 0.5) for b in bucket] == [0, 1, 3, 5]
    q.put(3, (VERY_UNDER, 0.25))  # moved
    q.discard(5)
    q.discard(42)
    assert len(q) == 5 and q.key(3) == (VERY_UNDER, 0.25) and 5 not in q
    assert [b for _, bucket in q.walk() for b in bucket] == [9, 3, 7, 0, 1]


def test_a_kept_queue_plans_the_most_endangered_first_whenever_they_come():
    nodes = cluster(8)
    m = bmap({b: ["n0", "n1"] for b in range(1, 11)})      # 2 of 3: under-replicated
    q, fl = RepairQueue(), InFlight()
    first, _ = run(m, nodes, q, fl, max_commands=2)
    assert [(c.block_id, c.priority) for c in first] == [(1, UNDER), (2, UNDER)]
    assert len(q) == 8
    for c in first:
        fl.add(c, deadline=100.0)
    # Block 9 loses a replica and block 10 two (one left: endangered): the next plan,
    # told of them only, takes them before the rest of the backlog, most endangered first.
    m.add_block(BlockInfo(20, inode=1, genstamp=1, length=1000, replication=7))
    for n in ("n2", "n3"):
        m.add_replica(20, n, 1, 1000)                       # 2 of 7: very under-replicated
    m.remove_replica(9, "n1")
    m.remove_replica(10, "n0")
    m.remove_replica(10, "n1")
    assert m.replicas.get(10) in (None, set())              # block 10: no replica: not planned
    m.add_replica(10, "n4", 1, 1000)
    second, _ = run(m, nodes, q, fl, blocks=[9, 10, 20], max_commands=4)
    assert [(c.block_id, c.priority) for c in second] == [(9, ENDANGERED), (10, ENDANGERED), (20, VERY_UNDER),
                                                         (3, UNDER)]
    for c in second:
        fl.add(c, deadline=100.0)
    rest, _ = run(m, nodes, q, fl, max_streams=8)
    assert sorted(c.block_id for c in rest) == [4, 5, 6, 7, 8] and len(q) == 0


def test_a_plan_with_a_big_backlog_touches_the_blocks_it_places_not_the_backlog():
    nodes = cluster(3)
    n = 100_000
    m = bmap({b: [f"n{b % 3}"] for b in range(n)}, length=64 * KiB)    # setrep 1 -> 3
    q, fl = RepairQueue(), InFlight()
    copies, _ = run(m, nodes, q, fl, blocks=None)
    assert len(copies) == 12 and len(q) == n - 12        # 3 sources x 4 streams
    for c in copies:
        fl.add(c, deadline=100.0)
    gets = counted(m)
    for _ in range(5):
        done = copies.pop(0)
        land(m, fl, done)                                  # a slot frees up: one more copy
        more, _ = run(m, nodes, q, fl, blocks=[done.block_id])
        assert len(more) == 1 and more[0].source == done.source
        fl.add(more[0], deadline=100.0)
        copies += more
    # Before session 31 every plan looked at the whole backlog again (and sorted it): 5 x 100k.
    assert gets.gets < 100, gets.gets


def test_blocks_whose_sources_are_busy_do_not_hold_up_the_rest_of_the_queue():
    nodes = cluster(4)
    m = bmap({**{b: ["n0"] for b in range(1000)}, **{b: ["n1"] for b in range(1000, 1010)}})
    q, fl = RepairQueue(), InFlight()
    fl.add(next(iter(run(m, nodes, q, fl, max_streams=1, hard_limit=1)[0])), deadline=100.0)   # n0 busy
    gets = counted(m)
    placed = []
    for _ in range(5):
        copies, _ = run(m, nodes, q, fl, blocks=[], max_streams=1, hard_limit=1, max_misses=256)
        placed += copies
        if copies:
            break
    assert [c.source for c in placed] == ["n1"]
    assert gets.gets <= 5 * 257


def test_small_blocks_fill_a_sources_streams_by_bytes_big_ones_by_count():
    assert has_room(3, 99 * MiB, 64 * MiB, 4, MiB)               # under the count: always
    assert not has_room(4, 0, 64 * MiB, 4, MiB)                  # a big one: the count
    assert has_room(4, 3 * MiB, MiB, 4, MiB)                     # small ones: their bytes
    assert not has_room(4, 3 * MiB + 1, MiB, 4, MiB)
    assert not has_room(64, 0, 1, 4, MiB)                        # and 16 a stream at most
    assert not has_room(4, 0, 1, 4, None)                        # without stream_bytes: the count
    nodes = cluster(6)
    for length, streams, expected in [(64 * KiB, None, 4), (64 * KiB, MiB, 32), (4 * MiB, MiB, 4),
                                      (KiB, MiB, 64)]:
        m = bmap({b: ["n0"] for b in range(200)}, length=length)
        copies, _ = run(m, nodes, RepairQueue(), InFlight(), stream_bytes=streams)
        assert len(copies) == expected, (length, streams)
        assert all(len(c.targets) == 2 for c in copies)


# -- through NameSystem: a setrep of many small blocks ---------------------------------


def test_a_tick_after_a_copy_lands_does_not_plan_the_whole_backlog_again():
    ns = make()
    nodes = register(ns, 3)
    n = 3000
    _, blocks, _ = write(ns, "/z", [64 * KiB] * n, replication=1)
    ns.set_replication(ROOT, "/z", 3)
    ns.tick()
    transfers = {}
    for d in nodes:
        _, cmds = ns.heartbeat(d.uuid, {"remaining": 10 << 30, "xceivers": 0}, [], [], [])
        transfers[d.uuid] = list(cmds.transfers)
    sent = sum(map(len, transfers.values()))
    assert 0 < sent < n
    by_addr = {d.address: d for d in nodes}
    source = next(u for u, t in transfers.items() if t)
    bid, gs, length, targets = transfers[source][0]
    gets = counted(ns.bmap)
    for t in targets:
        ns.heartbeat(by_addr[t].uuid, {"remaining": 10 << 30, "xceivers": 0}, [(bid, gs, length)], [], [])
    ns.tick()
    assert gets.gets < 100, gets.gets       # was ~3000: the whole backlog planned again
    _, cmds = ns.heartbeat(source, {"remaining": 10 << 30, "xceivers": 0}, [], [], [])
    assert len(cmds.transfers) == 1, cmds.transfers     # its free stream is used at once
