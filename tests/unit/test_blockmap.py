"""BlockMap (where replicas are) and Membership (live / stale / dead)."""

from __future__ import annotations

from dfs.model import DatanodeDescriptor
from dfs.namenode.blockmap import BlockInfo, BlockMap
from dfs.namenode.membership import DEAD, LIVE, STALE, Membership


def bmap_with(*infos: BlockInfo) -> BlockMap:
    m = BlockMap()
    for i in infos:
        m.add_block(i)
    return m


def info(
    bid: int, *, gs: int = 5, length: int = 100, repl: int = 3, complete: bool = True
) -> BlockInfo:
    return BlockInfo(
        bid, inode=bid * 10, genstamp=gs, length=length, replication=repl, complete=complete
    )


def check_consistent(m: BlockMap) -> None:
    """by_node is the exact inverse of replicas ∪ corrupt."""
    inverse: dict[str, set[int]] = {}
    for table in (m.replicas, m.corrupt):
        for b, nodes in table.items():
            for n in nodes:
                inverse.setdefault(n, set()).add(b)
    for n in set(inverse) | set(m.by_node):
        assert inverse.get(n, set()) == m.by_node.get(n, set()), n
    for b, nodes in m.replicas.items():
        assert not nodes & m.corrupt.get(b, set()), b
    for b, nodes in m.holder_marked.items():
        assert nodes and nodes <= m.corrupt.get(b, set()), b


# -- BlockMap -----------------------------------------------------------------


def test_add_replica_and_holders():
    m = bmap_with(info(1), info(2))
    assert m.holders(1) == set()
    assert m.add_replica(1, "a", 5, 100)
    assert m.add_replica(1, "b", 6, 100)  # newer genstamp is fine
    assert m.holders(1) == {"a", "b"}
    assert not m.add_replica(99, "a", 5, 100)  # unknown
    assert not m.add_replica(2, "a", 4, 100)  # stale genstamp
    assert m.holders(2) == set()
    assert m.holders(12345) == set()
    check_consistent(m)


def test_length_mismatch_on_complete_block_is_corrupt():
    m = bmap_with(info(1, length=100), info(2, length=0, complete=False))
    assert m.add_replica(1, "a", 5, 99)
    assert m.holders(1) == set() and m.corrupt[1] == {"a"}
    # under construction: lengths still moving, not corrupt
    assert m.add_replica(2, "a", 5, 42)
    assert m.holders(2) == {"a"} and not m.corrupt.get(2)
    # a corrupt replica stays corrupt even if later reported with the right length
    assert m.add_replica(1, "a", 5, 100)
    assert m.holders(1) == set() and "a" in m.corrupt[1]
    check_consistent(m)


def test_node_report_replaces_and_returns_unwanted():
    m = bmap_with(info(1), info(2), info(3, gs=9))
    m.add_replica(1, "a", 5, 100)
    m.add_replica(2, "a", 5, 100)
    m.add_replica(2, "b", 5, 100)
    unwanted = m.node_report("a", [(2, 5, 100), (3, 8, 100), (77, 1, 10), (78, 1, 10)])
    assert sorted(unwanted) == [3, 77, 78]  # stale genstamp + unknown
    assert m.holders(1) == set()  # no longer reported by a
    assert m.holders(2) == {"a", "b"}
    assert m.holders(3) == set()
    assert m.by_node["a"] == {2}
    assert m.node_report("a", []) == []
    assert m.holders(2) == {"b"} and m.by_node["a"] == set()
    check_consistent(m)


def test_node_report_marks_length_mismatch_corrupt():
    m = bmap_with(info(1, length=100))
    assert m.node_report("a", [(1, 5, 50)]) == []
    assert m.corrupt[1] == {"a"} and m.holders(1) == set()
    # a known-corrupt replica reported again stays corrupt, and is not "unwanted"
    assert m.node_report("a", [(1, 5, 100)]) == []
    assert m.holders(1) == set() and m.corrupt[1] == {"a"}
    check_consistent(m)


