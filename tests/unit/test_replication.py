"""replication.plan and InFlight: what to copy, what to delete, in which order."""

from __future__ import annotations

import random
from collections import Counter

from dfs.model import DatanodeDescriptor
from dfs.namenode.blockmap import BlockInfo, BlockMap
from dfs.namenode.replication import ENDANGERED, MISPLACED, UNDER, VERY_UNDER, InFlight, Invalidate, Replicate, plan


def cluster(n: int, racks: int = 2) -> dict[str, DatanodeDescriptor]:
    return {
        f"n{i}": DatanodeDescriptor(
            uuid=f"n{i}", address=f"10.0.0.{i}:9866", rack=f"/r{i % racks}", remaining=1 << 30
        )
        for i in range(n)
    }


def bmap(blocks: dict[int, list[str]], *, repl: int = 3, length: int = 1000) -> BlockMap:
    m = BlockMap()
    for b, holders in blocks.items():
        m.add_block(BlockInfo(b, inode=1, genstamp=1, length=length, replication=repl))
        for h in holders:
            assert m.add_replica(b, h, 1, length)
    return m


def run(m: BlockMap, nodes, live=None, writable=None, in_flight=None, seed=0, **kw):
    live = set(nodes) if live is None else live
    writable = set(live) if writable is None else writable
    return plan(m, nodes, live, writable, in_flight or InFlight(), random.Random(seed), **kw)


def test_healthy_cluster_needs_nothing():
    nodes = cluster(5)
    m = bmap({1: ["n0", "n1", "n2"], 2: ["n2", "n3", "n4"]})
    assert run(m, nodes) == ([], [])


def test_under_replicated_gets_copy():
    nodes = cluster(5)
    m = bmap({7: ["n0"]})
    copies, drops = run(m, nodes)
    assert drops == []
    assert len(copies) == 1
    c = copies[0]
    assert c.block_id == 7 and c.source == "n0"
    assert len(c.targets) == 2 and len(set(c.targets)) == 2
    assert "n0" not in c.targets and set(c.targets) <= set(nodes)


def test_targets_only_writable_non_holders_and_sources_only_live():
    nodes = cluster(6)
    m = bmap({1: ["n0", "n1"]})
    live = {"n0", "n2", "n3", "n4", "n5"}  # n1 is dead
    writable = {"n2", "n3"}  # n4, n5 stale / full
    copies, _ = run(m, nodes, live, writable)
    assert len(copies) == 1
    c = copies[0]
    assert c.source == "n0"
    assert len(c.targets) == 2 and set(c.targets) == {"n2", "n3"}


def test_missing_and_incomplete_blocks_are_not_planned():
    nodes = cluster(4)
    m = bmap({1: []})
    m.add_block(BlockInfo(2, inode=1, genstamp=1, length=0, replication=3, complete=False))
    m.add_replica(2, "n0", 1, 10)
    assert run(m, nodes) == ([], [])
    m3 = bmap({3: ["n0"]})
    assert run(m3, nodes, live={"n1", "n2", "n3"}) == ([], [])  # only holder is dead


def test_no_target_available_plans_nothing():
    nodes = cluster(3)
    m = bmap({1: ["n0", "n1", "n2"]}, repl=5)
    assert run(m, nodes) == ([], [])


def test_most_endangered_first():
    nodes = cluster(8)
    m = bmap({1: ["n0", "n1"], 2: ["n2"], 3: ["n3", "n4"], 4: ["n5"]})
    copies, _ = run(m, nodes)
    assert [c.block_id for c in copies] == [2, 4, 1, 3]
    copies, _ = run(m, nodes, max_commands=2)
    assert sorted(c.block_id for c in copies) == [2, 4]
    copies, _ = run(m, nodes, max_commands=1)
    assert [c.block_id for c in copies] == [2]


