"""Replica placement invariants over many random seeds and topologies."""

from __future__ import annotations

import random
from collections import Counter

from dfs.model import DatanodeDescriptor
from dfs.namenode.placement import choose_excess, choose_targets, sort_for_reader

SEEDS = range(300)


def node(
    i: int,
    rack: str = "/r0",
    host: str | None = None,
    *,
    remaining: int = 1 << 30,
    xceivers: int = 0,
) -> DatanodeDescriptor:
    host = host or f"10.0.0.{i}"
    return DatanodeDescriptor(
        uuid=f"dn{i}", address=f"{host}:9866", rack=rack, remaining=remaining, xceivers=xceivers
    )


def topology(rng: random.Random) -> list[DatanodeDescriptor]:
    """1..6 racks, 1..6 nodes each, random load; sometimes two datanodes share a host."""
    nodes, i = [], 0
    for r in range(rng.randint(1, 6)):
        for _ in range(rng.randint(1, 6)):
            host = f"10.0.{r}.{i}" if rng.random() > 0.1 or not nodes else None
            d = node(
                i, f"/rack{r}", host, remaining=rng.randint(0, 10) << 20, xceivers=rng.randint(0, 5)
            )
            if host is None:  # same host as the previous node, other port
                d.address = nodes[-1].host + f":{9900 + i}"
            nodes.append(d)
            i += 1
    return nodes


