"""Write calls retried after the namenode applied them (their reply lost), without
sockets: AddBlock through the retry cache, and a Complete repeated without a call id
(as HDFS's completeFile: the file is complete with that last block -> success)."""

from __future__ import annotations

import dataclasses
import os

import pytest

from dfs import errors
from dfs.namenode.store import SqliteStore
from tests.unit.test_namesystem import BS, ROOT, make, register

KEY = os.urandom(32)
NEW = dict(overwrite=False, replication=0, block_size=BS, mode=0o644, create_parent=False)


def _call(n: int):
    return dataclasses.replace(ROOT, call_id=n)


def test_an_add_block_retried_gets_the_same_block_even_after_a_restart(tmp_path):
    ns = make(SqliteStore(str(tmp_path / "ns.db")), master_key=KEY)
    register(ns, 3)
    row, _, _ = ns.create(_call(1), "/f", **NEW, complete=False)
    b1 = ns.add_block(_call(2), row["id"], None, [], [])
    b2 = ns.add_block(_call(3), row["id"], None, [], [], draining=b1.block_id)
    ns.store.close()
    # Killed before the reply to call 3 left: the writer retries it, same call id.
    ns = make(SqliteStore(str(tmp_path / "ns.db")), master_key=KEY)
    register(ns, 3)
    again = ns.add_block(_call(3), row["id"], None, [], [], draining=b1.block_id)
    assert (again.block_id, again.genstamp, [d.address for d in again.locations]) == \
        (b2.block_id, b2.genstamp, [d.address for d in b2.locations])
    assert [b["id"] for b in ns.store.blocks(row["id"])] == [b1.block_id, b2.block_id]
    addrs = [d.address for d in b2.locations]
    st = ns.complete(_call(4), row["id"], (b2.block_id, 7), addrs, previous=(b1.block_id, BS),
                     previous_nodes=addrs)
    assert st.size == BS + 7


def _written(ns, path: str, lengths: list[int]):
    row, _, _ = ns.create(ROOT, path, **NEW, complete=False)
    prev, blocks = None, []
    for n in lengths:
        lb = ns.add_block(ROOT, row["id"], prev, [], [])
        prev = (lb.block_id, n)
        blocks.append(prev)
    return row["id"], blocks


def test_a_complete_repeated_without_a_call_id_succeeds_only_with_the_same_last_block():
    ns = make()
    register(ns, 3)
    fid, blocks = _written(ns, "/f", [BS, BS, 5])
    assert ROOT.call_id == 0                    # no call id: the retry cache cannot help
    done = ns.complete(ROOT, fid, blocks[-1], [])
    assert done.size == 2 * BS + 5
    assert ns.complete(ROOT, fid, blocks[-1], []) == done
    assert ns.complete(ROOT, fid, blocks[-1], [], previous=blocks[-2]) == done
    ns.rename(ROOT, "/f", "/g", overwrite=False)
    assert ns.complete(ROOT, fid, blocks[-1], []).path == "/g"   # where it is now
    for last, previous in [((blocks[-1][0], 6), None), (blocks[-2], None), (None, None),
                           (blocks[-1], (blocks[-2][0], 1))]:
        with pytest.raises(errors.DfsFileNotFoundError, match="not open for writing"):
            ns.complete(ROOT, fid, last, [], previous=previous)
    assert ns.stat(ROOT, "/g").size == 2 * BS + 5
    # A file completed with no block: a repeat with none succeeds, one with a block not.
    empty, _ = _written(ns, "/e", [])
    assert ns.complete(ROOT, empty, None, []).size == 0
    assert ns.complete(ROOT, empty, None, []).size == 0
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.complete(ROOT, empty, (blocks[-1][0], 5), [])
    # A file removed since is not answered for.
    ns.delete(ROOT, "/g", recursive=False)
    with pytest.raises(errors.DfsFileNotFoundError, match="not open for writing"):
        ns.complete(ROOT, fid, blocks[-1], [])