def test_priority_is_relative_to_target():
    nodes = cluster(8)
    m = BlockMap()
    m.add_block(BlockInfo(1, 1, 1, 10, replication=2))  # 1 of 2 = 50%
    m.add_block(BlockInfo(2, 1, 1, 10, replication=5))  # 2 of 5 = 40%
    m.add_replica(1, "n0", 1, 10)
    m.add_replica(2, "n1", 1, 10)
    m.add_replica(2, "n2", 1, 10)
    copies, _ = run(m, nodes)
    # one replica left is the top priority (HDFS's queue 0), whatever the target
    assert [c.block_id for c in copies] == [1, 2]
    assert [c.priority for c in copies] == [ENDANGERED, UNDER]
    # within a level, the lower fraction of the target goes first
    m.add_replica(1, "n3", 1, 10)                          # 2 of 2: done
    m.add_block(BlockInfo(3, 1, 1, 10, replication=4))    # 2 of 4 = 50%
    m.add_replica(3, "n4", 1, 10)
    m.add_replica(3, "n5", 1, 10)
    copies, _ = run(m, nodes)
    assert [c.block_id for c in copies] == [2, 3]
    m.add_block(BlockInfo(4, 1, 1, 10, replication=7))    # 2 of 7: 2 * 3 < 7
    m.add_replica(4, "n6", 1, 10)
    m.add_replica(4, "n7", 1, 10)
    copies, _ = run(m, nodes)
    assert copies[0].block_id == 4 and copies[0].priority == VERY_UNDER


def test_max_streams_per_source():
    nodes = cluster(6)
    m = bmap({b: ["n0"] for b in range(10)})
    copies, _ = run(m, nodes, max_streams=3)
    assert len(copies) == 3 and all(c.source == "n0" for c in copies)
    fl = InFlight()
    for c in copies:
        fl.add(c, deadline=100.0)
    assert fl.per_source["n0"] == 3
    assert run(m, nodes, in_flight=fl, max_streams=3)[0] == []
    more, _ = run(m, nodes, in_flight=fl, max_streams=4)
    assert len(more) == 1 and more[0].block_id not in {c.block_id for c in copies}


def test_load_spreads_over_sources():
    nodes = cluster(8)
    m = bmap({b: ["n0", "n1"] for b in range(8)})
    copies, _ = run(m, nodes, max_streams=4)
    assert len(copies) == 8
    assert Counter(c.source for c in copies) == Counter({"n0": 4, "n1": 4})


def test_in_flight_not_replanned_and_expiry():
    nodes = cluster(5)
    m = bmap({1: ["n0"], 2: ["n1"]})
    fl = InFlight()
    copies, _ = run(m, nodes, in_flight=fl)
    assert len(copies) == 2
    for c in copies:
        fl.add(c, deadline=50.0)
    assert fl.pending(1) == 2 and fl.pending(2) == 2
    assert run(m, nodes, in_flight=fl) == ([], [])

    # one copy of block 1 lands: still nothing to do (1 live + 1 pending... + 1 landed)
    c1 = next(c for c in copies if c.block_id == 1)
    landed = c1.targets[0]
    m.add_replica(1, landed, 1, 1000)
    fl.done(1, landed)
    assert fl.pending(1) == 1 and fl.is_pending(1, c1.targets[1]) and not fl.is_pending(1, landed)
    assert run(m, nodes, in_flight=fl) == ([], [])

    fl.expire(49.0)  # not yet
    assert fl.pending(1) == 1 and fl.pending(2) == 2
    fl.expire(51.0)
    assert fl.pending(1) == 0 and fl.pending(2) == 0
    assert fl.targets == {} and fl.sources == {}
    assert all(v == 0 for v in fl.per_source.values())
    again, _ = run(m, nodes, in_flight=fl)
    assert sorted(c.block_id for c in again) == [1, 2]
    need = {c.block_id: len(c.targets) for c in again}
    assert need == {1: 1, 2: 2}