def test_choose_targets_invariants():
    for seed in SEEDS:
        rng = random.Random(seed)
        nodes = topology(rng)
        n = rng.randint(0, 6)
        excluded = {d.address for d in rng.sample(nodes, rng.randint(0, len(nodes) // 2))}
        block_size = rng.choice([0, 1 << 20, 5 << 20])
        writer = rng.choice(nodes + [None])
        writer_host = writer.host if writer is not None else "192.168.1.1"
        eligible = [d for d in nodes if d.address not in excluded and d.remaining >= block_size]

        out = choose_targets(
            n, nodes, rng, writer_host=writer_host, excluded=excluded, block_size=block_size
        )
        ctx = f"seed {seed}"
        assert len(out) == min(n, len(eligible)), ctx
        assert len({d.uuid for d in out}) == len(out), ctx
        assert all(d.address not in excluded for d in out), ctx
        assert all(d.remaining >= block_size for d in out), ctx
        assert all(d in eligible for d in out), ctx
        if not out:
            continue
        local = [d for d in eligible if d.host == writer_host]
        if local:
            assert out[0].host == writer_host, ctx
        racks = {d.rack for d in eligible}
        if len(out) >= 2 and any(d.rack != out[0].rack for d in eligible if d is not out[0]):
            assert out[1].rack != out[0].rack, ctx
        if len(out) >= 3 and out[0].rack != out[1].rack:
            same_as_second = [d for d in eligible if d.rack == out[1].rack and d not in out[:2]]
            if same_as_second:
                assert out[2].rack == out[1].rack, ctx
        if len(racks) > 1 and len(out) >= 2:
            assert len({d.rack for d in out}) >= 2, ctx


def test_choose_targets_with_chosen_replicas():
    """Re-replication: existing holders are skipped and count for rack spread."""
    for seed in SEEDS:
        rng = random.Random(seed)
        nodes = topology(rng)
        chosen = rng.sample(nodes, rng.randint(1, min(2, len(nodes))))
        n = rng.randint(1, 3)
        out = choose_targets(n, nodes, rng, chosen=chosen)
        eligible = [d for d in nodes if d not in chosen]
        assert len(out) == min(n, len(eligible))
        assert not {d.uuid for d in out} & {d.uuid for d in chosen}
        if len(chosen) == 1 and out and any(d.rack != chosen[0].rack for d in eligible):
            assert out[0].rack != chosen[0].rack, f"seed {seed}"


def test_choose_targets_edge_cases():
    rng = random.Random(0)
    nodes = [node(i) for i in range(3)]
    assert choose_targets(0, nodes, rng) == []
    assert choose_targets(3, [], rng) == []
    assert choose_targets(3, nodes, rng, excluded=[d.address for d in nodes]) == []
    assert choose_targets(3, nodes, rng, block_size=2 << 30) == []
    assert len(choose_targets(10, nodes, rng)) == 3
    # a node whose host matches goes first even when it is the busiest
    busy = node(9, host="10.9.9.9", xceivers=100, remaining=1)
    for seed in range(50):
        out = choose_targets(2, nodes + [busy], random.Random(seed), writer_host="10.9.9.9")
        assert out[0] is busy


def test_a_node_with_a_dead_data_dir_is_never_chosen():
    # Emptiest, idlest, on the writer's host, the only node of its rack: still never
    # a target, for a write or a repair -- whatever room it last reported.
    for seed in SEEDS:
        rng = random.Random(seed)
        nodes = [node(i, f"/r{i % 2}", remaining=1 << 20, xceivers=3) for i in range(5)]
        dead = node(9, "/r9", host="10.9.9.9", remaining=1 << 40)
        dead.storage_failed = "Input/output error"
        out = choose_targets(3, nodes + [dead], rng, writer_host="10.9.9.9")
        assert dead not in out and len(out) == 3
        assert dead not in choose_targets(1, [nodes[0], dead], rng, chosen=[nodes[1]], block_size=1 << 10)
    assert choose_targets(1, [dead], random.Random(0)) == []


def test_choose_targets_does_not_mutate_inputs():
    nodes = [node(i, f"/r{i % 2}") for i in range(6)]
    before = list(nodes)
    choose_targets(3, nodes, random.Random(1), excluded=[nodes[0].address], chosen=[nodes[1]])
    assert nodes == before


def test_prefers_fewer_xceivers():
    nodes = [node(i, xceivers=0 if i < 5 else 10) for i in range(10)]
    picks = Counter()
    for seed in range(2000):
        picks[choose_targets(1, nodes, random.Random(seed))[0].xceivers] += 1
    # uniform would give 50%; two choices gives ~ 5/10 * 4/9 = 22%
    assert picks[10] / 2000 < 0.33
    assert picks[10] > 0, "power of two choices still spreads load"


def test_prefers_more_space():
    nodes = [node(i, remaining=(1 << 30) if i < 5 else (1 << 20)) for i in range(10)]
    picks = Counter()
    for seed in range(2000):
        picks[choose_targets(1, nodes, random.Random(seed))[0].remaining] += 1
    assert picks[1 << 20] / 2000 < 0.33


def test_three_racks_three_replicas_typical():
    """With plenty of nodes on 3 racks: exactly 2 racks used for 3 replicas (HDFS default)."""
    nodes = [node(i, f"/r{i % 3}") for i in range(12)]
    for seed in SEEDS:
        out = choose_targets(3, nodes, random.Random(seed), writer_host=nodes[seed % 12].host)
        assert out[0] is nodes[seed % 12]
        assert out[1].rack != out[0].rack
        assert out[2].rack == out[1].rack
        assert len({d.rack for d in out}) == 2


# -- readers ------------------------------------------------------------------


def test_sort_for_reader_order():
    for seed in SEEDS:
        rng = random.Random(seed)
        nodes = topology(rng)
        reader = rng.choice(nodes)
        reader_rack = rng.choice([reader.rack, None])
        stale = {d.uuid for d in nodes if rng.random() < 0.3}
        out = sort_for_reader(list(nodes), reader.host, reader_rack, stale, seed)
        assert sorted(d.uuid for d in out) == sorted(d.uuid for d in nodes)

        def rank(d, host=reader.host, rack=reader_rack, stale=stale):
            near = 0 if d.host == host else 1 if rack is not None and d.rack == rack else 2
            return (d.uuid in stale, near)

        ranks = [rank(d) for d in out]
        assert ranks == sorted(ranks), f"seed {seed}"


def test_sort_for_reader_explicit():
    a = node(1, "/r1", "h1")
    b = node(2, "/r1", "h2")
    c = node(3, "/r2", "h3")
    s = node(4, "/r1", "h1")  # same host, but stale
    out = sort_for_reader([c, s, b, a], "h1", "/r1", {s.uuid}, 7)
    assert out == [a, b, c, s]
    # off-cluster reader: every fresh node ranks equal, stale still last
    out = sort_for_reader([s, c, b, a], "client", None, {s.uuid}, 7)
    assert out[-1] is s and {d.uuid for d in out[:3]} == {a.uuid, b.uuid, c.uuid}


def test_sort_for_reader_shuffles_ties():
    nodes = [node(i, "/r0") for i in range(5)]
    firsts = {
        sort_for_reader(nodes, "elsewhere", None, set(), random.Random(seed))[0].uuid
        for seed in range(100)
    }
    assert len(firsts) > 1


def test_sort_for_reader_spreads_ties_over_blocks_and_answers_one_reader_alike():
    nodes = [node(i, "/r0") for i in range(5)]
    firsts = [sort_for_reader(nodes, "elsewhere", None, set(), block)[0].uuid for block in range(100)]
    assert len(set(firsts)) == 5 and max(firsts.count(u) for u in set(firsts)) < 40
    # locate --json and fsspec's get_block_locations, asked one after the other, agree
    for block in range(20):
        orders = {tuple(d.uuid for d in sort_for_reader(random.sample(nodes, 5), "elsewhere", None, set(), block))
                  for _ in range(10)}
        assert len(orders) == 1
    others = {sort_for_reader(nodes, f"reader{i}", None, set(), 1)[0].uuid for i in range(50)}
    assert len(others) > 1   # readers of one block spread too


# -- excess ---------------------------------------------------------------------


def test_choose_excess_keeps_rack_spread():
    for seed in SEEDS:
        rng = random.Random(seed)
        holders = [
            node(i, f"/r{rng.randint(0, 3)}", remaining=rng.randint(1, 100))
            for i in range(rng.randint(1, 8))
        ]
        target = rng.randint(1, 5)
        drop = choose_excess(list(holders), target)
        keep = [d for d in holders if d not in drop]
        assert len(keep) == min(len(holders), target)
        assert len(drop) == len(holders) - len(keep)
        assert len({d.uuid for d in drop}) == len(drop)
        assert len({d.rack for d in keep}) == min(len({d.rack for d in holders}), target), (
            f"seed {seed}"
        )


def test_choose_excess_prefers_crowded_rack_then_least_space():
    a = node(1, "/r1", remaining=10)
    b = node(2, "/r1", remaining=50)
    c = node(3, "/r2", remaining=1)
    d = node(4, "/r3", remaining=5)
    assert choose_excess([a, b, c, d], 3) == [a]
    assert choose_excess([a, b, c, d], 2) == [a, c]
    assert choose_excess([a, b], 2) == []


def test_choose_excess_takes_from_the_rack_with_the_most_replicas():
    """setrep 5 -> 4 with replicas 3 on /r1 and 2 on /r2: one from /r1 (2+2), not the
    emptiest /r2 node (3+1, as when any rack with more than one replica would do)."""
    r1 = [node(i, "/r1", remaining=50) for i in (1, 2, 3)]
    r2 = [node(4, "/r2", remaining=1), node(5, "/r2", remaining=60)]
    (dropped,) = choose_excess(r1 + r2, 4)
    assert dropped.rack == "/r1"
    assert sorted(d.rack for d in choose_excess(r1 + r2, 2)) == ["/r1", "/r1", "/r2"]


def test_an_ipv6_caller_is_near_its_own_datanode():
    # The namenode takes a caller's host from its gRPC peer. "ipv6:[::1]:51234" gave
    # none, so an IPv6 client's own replica was never put first.
    from dfs.namenode.service import _caller
    from dfs.rpc.v1 import namenode_pb2 as pb

    class Peer:
        def __init__(self, peer):
            self._peer = peer

        def peer(self):
            return self._peer

    here, there = node(1, "/r1", "[::1]"), node(2, "/r1", "[::2]")
    # grpc quotes the brackets (tests/integration/test_grpc_peer.py sees a real one)
    for peer, host in (("ipv6:%5B::1%5D:51234", "[::1]"), ("ipv6:[::1]:51234", "[::1]"),
                       ("ipv4:127.0.0.2:51234", "127.0.0.2")):
        assert _caller(pb.Caller(user="u"), Peer(peer), need_host=True).host == host
    caller = _caller(pb.Caller(user="u"), Peer("ipv6:%5B::1%5D:51234"), need_host=True)
    assert [d.uuid for d in sort_for_reader([there, here], caller.host, None, set(), 7)] == ["dn1", "dn2"]
