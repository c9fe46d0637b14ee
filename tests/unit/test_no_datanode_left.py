"""The one line of a write that every datanode it tried failed (errors.no_datanode_left):
each node named with what it said. Concurrent writers on a full cluster got two wordings,
"no space left: all 3 live datanodes are full; C: ..." from the namenode's heartbeats, and
"no datanode left for the block: every live one failed this write (full or not
responding: A, B, C); C: ..." - three nodes named, the reason of one. (Nodes the writer
gave up on come back once they restart: the namenode names those it still avoids.)"""

from __future__ import annotations

import errno

import pytest

from dfs import errors
from dfs.client import writer as writer_mod
from tests.unit.test_namesystem import ROOT, make, register, start

A, B, C = "10.0.0.1:9866", "10.0.0.2:9866", "10.0.0.3:9866"
FULL = "/data/dn{}: No space left on device (writing block 7)"


def test_every_node_full_is_no_space_left_naming_each():
    e = errors.no_datanode_left([A, B, C], {n: FULL.format(i) for i, n in enumerate((A, B, C))}, "/f")
    assert type(e) is errors.NoSpaceError and e.errno == errno.ENOSPC
    assert str(e) == (f"/f: no space left: all 3 datanodes this write tried are full; "
                      f"{A}: {FULL.format(0)}; {B}: {FULL.format(1)}; {C}: {FULL.format(2)}")


def test_every_node_is_named_with_what_it_said_and_how_long_a_silent_one_has_been():
    e = errors.no_datanode_left([A, B, C], {C: FULL.format(2)}, silent={B: 4.25})
    assert type(e) is errors.NoDatanodesError and e.errno == errno.EIO
    assert str(e) == (f"{errors.NO_DATANODE_LEFT} and none has restarted since: {A}, "
                      f"{B} (no heartbeat for 4.2 s), {C}; {C}: {FULL.format(2)}")
    assert errors.nodes_named(e.detail) == ([A, B, C], {B: 4.2})


@pytest.mark.parametrize("said", [{}, {A: "/data/dn0: Operation not permitted (creating block 7)"}])
def test_a_refusal_that_is_not_a_full_disk_is_not_enospc(said):
    e = errors.no_datanode_left([A], said)
    assert type(e) is errors.NoDatanodesError
    assert str(e) == f"{errors.NO_DATANODE_LEFT} and none has restarted since: {A}" + "".join(
        f"; {A}: {m}" for m in said.values())


class _Namenode:
    """AddBlock answered by a NameSystem in process."""

    def __init__(self, ns, file_id: int):
        self.ns, self.file_id = ns, file_id

    def call(self, method: str, req):
        assert method == "AddBlock"
        try:
            self.ns.add_block(ROOT, self.file_id, None, [], list(req.excluded))
        except errors.DfsError as e:   # as it crosses the wire: class, detail, path
            raise type(e)(e.detail, e.path) from None
        raise AssertionError("a block was placed")


def _writer(ns, file_id: int, excluded: list[str], refusals: dict[str, str]) -> writer_mod.FileWriter:
    w = object.__new__(writer_mod.FileWriter)
    w.client = type("Client", (), {"nn": _Namenode(ns, file_id)})()
    w.path, w.file_id = "/w3", file_id
    w._first, w._unreported, w._sending = None, [], writer_mod._Sending()
    w._excluded, w._refusals = dict.fromkeys(excluded, 0.0), refusals
    return w


def test_a_writer_that_every_live_datanode_failed_names_why_each_did():
    ns = make()
    nodes = [d.address for d in register(ns, 3)]
    row = start(ns, "/w3")
    # Two refused for want of room; the third was named failed by a pipeline head, which
    # passes on no reason.
    w = _writer(ns, row["id"], list(nodes), {nodes[2]: FULL.format(2), nodes[0]: FULL.format(0)})
    with pytest.raises(errors.NoDatanodesError) as ei:
        w._add_block()
    assert str(ei.value) == (f"/w3: no datanode left for the block: every live one failed this write and none "
                             f"has restarted since: {', '.join(sorted(nodes))}; {nodes[0]}: {FULL.format(0)}; "
                             f"{nodes[2]}: {FULL.format(2)}")
    w._refusals[nodes[1]] = FULL.format(1)   # every one full: worded as the namenode's ENOSPC
    with pytest.raises(errors.NoSpaceError) as ei:
        w._add_block()
    assert str(ei.value) == ("/w3: no space left: all 3 datanodes this write tried are full; "
                             + "; ".join(f"{n}: {FULL.format(i)}" for i, n in enumerate(nodes)))