def test_in_flight_done_releases_source_slot():
    fl = InFlight()
    fl.add(Replicate(1, "s", ("t1", "t2")), 10.0)
    fl.add(Replicate(2, "s", ("t3",)), 10.0)
    assert fl.per_source["s"] == 2
    fl.done(1, "t1")
    assert fl.per_source["s"] == 2  # t2 still copying from s
    fl.done(1, "t2")
    assert fl.per_source["s"] == 1
    fl.done(1, "t2")  # twice: no effect
    fl.done(9, "x")
    assert fl.per_source["s"] == 1
    fl.done(2, "t3")
    assert fl.per_source["s"] == 0 and fl.targets == {}


def test_in_flight_same_source_twice_for_a_block_does_not_leak():
    """A second copy of a block from the same source while the first is in flight
    (another holder died meanwhile, so plan() asks for one more) must give back
    every stream slot it took."""
    nodes = cluster(6)
    m = bmap({1: ["n0", "n1", "n2"]})
    fl = InFlight()
    m.remove_node("n2")
    first, _ = run(m, nodes, in_flight=fl, seed=3)
    assert len(first) == 1 and len(first[0].targets) == 1
    fl.add(first[0], 10.0)
    m.remove_node("n1" if first[0].source == "n0" else "n0")  # the other holder dies too
    second, _ = run(m, nodes, in_flight=fl)
    assert len(second) == 1 and second[0].source == first[0].source
    fl.add(second[0], 20.0)
    fl.done(1, first[0].targets[0])
    fl.done(1, second[0].targets[0])
    assert fl.per_source.get(first[0].source, 0) == 0
    # and through expiry
    fl.add(Replicate(1, "n0", ("n3",)), 10.0)
    fl.add(Replicate(1, "n0", ("n4",)), 10.0)
    fl.expire(11.0)
    assert fl.per_source.get("n0", 0) == 0 and fl.targets == {} and fl.sources == {}


def test_over_replicated_invalidates_excess():
    nodes = cluster(6, racks=3)
    m = bmap({1: ["n0", "n1", "n2", "n3", "n4"]})
    copies, drops = run(m, nodes)
    assert copies == []
    assert len(drops) == 2 and all(isinstance(d, Invalidate) and d.block_id == 1 for d in drops)
    kept = {"n0", "n1", "n2", "n3", "n4"} - {d.node for d in drops}
    assert len({nodes[n].rack for n in kept}) == 3  # spread kept
    # not while a copy of that block is in flight
    fl = InFlight()
    fl.add(Replicate(1, "n0", ("n5",)), 10.0)
    assert run(m, nodes, in_flight=fl)[1] == []


def test_corrupt_replica_invalidated_when_good_exists():
    nodes = cluster(5)
    m = bmap({1: ["n0", "n1", "n2"]})
    m.mark_corrupt(1, "n1")
    # replaced first: the bad copy stays until the good ones are back to target
    copies, drops = run(m, nodes)
    assert drops == []
    assert len(copies) == 1 and copies[0].source in {"n0", "n2"}
    assert len(copies[0].targets) == 1 and copies[0].targets[0] in {"n3", "n4"}
    fl = InFlight()
    fl.add(copies[0], 10.0)
    assert run(m, nodes, in_flight=fl) == ([], [])
    m.add_replica(1, copies[0].targets[0], 1, 1000)
    fl.done(1, copies[0].targets[0])
    # ... then deleted
    assert run(m, nodes, in_flight=fl) == ([], [Invalidate(1, "n1")])


def test_corrupt_replica_deleted_first_when_its_node_is_the_only_target():
    nodes = cluster(3)
    m = bmap({1: ["n0", "n1", "n2"]})
    m.mark_corrupt(1, "n1")
    copies, drops = run(m, nodes)
    assert copies == [] and drops == [Invalidate(1, "n1")]
    m.remove_replica(1, "n1")          # the node reports it deleted
    copies, drops = run(m, nodes)
    assert drops == [] and [c.targets for c in copies] == [("n1",)]