def test_node_report_without_corrupt_replica_forgets_it():
    """A full report is the truth: a corrupt replica the node no longer lists is gone."""
    m = bmap_with(info(1), info(2))
    m.add_replica(1, "a", 5, 100)
    m.add_replica(1, "b", 5, 100)
    m.mark_corrupt(1, "b")
    m.mark_corrupt(2, "b")
    assert m.node_report("b", [(2, 5, 100)]) == []
    assert not m.corrupt.get(1) and m.corrupt[2] == {"b"}
    assert m.by_node["b"] == {2}
    check_consistent(m)
    assert m.remove_node("b") == {2}
    assert not m.corrupt.get(2)
    check_consistent(m)


def test_a_nodes_own_mark_goes_when_its_full_report_lists_the_replica_again():
    """The node found its replica bad (its scanner: heartbeats say so while it holds it as
    corrupt) and now lists it as healthy (restarted, mended): its word is taken."""
    m = bmap_with(info(1), info(2))
    for n in "abc":
        m.add_replica(1, n, 5, 100)
        m.mark_corrupt(1, n, by_holder=True)
    m.add_replica(2, "a", 5, 100)
    m.mark_corrupt(2, "a", by_holder=True)
    assert m.holders(1) == set() and m.corrupt[1] == {"a", "b", "c"}
    check_consistent(m)
    assert m.node_report("a", [(1, 5, 100), (2, 5, 100)]) == []
    assert m.holders(1) == {"a"} and m.corrupt[1] == {"b", "c"}
    assert m.holders(2) == {"a"} and not m.corrupt.get(2)
    check_consistent(m)
    # a revoked mark is judged afresh: a wrong length is still corrupt
    m.mark_corrupt(1, "b", by_holder=True)
    assert m.node_report("b", [(1, 5, 99)]) == []
    assert "b" in m.corrupt[1] and "b" not in m.holders(1)
    check_consistent(m)


def test_a_readers_mark_stays_while_the_node_lists_the_replica():
    """The node cannot check what a reader saw: only the replica's deletion clears it,
    whether the reader's mark came first or after the node's own."""
    m = bmap_with(info(1))
    for n in "ab":
        m.add_replica(1, n, 5, 100)
    m.mark_corrupt(1, "a")                       # a reader
    m.mark_corrupt(1, "a", by_holder=True)       # then the node itself: still the reader's
    m.mark_corrupt(1, "b", by_holder=True)
    m.mark_corrupt(1, "b")                       # the node's, then a reader's
    assert m.node_report("a", [(1, 5, 100)]) == [] and m.node_report("b", [(1, 5, 100)]) == []
    assert m.holders(1) == set() and m.corrupt[1] == {"a", "b"}
    check_consistent(m)
    m.remove_replica(1, "a")                     # deleted: forgotten, and a new copy counts
    m.add_replica(1, "a", 5, 100)
    assert m.holders(1) == {"a"} and m.corrupt[1] == {"b"}
    check_consistent(m)


def test_mark_corrupt_and_remove_replica():
    m = bmap_with(info(1))
    for n in "abc":
        m.add_replica(1, n, 5, 100)
    m.mark_corrupt(1, "b")
    m.mark_corrupt(42, "b")  # unknown block: ignored
    assert m.holders(1) == {"a", "c"} and m.corrupt[1] == {"b"}
    assert 42 not in m.corrupt
    check_consistent(m)
    m.remove_replica(1, "b")
    m.remove_replica(1, "a")
    assert m.holders(1) == {"c"} and not m.corrupt[1]
    check_consistent(m)


def test_remove_node():
    m = bmap_with(info(1), info(2), info(3))
    m.add_replica(1, "a", 5, 100)
    m.add_replica(2, "a", 5, 100)
    m.add_replica(2, "b", 5, 100)
    m.mark_corrupt(3, "a")
    assert m.remove_node("a") == {1, 2, 3}
    assert m.holders(1) == set() and m.holders(2) == {"b"} and not m.corrupt[3]
    assert m.remove_node("a") == set()
    assert m.remove_node("never") == set()
    check_consistent(m)


def test_remove_block_returns_all_holders():
    m = bmap_with(info(1))
    m.add_replica(1, "a", 5, 100)
    m.add_replica(1, "b", 5, 100)
    m.mark_corrupt(1, "c")
    assert m.remove_block(1) == {"a", "b", "c"}
    assert 1 not in m.blocks and m.holders(1) == set()
    assert m.remove_block(1) == set()
    assert not m.add_replica(1, "a", 5, 100)
    check_consistent(m)


