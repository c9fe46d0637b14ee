"""Datanodes that run an older dfs (dfs/rpc/protocol.py): a datanode says its data-transfer
protocol when it registers; the namenode puts in a client's write pipeline only those that
speak what writers ask of it, while any live node still serves reads and takes repair
copies. A rolling upgrade across 26ae369 (the pipeline setup reply) stopped every write:
a current writer gave each older datanode up as failed, and the namenode said "every
live one failed this write"."""

from __future__ import annotations

import logging

import pytest

from dfs import errors
from dfs.model import DatanodeDescriptor
from dfs.namenode.service import DatanodeNamenodeService
from dfs.rpc import convert, protocol
from dfs.rpc.v1 import namenode_pb2 as pb
from tests.unit.test_namesystem import HB, ROOT, Clock, beat, dn, holders, make, register, start, write


def older(ns, *numbers: int, said: int = 0) -> list[DatanodeDescriptor]:
    """Register datanodes ``dn<n>`` that said protocol ``said`` (0: none, a dfs from before numbers)."""
    nodes = []
    for i in numbers:
        d = dn(i, f"/r{i % 2}")
        d.protocol = said
        ns.register(d)
        ns.block_report(d.uuid, [])
        nodes.append(d)
    return nodes


def test_the_service_keeps_the_protocol_a_datanode_registers_with():
    ns = make()
    svc = DatanodeNamenodeService(ns)
    for i, (uuid, said) in enumerate((("new", protocol.DATA_TRANSFER), ("old", 0))):
        svc.Register(pb.RegisterRequest(uuid=uuid, address=f"10.0.0.{i + 1}:9866", capacity=1 << 30,
                                        remaining=1 << 30, protocol=said), None)
        assert ns.members.nodes[uuid].protocol == said
    assert protocol.DATA_TRANSFER >= protocol.WRITE_PIPELINE >= 1


def test_writes_go_only_to_upgraded_datanodes_while_they_can_take_them():
    ns = make()
    new = {d.address for d in register(ns, 2)}
    older(ns, 3, 4, 5)
    for i in range(30):
        _, blocks, _ = write(ns, f"/f{i}", [100])
        assert {a for _, addrs in blocks for a in addrs} == new   # 2 replicas of 3, not 3


def test_repair_copies_go_to_older_datanodes():
    # A copy is the datanodes' own transfer (no setup reply asked): from a block written
    # on the upgraded nodes only, the third replica goes to an older one.
    clock = Clock()
    ns = make(clock=clock)
    new = register(ns, 2)
    old = older(ns, 3, 4)
    _, [(bid, addrs)], _ = write(ns, "/f", [100])
    assert len(addrs) == 2
    ns.tick()
    [(src, targets)] = [(u, t[3]) for u, c in beat(ns, new + old).items() for t in c.transfers]
    assert src in {d.uuid for d in new} and set(targets) <= {d.address for d in old} and len(targets) == 1
    assert ns.report()["under_replicated"] == 1
    [target] = [d for d in old if d.address == targets[0]]
    beat(ns, [target], received={target.uuid: [(bid, ns.bmap.blocks[bid].genstamp, 100)]})
    assert len(holders(ns, bid)) == 3 and ns.report()["under_replicated"] == 0


def test_a_write_goes_to_unnumbered_datanodes_only_when_no_upgraded_one_can_take_it():
    # 0 is also what the release just before numbers sends, which speaks 1: refusing it
    # stopped every write between the namenode's upgrade and the first datanode's.
    ns = make()
    [a] = register(ns, 1)
    older(ns, 2, 3)
    f = start(ns, "/f")
    lb = ns.add_block(ROOT, f["id"], None, [], [])
    assert [d.address for d in lb.locations] == [a.address]
    ns.abandon_block(ROOT, f["id"], lb.block_id)
    lb = ns.add_block(ROOT, f["id"], None, [], [a.address])        # the writer gave it up
    assert {d.address for d in lb.locations} == {dn(2).address, dn(3).address}


def test_with_only_older_datanodes_left_a_write_says_they_run_an_older_dfs():
    ns = make()
    old = older(ns, 2, 3)
    f = start(ns, "/f")
    lb = ns.add_block(ROOT, f["id"], None, [], [])                  # a last resort: tried
    ns.abandon_block(ROOT, f["id"], lb.block_id)
    with pytest.raises(errors.NoDatanodesError) as e:              # each failed the write
        ns.add_block(ROOT, f["id"], None, [], [d.address for d in old])
    assert e.value.detail == (f"no datanode can take this write: 2 live datanodes run an older dfs "
                              f"(upgrade them): {dn(2).address}, {dn(3).address}")
    assert not e.value.detail.startswith(errors.NO_DATANODE_LEFT)  # the writer adds what each said


def test_a_datanode_known_to_speak_too_old_a_protocol_never_takes_a_write(monkeypatch):
    # The next bump: a node that said 1 when writers need 2 is not tried at all.
    monkeypatch.setattr(protocol, "WRITE_PIPELINE", protocol.DATA_TRANSFER + 1)
    ns = make()
    older(ns, 2, said=protocol.DATA_TRANSFER)
    f = start(ns, "/f")
    with pytest.raises(errors.NoDatanodesError, match=r"no datanode can take this write: 1 live datanode "
                       r"runs an older dfs \(upgrade it\): 127\.0\.0\.2:9866$"):
        ns.add_block(ROOT, f["id"], None, [], [])


def test_the_report_and_the_log_name_an_older_datanode_once(caplog):
    ns = make()
    [new] = register(ns, 1)
    with caplog.at_level(logging.WARNING, logger="dfs.namenode.datanode_protocol"):
        [old] = older(ns, 2)
        ns.heartbeat(old.uuid, {"remaining": 10 << 30}, [], [], [])
    said = [r.getMessage() for r in caplog.records if "older dfs" in r.getMessage()]
    assert said == [f"datanode {old.address} runs an older dfs (no protocol number; writers need "
                    f"{protocol.WRITE_PIPELINE}): upgrade it. It serves reads and repair copies, and takes "
                    f"writes only when no upgraded datanode can"]
    shown = {d.uuid: convert.datanode_json(convert.datanode_to_pb(d, s)) for d, s in ns.report()["nodes"]}
    assert (shown[old.uuid]["protocol"], shown[old.uuid]["outdated"]) == (0, True)
    assert (shown[new.uuid]["protocol"], shown[new.uuid]["outdated"]) == (protocol.DATA_TRANSFER, False)


def test_an_older_datanode_upgraded_in_place_takes_writes_again():
    clock = Clock()
    ns = make(clock=clock, replication=1)
    [old] = older(ns, 2)
    register(ns, 1)
    clock.advance(HB)
    upgraded = dn(2, "/r0")      # the same data dir (uuid) and address, restarted on the new dfs
    ns.register(upgraded)
    assert ns.members.nodes[old.uuid].protocol == protocol.DATA_TRANSFER
    seen = {a for i in range(20) for _, addrs in write(ns, f"/g{i}", [100])[1] for a in addrs}
    assert upgraded.address in seen