def test_a_node_still_deleting_its_replica_gets_no_copy_of_that_block_yet():
    """Two corrupt replicas of three: both are told to go, and the map forgets them at
    once. A copy sent to one of them before its deletion arrived was deleted with the
    old replica, and the namenode waited out the copy's 30 s timeout."""
    nodes = cluster(3)
    m = bmap({1: ["n0", "n1", "n2"]})
    m.mark_corrupt(1, "n1")
    m.mark_corrupt(1, "n2")
    _, drops = run(m, nodes, delete_first={1})
    assert sorted(d.node for d in drops) == ["n1", "n2"]
    for d in drops:
        m.remove_replica(d.block_id, d.node)      # as the monitor does when it queues them
    backlog: set[int] = set()
    stuck: set[int] = set()
    copies, _ = run(m, nodes, backlog=backlog, stuck=stuck, leaving={1: {"n1", "n2"}})
    assert copies == [] and backlog == {1} and stuck == set()   # looked at again next tick
    copies, _ = run(m, nodes, backlog=backlog, stuck=stuck, leaving={1: {"n2"}})
    assert [c.targets for c in copies] == [("n1",)]
    copies, _ = run(m, nodes, leaving={})
    assert [sorted(c.targets) for c in copies] == [["n1", "n2"]]


def test_only_corrupt_replicas_are_kept():
    nodes = cluster(5)
    m = bmap({1: ["n0"]})
    m.mark_corrupt(1, "n0")
    assert run(m, nodes) == ([], [])


def test_decommissioning_replica_not_counted_but_serves():
    nodes = cluster(5)
    nodes["n2"].admin_state = "decommissioning"
    m = bmap({1: ["n0", "n1", "n2"]})
    writable = {"n0", "n1", "n3", "n4"}
    copies, drops = run(m, nodes, writable=writable)
    assert drops == []
    assert len(copies) == 1 and copies[0].targets[0] in {"n3", "n4"} and len(copies[0].targets) == 1

    # the only replica is on a decommissioning node: it is the source
    m2 = bmap({2: ["n2"]})
    copies, drops = run(m2, nodes, writable=writable)
    assert drops == []
    assert len(copies) == 1 and copies[0].source == "n2"
    assert len(copies[0].targets) == 3 and "n2" not in copies[0].targets

    # fully replicated elsewhere: the decommissioning copy is not "excess"
    m3 = bmap({3: ["n0", "n1", "n3", "n2"]})
    assert run(m3, nodes, writable=writable) == ([], [])


def test_random_plans_respect_invariants():
    for seed in range(200):
        rng = random.Random(seed)
        nodes = cluster(rng.randint(1, 12), racks=rng.randint(1, 4))
        ids = list(nodes)
        live = {n for n in ids if rng.random() < 0.85}
        writable = {n for n in live if rng.random() < 0.9}
        for n in ids:
            if rng.random() < 0.1:
                nodes[n].admin_state = "decommissioning"
                writable.discard(n)
        m = BlockMap()
        for b in range(rng.randint(0, 40)):
            m.add_block(BlockInfo(b, 1, 1, 10, replication=rng.randint(1, 4)))
            for n in rng.sample(ids, rng.randint(0, len(ids))):
                m.add_replica(b, n, 1, 10)
            if ids and rng.random() < 0.2:
                m.mark_corrupt(b, rng.choice(ids))
        fl = InFlight()
        max_streams = rng.randint(1, 4)
        copies, drops = plan(m, nodes, live, writable, fl, rng, max_streams=max_streams)
        per_source = Counter(c.source for c in copies)
        assert all(v <= max_streams for v in per_source.values())
        assert len({c.block_id for c in copies}) == len(copies)
        for c in copies:
            assert c.source in live and c.source in m.holders(c.block_id)
            assert c.targets and len(set(c.targets)) == len(c.targets)
            assert set(c.targets) <= writable
            assert not set(c.targets) & (m.holders(c.block_id) | m.corrupt.get(c.block_id, set()))
            usable = [
                n for n in m.holders(c.block_id) if n in live and nodes[n].admin_state == "normal"
            ]
            assert len(usable) + len(c.targets) <= m.blocks[c.block_id].replication
        for d in drops:
            in_good = d.node in m.holders(d.block_id) and d.node in live
            in_bad = d.node in m.corrupt.get(d.block_id, set())
            assert in_good or in_bad
            if in_good:  # excess: still enough usable copies afterwards
                usable = [
                    n
                    for n in m.holders(d.block_id)
                    if n in live and nodes[n].admin_state == "normal"
                ]
                dropped = [x for x in drops if x.block_id == d.block_id and x.node in usable]
                assert len(usable) - len(dropped) == m.blocks[d.block_id].replication
            else:  # corrupt: only when a good copy exists
                assert m.holders(d.block_id) & live