def test_counts():
    m = bmap_with(
        info(1, repl=3), info(2, repl=3), info(3, repl=2), info(4), info(5), info(6, complete=False)
    )
    for n in "abc":
        m.add_replica(1, n, 5, 100)  # healthy
    m.add_replica(2, "a", 5, 100)  # under (1 of 3)
    m.add_replica(3, "a", 5, 100)
    m.add_replica(3, "d", 5, 100)  # d is dead: under (1 of 2 live)
    m.mark_corrupt(4, "a")  # only a corrupt copy: corrupt
    # 5: no replica at all -> missing; 6 under construction: ignored
    blocks, under, missing, corrupt = m.counts({"a", "b", "c"})
    assert (under, missing, corrupt) == (2, 1, 1)
    assert blocks == 6
    assert m.counts(set())[1:] == (0, 4, 1)
    # c decommissioning: block 1 is under-replicated (2 of 3 in service); a block only a
    # leaving node holds is under-replicated, not missing (readable from it)
    assert m.counts({"a", "b", "c"}, {"a", "b"})[1:] == (3, 1, 1)
    m.add_replica(5, "c", 5, 100)
    assert m.counts({"a", "b", "c"}, {"a", "b"})[1:] == (4, 0, 1)


# -- Membership -------------------------------------------------------------------


def dn(i: int) -> DatanodeDescriptor:
    return DatanodeDescriptor(uuid=f"u{i}", address=f"127.0.0.{i}:9866", remaining=1 << 30)


def test_membership_transitions():
    m = Membership(heartbeat_interval=3.0, dead_timeout=30.0)
    a, b = dn(1), dn(2)
    m.register(a, 100.0)
    m.register(b, 100.0)
    assert a.registered_at == 100.0 and a.last_heartbeat == 100.0
    assert m.state(a, 100.0) == LIVE
    assert m.state(a, 106.0) == LIVE  # exactly two intervals: still live
    assert m.state(a, 106.5) == STALE
    assert m.state(a, 130.0) == STALE
    assert m.state(a, 130.5) == DEAD
    assert m.heartbeat("u1", 110.0, xceivers=4, remaining=5) is a
    assert a.xceivers == 4 and a.remaining == 5 and a.last_heartbeat == 110.0
    assert m.state(a, 115.0) == LIVE
    assert m.live_ids(115.0) == {"u1", "u2"}  # stale counts as live
    assert [n.uuid for n in m.live(115.0, include_stale=False)] == ["u1"]
    assert m.heartbeat("nobody", 115.0) is None


def test_newly_dead_reported_once():
    m = Membership(heartbeat_interval=1.0, dead_timeout=10.0)
    a, b = dn(1), dn(2)
    m.register(a, 0.0)
    m.register(b, 0.0)
    assert m.newly_dead(10.0) == []
    m.heartbeat("u2", 5.0)
    assert [n.uuid for n in m.newly_dead(10.5)] == ["u1"]
    assert m.newly_dead(11.0) == []
    assert m.state(a, 10.6) == DEAD
    # a dead node's heartbeat is refused until it registers again, even if it
    # would look fresh by its timestamp
    assert m.heartbeat("u1", 12.0) is None
    assert m.state(a, 12.0) == DEAD and "u1" not in m.live_ids(12.0)
    assert [n.uuid for n in m.newly_dead(16.0)] == ["u2"]
    m.register(dn(1), 20.0)
    assert m.state(m.nodes["u1"], 20.0) == LIVE and "u1" not in m.dead
    assert m.newly_dead(25.0) == []
    assert [n.uuid for n in m.newly_dead(31.0)] == ["u1"]


def test_register_same_address_new_uuid_replaces():
    m = Membership()
    m.register(dn(1), 0.0)
    m.nodes["u1"].admin_state = "decommissioning"
    fresh = DatanodeDescriptor(uuid="new", address="127.0.0.1:9866")
    m.register(fresh, 1.0)
    assert set(m.nodes) == {"new"}
    assert m.by_address("127.0.0.1:9866") is fresh
    assert m.by_address("127.0.0.9:9866") is None


def test_reregister_keeps_admin_state():
    m = Membership()
    m.register(dn(1), 0.0)
    m.nodes["u1"].admin_state = "decommissioning"
    again = dn(1)
    m.register(again, 5.0)
    assert again.admin_state == "decommissioning" and m.nodes["u1"] is again