# -- healing: failures, avoidance, throttles, stale holders, racks ------------------------------


def test_in_flight_failed_and_drop_node_free_slots_and_avoid():
    fl = InFlight()
    fl.add(Replicate(1, "s", ("t1", "t2"), length=10), 100.0)
    fl.add(Replicate(2, "s", ("t3",), length=20), 100.0)
    assert fl.bytes == 40 and fl.per_target == {"t1": 1, "t2": 1, "t3": 1} and fl.bytes_from == {"s": 40}
    assert sorted(fl.copies()) == [(1, "s", 10), (1, "s", 10), (2, "s", 20)]
    assert fl.failed(1, "s", ["t2"], now=5.0, avoid_for=10.0) == ["t2"]
    assert fl.is_pending(1, "t1") and not fl.is_pending(1, "t2") and fl.per_source["s"] == 2
    assert fl.avoided(1, 6.0) == {"t2"} and fl.avoided(1, 16.0) == set()
    assert fl.drop_node("t3") == {2}
    assert fl.per_source["s"] == 1 and fl.bytes == 10 and fl.bytes_from == {"s": 10}
    assert fl.drop_node("s") == {1}
    assert fl.targets == {} and fl.sources == {} and fl.bytes == 0 and fl.per_source["s"] == 0
    assert fl.bytes_from == {} and fl.copies() == []


def test_expired_copy_is_retried_from_another_source_and_target():
    nodes = cluster(6)
    m = bmap({1: ["n0", "n1"]})
    fl = InFlight()
    first, _ = run(m, nodes, in_flight=fl)
    fl.add(first[0], 10.0)
    fl.expire(11.0, avoid_for=60.0)
    again, _ = run(m, nodes, in_flight=fl, now=12.0)
    assert again[0].source != first[0].source and again[0].targets != first[0].targets
    # with no alternative, the avoided ones are used anyway
    m2 = bmap({2: ["n0", "n1"]})
    fl2 = InFlight()
    fl2.add(Replicate(2, "n0", ("n2",)), 1.0)
    fl2.expire(2.0, avoid_for=60.0)
    retry, _ = run(m2, nodes, live=set(nodes), writable={"n0", "n1", "n2"}, in_flight=fl2, now=3.0)
    assert [(c.source, c.targets) for c in retry] == [("n1", ("n2",))]


def test_bytes_budget_and_incoming_cap():
    nodes = cluster(6)
    m = bmap({b: ["n0", "n1"] for b in range(10)}, length=100)
    copies, _ = run(m, nodes, max_bytes=350)
    assert len(copies) == 4                                  # stops once 350 bytes are in flight
    backlog: set[int] = set()
    copies, _ = run(m, nodes, max_incoming=1, backlog=backlog)
    assert len(copies) == 4 and len({c.targets[0] for c in copies}) == 4
    assert backlog == set(range(10)) - {c.block_id for c in copies}
    # endangered blocks are not held back by the byte budget, and get the hard limit
    m1 = bmap({b: ["n0"] for b in range(8)}, length=100)
    copies, _ = run(m1, nodes, max_bytes=1, max_streams=2, hard_limit=5)
    assert len(copies) == 5 and all(c.priority == ENDANGERED for c in copies)


def test_no_trimming_while_a_holder_is_stale():
    nodes = cluster(5)
    m = bmap({1: ["n0", "n1", "n2", "n3"]})
    assert run(m, nodes, stale={"n3"}) == ([], [])
    _, drops = run(m, nodes)
    assert len(drops) == 1


def test_stale_source_is_the_last_choice():
    nodes = cluster(5)
    m = bmap({1: ["n0", "n1"]})
    for seed in range(10):
        copies, _ = run(m, nodes, stale={"n0"}, seed=seed)
        assert copies[0].source == "n1"


def test_blocks_on_one_rack_get_a_copy_on_another_then_the_surplus_goes():
    nodes = cluster(6, racks=2)                 # n0, n2, n4 on /r0; n1, n3, n5 on /r1
    m = bmap({1: ["n0", "n2", "n4"]})
    assert run(m, nodes) == ([], [])            # only when asked to fix racks
    copies, _ = run(m, nodes, fix_racks=True)
    assert len(copies) == 1 and copies[0].priority == MISPLACED
    assert nodes[copies[0].targets[0]].rack == "/r1"
    m.add_replica(1, copies[0].targets[0], 1, 1000)
    copies, drops = run(m, nodes, fix_racks=True)
    assert copies == [] and len(drops) == 1 and nodes[drops[0].node].rack == "/r0"


def test_only_the_given_blocks_are_planned():
    nodes = cluster(5)
    m = bmap({1: ["n0"], 2: ["n1"], 3: ["n2"]})
    copies, _ = run(m, nodes, blocks=[2, 99])
    assert [c.block_id for c in copies] == [2]


def test_a_leaving_node_is_drained_only_when_its_blocks_reach_their_target_elsewhere():
    from dfs.namenode.replication import undrained
    m = bmap({1: ["n0", "n1", "n2"], 2: ["n0", "n1", "n2", "n3"], 3: ["n1", "n2", "n3"]})
    m.add_block(BlockInfo(4, inode=1, genstamp=1, length=0, replication=3, complete=False))
    m.add_replica(4, "n0", 1, 0)                          # being written: not counted here
    assert undrained(m, "n0", {"n1", "n2"}) == 2           # 3 nodes, replication 3: 2 left is short
    assert undrained(m, "n0", {"n1", "n2", "n3"}) == 1     # block 1 still needs its copy on n3
    assert m.add_replica(1, "n3", 1, 1000)
    assert undrained(m, "n0", {"n1", "n2", "n3"}) == 0
    assert undrained(m, "n0", {"n0", "n1", "n2"}) == 2     # its own replicas never count
    assert undrained(m, "n0", {"n1", "n2"}, count=False) == 1   # stops at the first


def test_a_block_no_node_can_take_is_stuck_not_backlog():
    """Fewer nodes than the target: nothing to retry until a node joins. In the backlog
    it was re-planned every tick and kept every datanode beating fast, for good."""
    nodes = cluster(2)
    m = bmap({1: ["n0", "n1"], 2: ["n0"]})
    backlog: set[int] = set()
    stuck: set[int] = set()
    copies, _ = run(m, nodes, backlog=backlog, stuck=stuck)
    assert [(c.block_id, c.targets) for c in copies] == [(2, ("n1",))]
    assert stuck == {1, 2} and backlog == set()      # 2: one copy, then nowhere left
    # Full for now (the incoming cap) is not stuck: a slot frees up soon.
    nodes = cluster(4)
    m = bmap({1: ["n0", "n1"], 2: ["n0", "n1"]})
    backlog, stuck = set(), set()
    copies, _ = run(m, nodes, max_incoming=0, backlog=backlog, stuck=stuck)
    assert copies == [] and backlog == {1, 2} and stuck == set()


def test_a_block_only_nodes_without_room_for_it_could_take_is_stuck():
    nodes = cluster(3)
    nodes["n2"].remaining = 999                     # less than the block
    m = bmap({2: ["n0", "n1"]}, length=1000)
    backlog: set[int] = set()
    stuck: set[int] = set()
    copies, _ = run(m, nodes, backlog=backlog, stuck=stuck)
    assert copies == [] and stuck == {2} and backlog == set()
