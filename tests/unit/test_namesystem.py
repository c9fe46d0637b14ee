"""NameSystem end to end, without sockets or threads: a fake clock, an in-memory
(or tmp_path) SqliteStore, datanodes that are just descriptors and calls."""

from __future__ import annotations

import errno
import os
import random

import pytest

from dfs import errors
from dfs.model import DatanodeDescriptor
from dfs.namenode.membership import still_avoided
from dfs.namenode.namespace import LEASE_SOFT_LIMIT, Caller
from dfs.namenode.namesystem import LocatedBlock, NameSystem, NodeCommands
from dfs.namenode.store import SqliteStore
from dfs.rpc import convert

ROOT = Caller("root", ("supergroup",), client_name="client-1", host="10.9.9.9")
BS = 64 * 1024
HB, DEAD = 3.0, 30.0


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


def make(store=None, clock=None, **kw) -> NameSystem:
    return NameSystem(
        store or SqliteStore(":memory:"),
        kw.pop("master_key", os.urandom(32)),
        superuser="root",
        replication=kw.pop("replication", 3),
        block_size=BS,
        heartbeat_interval=HB,
        dead_timeout=DEAD,
        clock=clock or Clock(),
        rng=random.Random(0),
        **kw,
    )


def dn(i: int, rack: str = "/r0") -> DatanodeDescriptor:
    return DatanodeDescriptor(
        uuid=f"dn{i}", address=f"127.0.0.{i}:9866", rack=rack, capacity=10 << 30, remaining=10 << 30
    )


def register(ns: NameSystem, n: int, racks: int = 2) -> list[DatanodeDescriptor]:
    nodes = [dn(i + 1, f"/r{i % racks}") for i in range(n)]
    for d in nodes:
        ns.register(d)
        if not ns.bmap.by_node.get(d.uuid):
            ns.block_report(d.uuid, [])   # as a datanode does right after registering
    return nodes


def beat(ns: NameSystem, nodes, **kw) -> dict[str, NodeCommands]:
    out = {}
    for d in nodes:
        rereg, cmds = ns.heartbeat(
            d.uuid,
            {"remaining": 10 << 30, "xceivers": 0},
            kw.get("received", {}).get(d.uuid, []),
            [],
            [],
        )
        assert not rereg
        out[d.uuid] = cmds
    return out


def start(ns: NameSystem, path: str, caller: Caller = ROOT) -> dict:
    """Open ``path`` for writing (under construction, default replication)."""
    row, _, _ = ns.create(caller, path, overwrite=False, replication=0, block_size=0, mode=0o644,
                          create_parent=False, complete=False)
    return row


def write(
    ns: NameSystem,
    path: str,
    lengths: list[int],
    caller: Caller = ROOT,
    *,
    replication: int = 0,
    overwrite: bool = False,
) -> tuple[int, list[tuple[int, list[str]]], bytes]:
    """Write a file the way a client does. Returns (file id, [(block id, node addresses)], key)."""
    row, key, st = ns.create(
        caller,
        path,
        overwrite=overwrite,
        replication=replication,
        block_size=BS,
        mode=0o644,
        create_parent=True,
        complete=False,
    )
    assert st is None
    fid = row["id"]
    prev, prev_nodes, blocks = None, [], []
    for n in lengths:
        lb = ns.add_block(caller, fid, prev, prev_nodes, [])
        prev, prev_nodes = (lb.block_id, n), [d.address for d in lb.locations]
        blocks.append((lb.block_id, prev_nodes))
    ns.complete(caller, fid, prev, prev_nodes)
    return fid, blocks, key


def holders(ns: NameSystem, block_id: int) -> set[str]:
    return set(ns.bmap.holders(block_id))


# -- writing and reading ---------------------------------------------------------


def test_write_and_list():
    ns = make()
    nodes = register(ns, 3)
    assert not ns.in_safemode()
    fid, blocks, key = write(ns, "/data/f.bin", [BS, BS, 123])
    assert len(key) == 32
    for bid, addrs in blocks:
        assert len(addrs) == 3 and len(set(addrs)) == 3
        assert holders(ns, bid) == {d.uuid for d in nodes}
    _, entries, more = ns.listdir(ROOT, "/data", "", 100)
    assert [(e.path, e.size, e.replication) for e in entries] == [("/data/f.bin", 2 * BS + 123, 3)]
    st, located, key2, chunk = ns.block_locations(ROOT, "/data/f.bin")
    assert key2 == key and st.size == 2 * BS + 123 and BS % chunk == 0
    assert [(b.block_id, b.offset, b.length) for b in located] == [
        (blocks[0][0], 0, BS),
        (blocks[1][0], BS, BS),
        (blocks[2][0], 2 * BS, 123),
    ]
    assert all(len(b.locations) == 3 for b in located)
    # a range picks the overlapping blocks only
    _, located, _, _ = ns.block_locations(ROOT, "/data/f.bin", BS + 1, 10)
    assert [b.block_id for b in located] == [blocks[1][0]]
    # ... and then `ahead` more, as far as there are any (a reader's read-ahead)
    for ahead, want in ((1, [0, 1]), (5, [0, 1, 2])):
        _, located, _, _ = ns.block_locations(ROOT, "/data/f.bin", 10, 10, ahead=ahead)
        assert [b.block_id for b in located] == [blocks[i][0] for i in want]
    assert ns.fsck(ROOT, "/")["status"] == "HEALTHY"
    rep = ns.report()
    assert rep["files"] == 1 and rep["blocks"] == 3 and rep["under_replicated"] == 0


def test_block_locations_by_inode_follow_the_file_a_reader_opened():
    # A reader's later windows ask by inode id: after a rename of the file or of a
    # directory above it they were "not found" (and the mount lost a change committed
    # from such a file); another file in its place is never read instead of it.
    ns = make()
    register(ns, 3)
    fid, blocks, _ = write(ns, "/d/f", [BS, BS, 123])
    ns.rename(ROOT, "/d/f", "/d/g", False)
    ns.rename(ROOT, "/d", "/e", False)
    st, located, _, _ = ns.block_locations(ROOT, "/d/f", BS + 1, 10, inode_id=fid)
    assert (st.inode_id, st.path) == (fid, "/d/f")
    assert [b.block_id for b in located] == [blocks[1][0]]
    # read permission on the file itself is still needed
    bob = Caller("bob", ("bob",), client_name="client-2", host="10.9.9.8")
    assert ns.block_locations(bob, "/d/f", 0, 1, inode_id=fid)[0].inode_id == fid
    ns.chmod(ROOT, "/e/g", 0o600)
    with pytest.raises(errors.DfsPermissionError):
        ns.block_locations(bob, "/d/f", 0, 1, inode_id=fid)
    # ... and search permission on every directory above it where it is now: the id
    # alone (a small number, easily guessed) gave a file in a 0700 directory away.
    ns.chmod(ROOT, "/e/g", 0o644)
    ns.mkdir(ROOT, "/e/x", False, 0o755)
    ns.rename(ROOT, "/e/g", "/e/x/g", False)
    assert ns.block_locations(bob, "/d/f", 0, 1, inode_id=fid)[0].inode_id == fid
    for closed in ("/e/x", "/e"):
        ns.chmod(ROOT, closed, 0o700)
        with pytest.raises(errors.DfsPermissionError):
            ns.block_locations(bob, "/d/f", 0, 1, inode_id=fid)
        ns.chmod(ROOT, closed, 0o755)
    ns.rename(ROOT, "/e/x/g", "/e/g", False)
    # a directory, a file under construction, a file replaced or deleted: not found
    other = start(ns, "/e/h")
    for gone in (ns.stat(ROOT, "/e").inode_id, other["id"]):
        with pytest.raises(errors.DfsFileNotFoundError):
            ns.block_locations(ROOT, "/d/f", 0, 1, inode_id=gone)
    write(ns, "/e/g", [10], overwrite=True)
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.block_locations(ROOT, "/e/g", 0, 1, inode_id=fid)


def test_file_invisible_until_complete():
    ns = make()
    register(ns, 3)
    row, _, _ = ns.create(
        ROOT,
        "/f",
        overwrite=False,
        replication=0,
        block_size=BS,
        mode=0o644,
        create_parent=False,
        complete=False,
    )
    lb = ns.add_block(ROOT, row["id"], None, [], [])
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.stat(ROOT, "/f")
    other = Caller("root", ("supergroup",), client_name="client-2")
    with pytest.raises(errors.LeaseError):
        ns.add_block(other, row["id"], (lb.block_id, 10), [], [])
    st = ns.complete(ROOT, row["id"], (lb.block_id, 10), [d.address for d in lb.locations])
    assert st.size == 10 and ns.stat(ROOT, "/f").size == 10


def test_create_complete_immediately():
    ns = make()
    row, key, st = ns.create(
        ROOT,
        "/empty",
        overwrite=False,
        replication=0,
        block_size=0,
        mode=0o600,
        create_parent=False,
        complete=True,
    )
    assert st is not None and st.size == 0 and st.mode == 0o600
    assert ns.stat(ROOT, "/empty").size == 0


def test_first_replica_on_writer_host():
    ns = make()
    nodes = register(ns, 4)
    caller = Caller("root", ("supergroup",), client_name="c", host=nodes[2].host)
    _, blocks, _ = write(ns, "/f", [10, 10, 10], caller)
    assert all(addrs[0] == nodes[2].address for _, addrs in blocks)
    # readers get the local replica first
    _, located, _, _ = ns.block_locations(caller, "/f")
    assert all(b.locations[0].uuid == nodes[2].uuid for b in located)


def test_no_datanodes():
    ns = make()
    row = start(ns, "/f")
    with pytest.raises(errors.NoDatanodesError):
        ns.add_block(ROOT, row["id"], None, [], [])
    # all datanodes gone silent: same thing
    register(ns, 3)
    ns.clock.advance(DEAD + 1)
    with pytest.raises(errors.NoDatanodesError):
        ns.add_block(ROOT, row["id"], None, [], [])
    # every live one is leaving: say so ("no live datanodes (2 live)" read as a contradiction)
    nodes = [dn(7), dn(8)]
    for d in nodes:
        ns.register(d)
        ns.decommission(d.address)
    with pytest.raises(errors.NoDatanodesError, match=r"\(2 live, 2 of them decommissioning or decommissioned\)"):
        ns.add_block(ROOT, row["id"], None, [], [])


def test_full_datanodes_are_no_space_but_no_datanodes_is_not():
    """ENOSPC (NoSpaceError) only when datanodes are live and every one is full;
    none live is NoDatanodesError, which FUSE answers with EIO."""
    ns = make()
    row = start(ns, "/f")
    with pytest.raises(errors.NoDatanodesError) as ei:
        ns.add_block(ROOT, row["id"], None, [], [])
    assert not isinstance(ei.value, errors.NoSpaceError)
    assert errors.errno_for(ei.value) == errno.EIO
    nodes = register(ns, 2)
    for d in nodes:
        ns.heartbeat(d.uuid, {"remaining": 0, "xceivers": 0}, [], [], [])
    with pytest.raises(errors.NoSpaceError) as ei:
        ns.add_block(ROOT, row["id"], None, [], [])
    assert errors.errno_for(ei.value) == errno.ENOSPC
    assert "full" in str(ei.value)
    ns.heartbeat(nodes[0].uuid, {"remaining": 1 << 30, "xceivers": 0}, [], [], [])
    assert ns.add_block(ROOT, row["id"], None, [], []).locations[0].uuid == nodes[0].uuid


DISK_DEAD = "Input/output error"


def test_a_node_with_a_dead_data_dir_is_shown_and_takes_no_block_nor_copy(caplog):
    """A datanode whose data dir died beats on (docs/healing.md, a dead data dir). The
    namenode keeps why and since when, shows it in the report, and never places a new
    replica or a repair copy there -- even were its free space not 0."""
    clock = Clock()
    ns = make(clock=clock)
    nodes = register(ns, 4)
    bad, good = nodes[0], nodes[1:]

    def beat_all(**failure):
        beat(ns, good)
        ns.heartbeat(bad.uuid, {"remaining": 10 << 30, "xceivers": 0}, [], [], [], **failure)

    beat_all(storage_failed=DISK_DEAD, storage_failed_for=4.0)
    node = ns.members.nodes[bad.uuid]
    assert (node.storage_failed, node.storage_failed_at) == (DISK_DEAD, clock.t - 4)
    clock.advance(HB)
    beat_all(storage_failed=DISK_DEAD, storage_failed_for=4.0 + HB + 0.2)   # a beat's latency
    assert node.storage_failed_at == clock.t - HB - 4                       # kept from the first
    assert [r.getMessage() for r in caplog.records if "data dir is dead" in r.getMessage()] == [
        f"datanode {bad.address}: its data dir is dead ({DISK_DEAD}), 4 s ago: it holds and takes no "
        "replicas until its disk is replaced and it restarts"]
    [(shown, state)] = [(d, s) for d, s in ns.report()["nodes"] if d.uuid == bad.uuid]
    assert state == "live" and shown.storage_failed == DISK_DEAD
    info = convert.datanode_json(convert.datanode_to_pb(shown, state))
    assert (info["storage_failed"], info["storage_failed_at"]) == (DISK_DEAD, clock.t - HB - 4)
    assert convert.datanode_json(convert.datanode_to_pb(good[0], "live"))["storage_failed_at"] is None

    _, blocks, _ = write(ns, "/f", [10] * 20)
    assert all(bad.address not in where for _, where in blocks)
    # A holder dies: the only node without a replica is the one with the dead data dir.
    victim, rest = good[0], good[1:]
    for _ in range(int(DEAD // HB) + 1):
        clock.advance(HB)
        beat(ns, rest)
        ns.heartbeat(bad.uuid, {"remaining": 10 << 30, "xceivers": 0}, [], [], [], storage_failed=DISK_DEAD)
        ns.tick()
    assert ns.node_state(victim, clock.t) == "dead"
    cmds = beat(ns, rest)
    assert not [t for c in cmds.values() for t in c.transfers]       # nowhere to copy to
    for d in rest:
        ns.heartbeat(d.uuid, {"remaining": 0, "xceivers": 0}, [], [], [])
    with pytest.raises(errors.NoSpaceError, match=r"all 2 live datanodes are full \(1 more with a dead data dir"):
        ns.add_block(ROOT, start(ns, "/g")["id"], None, [], [])
    spare = dn(9, "/r1")
    ns.register(spare)
    ns.block_report(spare.uuid, [])
    ns.tick()
    transfers = [t for c in beat(ns, rest).values() for t in c.transfers]
    assert transfers and all(t[3] == [spare.address] for t in transfers)
    # Nor is it in service for what a decommission can still reach.
    assert ns.decommission(rest[0].address)["in_service"] == 2     # rest[1] and spare
    # Restarted with its disk replaced: it registers without the failure, and takes blocks.
    ns.register(dn(1, bad.rack))
    assert ns.members.nodes[bad.uuid].storage_failed == ""
    assert bad.uuid in {d.uuid for d in ns.writable(clock.t)}


def test_only_nodes_with_a_dead_data_dir_left_is_no_datanodes_not_no_space():
    ns = make()
    nodes = register(ns, 2)
    for d in nodes:
        ns.heartbeat(d.uuid, {"remaining": 0, "xceivers": 0}, [], [], [], storage_failed=DISK_DEAD)
    with pytest.raises(errors.NoDatanodesError) as ei:
        ns.add_block(ROOT, start(ns, "/f")["id"], None, [], [])
    assert not isinstance(ei.value, errors.NoSpaceError)
    assert "no live datanodes to write to (2 live, 2 with a dead data dir)" in str(ei.value)
    # A datanode registering with its data dir already dead (the namenode restarted).
    ns.register(dn(5), storage_failed=DISK_DEAD, storage_failed_for=60.0)
    assert ns.members.nodes["dn5"].storage_failed == DISK_DEAD
    assert not ns.writable(ns.clock())


def test_fewer_datanodes_than_replication_still_writes():
    ns = make()
    register(ns, 2)
    _, blocks, _ = write(ns, "/f", [10])
    assert len(blocks[0][1]) == 2
    assert ns.fsck(ROOT, "/f")["status"] == "DEGRADED"


def test_excluded_nodes_are_avoided():
    ns = make()
    nodes = register(ns, 4)
    row = start(ns, "/f")
    lb = ns.add_block(ROOT, row["id"], None, [], [nodes[0].address])
    assert nodes[0].address not in [d.address for d in lb.locations]


def test_an_exclusion_holds_until_the_node_registers_again():
    # The rule alone: a node registered after the writer's evidence against it (ages[i]
    # seconds ago) is a new process, no longer avoided; without an age (an older
    # writer) or unknown to the namenode, it stays avoided.
    a, b, c, d = (dn(i) for i in range(1, 5))
    a.registered_at, b.registered_at, c.registered_at = 90.0, 95.0, 99.0
    now = 100.0
    assert still_avoided([a.address, b.address, c.address], [7.0, 5.0, 3.0], [a, b, c], now) \
        == [a.address, b.address]                              # c restarted 2 s after
    assert still_avoided([c.address], [], [c], now) == [c.address]                  # no age
    assert still_avoided([d.address], [1.0], [a, b, c], now) == [d.address]       # unknown
    assert still_avoided([], [], [a], now) == []


def test_a_write_goes_on_through_a_rolling_restart_of_every_datanode():
    # Each node failed this write once and restarted since: the next block goes on
    # them. Before, the writer's exclusions held for the whole write and this was
    # "no datanode left for the block" with 4 of 4 up.
    clock = Clock()
    ns = make(clock=clock)
    nodes = register(ns, 4)
    row = start(ns, "/f")
    excluded = [d.address for d in nodes]
    clock.advance(10)
    for d in nodes[:3]:    # re-registered 4 s after the writer gave up on it
        ns.register(dn(int(d.uuid[2:]), d.rack))
    clock.advance(2)
    lb = ns.add_block(ROOT, row["id"], None, [], excluded, excluded_age=[6.0] * 4)
    assert {x.address for x in lb.locations} == {d.address for d in nodes[:3]}
    # Given up on after its restart (its new process failed too): avoided again.
    with pytest.raises(errors.NoDatanodesError):
        ns.add_block(ROOT, row["id"], None, [], excluded, excluded_age=[1.0] * 4)


def test_no_datanode_left_names_the_nodes_given_up_on_and_which_are_silent():
    # It said "full or not responding" of nodes up and idle again, just not for this write.
    clock = Clock()
    ns = make(clock=clock)
    nodes = register(ns, 2)
    row = start(ns, "/f")
    a, b = (d.address for d in nodes)

    def refused() -> str:
        with pytest.raises(errors.NoDatanodesError) as e:
            ns.add_block(ROOT, row["id"], None, [], [a, b], excluded_age=[0.0, 0.0])
        return e.value.detail

    head = "no datanode left for the block: every live one failed this write and none has restarted since: "
    assert refused() == head + f"{a}, {b}"
    clock.advance(HB * 2 + 1)    # both stale (frozen?): written to only for want of fresh ones
    assert refused() == head + f"{a} (no heartbeat for 7.0 s), {b} (no heartbeat for 7.0 s)"


# -- safemode ---------------------------------------------------------------------


def test_safemode_after_restart(tmp_path):
    db = str(tmp_path / "meta.db")
    master = os.urandom(32)
    clock = Clock()
    ns1 = make(SqliteStore(db), clock, master_key=master)
    nodes = register(ns1, 3)
    _, blocks, key = write(ns1, "/f", [BS, 77])
    ns1.store.close()

    ns2 = make(SqliteStore(db), clock, master_key=master)
    assert ns2.in_safemode()
    assert ns2.safemode("get") == (
        True, "waiting for block reports: 0 of 2 blocks reported, 99.9% needed; 0 datanodes registered")
    # reads work, mutations do not
    assert ns2.stat(ROOT, "/f").size == BS + 77
    for op in (
        lambda: ns2.mkdir(ROOT, "/d", False, 0o755),
        lambda: ns2.delete(ROOT, "/f", False),
        lambda: ns2.rename(ROOT, "/f", "/g", False),
        lambda: ns2.chmod(ROOT, "/f", 0o600),
        lambda: ns2.create(
            ROOT,
            "/h",
            overwrite=False,
            replication=0,
            block_size=0,
            mode=0o644,
            create_parent=False,
            complete=True,
        ),
    ):
        with pytest.raises(errors.SafeModeError):
            op()
    # a read of a block no datanode has reported yet is retryable (safe mode), not "no replicas"
    with pytest.raises(errors.SafeModeError, match="no datanode has reported block"):
        ns2.block_locations(ROOT, "/f")

    gs = {b["id"]: b["genstamp"] for b in ns2.store.blocks(ns2.stat(ROOT, "/f").inode_id)}
    for d in nodes:
        ns2.register(dn(int(d.uuid[2:]), d.rack))
    # a report covering only some blocks is not enough
    ns2.block_report(nodes[0].uuid, [(blocks[0][0], gs[blocks[0][0]], BS)])
    ns2.tick()
    assert ns2.in_safemode()
    ns2.block_report(nodes[1].uuid, [(blocks[1][0], gs[blocks[1][0]], 77), (999, 1, 5)])
    assert not ns2.in_safemode()
    assert ns2.safemode("get") == (False, "")
    _, located, key2, _ = ns2.block_locations(ROOT, "/f")
    assert key2 == key and all(b.locations for b in located)
    cmds = beat(ns2, [nodes[1]])
    assert 999 in cmds[nodes[1].uuid].invalidate  # unknown block reported (an id it reserved: deleted)
    ns2.mkdir(ROOT, "/d", False, 0o755)
    assert ns2.fsck(ROOT, "/f")["status"] == "DEGRADED"


def test_a_restarted_namenode_waits_the_dead_timeout_for_late_datanodes_before_copying(tmp_path):
    """Two of the three holders report right after a restart: safe mode ends, but the
    blocks are not copied while the third may still come (it was, at once, and its own
    replicas were then deleted as surplus when it reported a few seconds later). A new
    block is repaired at once; the old ones once the dead-node timeout has passed."""
    db, master, clock = str(tmp_path / "meta.db"), os.urandom(32), Clock()
    ns1 = make(SqliteStore(db), clock, master_key=master)
    nodes = register(ns1, 4)
    _, blocks, _ = write(ns1, "/f", [BS, 77])
    ns1.store.close()
    clock.advance(60)
    ns = make(SqliteStore(db), clock, master_key=master)
    late = next(d for d in nodes if d.address in blocks[0][1] and d.address in blocks[1][1])
    early = [d for d in nodes if d is not late]
    for d in early:
        ns.register(dn(int(d.uuid[2:]), d.rack))
        ns.block_report(d.uuid, [(bid, ns.bmap.blocks[bid].genstamp, ns.bmap.blocks[bid].length)
                                 for bid, addrs in blocks if d.address in addrs])
    assert not ns.in_safemode()
    _, fresh, _ = write(ns, "/g", [10])
    gone = next(d for d in early if d.address in fresh[0][1])
    ns.heartbeat(gone.uuid, {}, [], [fresh[0][0]], [])       # a new block's replica is lost
    for i in range(3):
        clock.advance(DEAD / 4)
        ns.tick()
        copied = {t[0] for c in beat(ns, early).values() for t in c.transfers}
        assert copied == ({fresh[0][0]} if i == 0 else set())   # the new block at once
    clock.advance(DEAD / 4 + 1)
    ns.tick()
    copied = {t[0] for c in beat(ns, early).values() for t in c.transfers}
    assert copied == {b for b, _ in blocks}


def test_reported_blocks_this_namespace_never_made_are_kept_not_deleted():
    """A namenode started on metadata older than its datanodes' data (restored from a
    backup): replicas of blocks it never allocated used to be deleted as unknown."""
    ns = make()
    nodes = register(ns, 3)
    _, blocks, _ = write(ns, "/f", [10])
    ns.delete(ROOT, "/f", False)
    reserved = int(ns.store.get_meta("block_id"))
    ns.block_report(nodes[0].uuid, [(blocks[0][0], 1, 10), (reserved + 5, 1, 10)])
    cmds = beat(ns, nodes[:1])[nodes[0].uuid]
    assert blocks[0][0] in cmds.invalidate            # deleted by this namespace: goes
    assert reserved + 5 not in cmds.invalidate         # from its future: kept
    # The same rule for a replica reported as just received (a heartbeat's news).
    _, cmds = ns.heartbeat(nodes[1].uuid, {}, [(blocks[0][0], 1, 10), (reserved + 6, 1, 10)], [], [])
    assert blocks[0][0] in cmds.invalidate and reserved + 6 not in cmds.invalidate


def test_manual_safemode():
    ns = make()
    ns.safemode("enter")
    with pytest.raises(errors.SafeModeError, match="entered by an administrator .dfs admin safemode leave") as ei:
        ns.mkdir(ROOT, "/d", False, 0o755)
    assert ei.value.manual and ei.value.retry_for == 0     # waiting would not end it: not retried
    assert ns.safemode("get") == (True, "entered by an administrator")
    ns.safemode("leave")
    ns.mkdir(ROOT, "/d", False, 0o755)
    with pytest.raises(errors.InvalidArgumentError):
        ns.safemode("bogus")


def test_safemode_and_decommission_are_the_superusers():
    ns = make()
    register(ns, 3)
    bob = Caller("bob", ("users",), client_name="bob-1")
    for action in ("enter", "leave"):
        with pytest.raises(errors.DfsPermissionError):
            ns.safemode(action, bob)
    with pytest.raises(errors.DfsPermissionError) as e:
        ns.decommission("127.0.0.1:9866", bob)
    assert str(e.value) == "127.0.0.1:9866: Permission denied: decommission needs the superuser"
    assert ns.safemode("get", bob) == (False, "")
    assert ns.safemode("enter", ROOT)[0] and ns.safemode("leave", ROOT) == (False, "")
    admin = Caller("ann", ("supergroup",), client_name="ann-1")
    ns.decommission("127.0.0.1:9866", admin)


def test_failed_mutation_rolls_back(tmp_path):
    db = str(tmp_path / "meta.db")
    ns = make(SqliteStore(db))
    ns.mkdir(ROOT, "/a", False, 0o755)
    # create_parent makes /new/dir first, then the create fails: nothing may remain
    with pytest.raises(errors.InvalidArgumentError):
        ns.create(
            ROOT,
            "/new/dir/f",
            overwrite=False,
            replication=513,
            block_size=0,
            mode=0o644,
            create_parent=True,
            complete=False,
        )
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.stat(ROOT, "/new")
    ns.mkdir(ROOT, "/b", False, 0o755)  # the next commit must not carry it either
    ns.store.close()
    ns2 = make(SqliteStore(db))
    assert ns2.stat(ROOT, "/a").is_dir and ns2.stat(ROOT, "/b").is_dir
    with pytest.raises(errors.DfsFileNotFoundError):
        ns2.stat(ROOT, "/new")


def test_create_parent_under_a_file():
    ns = make()
    ns.create(
        ROOT,
        "/x/y",
        overwrite=False,
        replication=0,
        block_size=0,
        mode=0o644,
        create_parent=True,
        complete=True,
    )
    for path in ("/x/y/f", "/x/y/a/b/f"):
        with pytest.raises(errors.DfsNotADirectoryError):
            ns.create(
                ROOT,
                path,
                overwrite=False,
                replication=0,
                block_size=0,
                mode=0o644,
                create_parent=True,
                complete=False,
            )
    _, entries, _ = ns.listdir(ROOT, "/x", "", 10)
    assert [e.path for e in entries] == ["/x/y"] and ns.stat(ROOT, "/x/y").type == "file"


# -- failures and repair -----------------------------------------------------------


def test_dead_node_triggers_rereplication():
    clock = Clock()
    ns = make(clock=clock)
    nodes = register(ns, 4)
    _, blocks, _ = write(ns, "/f", [100, 200])
    ids = [b for b, _ in blocks]
    victim_uuid = next(iter(holders(ns, ids[0])))
    victim = next(d for d in nodes if d.uuid == victim_uuid)
    others = [d for d in nodes if d is not victim]

    clock.advance(DEAD - 1)
    beat(ns, others)
    ns.tick()
    assert ns.report()["under_replicated"] == 0  # not dead yet
    clock.advance(2)
    beat(ns, others)
    ns.tick()
    rep = ns.report()
    assert [d.uuid for d, s in rep["nodes"] if s == "dead"] == [victim.uuid]
    assert all(victim.uuid not in holders(ns, b) for b in ids)
    assert ns.fsck(ROOT, "/f")["status"] == "DEGRADED"

    cmds = beat(ns, others)
    transfers = [(src, t) for src, c in cmds.items() for t in c.transfers]
    lost = [b for b in ids if len(holders(ns, b)) < 3]
    assert sorted(t[0] for _, t in transfers) == sorted(lost)
    received: dict[str, list] = {}
    for src, (bid, gs, length, targets) in transfers:
        assert src in holders(ns, bid)
        assert length == {ids[0]: 100, ids[1]: 200}[bid]
        assert len(targets) == 1
        target = next(d for d in others if d.address == targets[0])
        assert target.uuid not in holders(ns, bid)
        received.setdefault(target.uuid, []).append((bid, gs, length))
    # planned once: not again on the next tick while in flight
    ns.tick()
    assert all(not c.transfers for c in beat(ns, others).values())
    beat(ns, others, received=received)
    assert all(len(holders(ns, b)) == 3 for b in ids)
    assert ns.fsck(ROOT, "/f")["status"] == "HEALTHY"
    assert ns.monitor.in_flight.targets == {}


def test_unfinished_transfer_is_retried_after_deadline():
    clock = Clock()
    ns = make(clock=clock)
    nodes = register(ns, 5)
    _, blocks, _ = write(ns, "/f", [100])
    bid = blocks[0][0]
    victim = next(d for d in nodes if d.uuid in holders(ns, bid))
    others = [d for d in nodes if d is not victim]
    clock.advance(DEAD + 1)
    beat(ns, others)
    ns.tick()
    first = [t for c in beat(ns, others).values() for t in c.transfers]
    assert len(first) == 1
    for _ in range(12):  # the copy never lands
        clock.advance(HB)
        beat(ns, others)
        ns.tick()
        again = [t for c in beat(ns, others).values() for t in c.transfers]
        if again:
            break
    assert again and again[0][0] == bid


def test_delete_queues_invalidations():
    ns = make()
    nodes = register(ns, 3)
    _, blocks, _ = write(ns, "/d/f", [10, 20])
    ids = {b for b, _ in blocks}
    assert ns.delete(ROOT, "/d", True)
    cmds = beat(ns, nodes)
    for d in nodes:
        assert cmds[d.uuid].invalidate == ids
    assert all(not c.invalidate for c in beat(ns, nodes).values())  # delivered once
    assert all(b not in ns.bmap.blocks for b in ids)
    ns.mkdir(ROOT, "/e/f", True, 0o755)
    with pytest.raises(errors.DirectoryNotEmptyError):
        ns.delete(ROOT, "/e", False)


def test_a_mass_delete_reaches_a_datanode_in_bounded_heartbeats(monkeypatch):
    """A datanode deletes what one reply lists on its heartbeat thread: a reply with a
    whole tree's replicas would keep it from beating past the dead-node timeout."""
    import dfs.namenode.datanode_protocol as datanode_protocol
    monkeypatch.setattr(datanode_protocol, "INVALIDATE_LIMIT", 4)
    ns = make()
    nodes = register(ns, 3)
    blocks = []
    for i in range(5):
        _, b, _ = write(ns, f"/d/f{i}", [10, 20])
        blocks += [bid for bid, _ in b]
    assert ns.delete(ROOT, "/d", True)
    node = nodes[0]
    got, replies = set(), []
    for _ in range(4):
        cmds = beat(ns, [node])[node.uuid]
        replies.append(cmds)
        assert not got & cmds.invalidate          # each replica is sent once
        got |= cmds.invalidate
    assert [len(c.invalidate) for c in replies] == [4, 4, 2, 0]
    assert got == set(blocks)
    # beat again soon while deletions wait; then back to the node's own interval
    assert [c.next_heartbeat > 0 for c in replies] == [True, True, False, False]
    assert replies[0].next_heartbeat == ns.fast_heartbeat


def test_deletions_still_queued_keep_copies_of_the_block_away(monkeypatch):
    import dfs.namenode.datanode_protocol as datanode_protocol
    monkeypatch.setattr(datanode_protocol, "INVALIDATE_LIMIT", 1)
    ns = make()
    nodes = register(ns, 3)
    ns.cmds(nodes[0].uuid).invalidate.update({101, 102, 103})
    sent = beat(ns, [nodes[0]])[nodes[0].uuid].invalidate
    leaving = ns.replicas_leaving()
    for b in (101, 102, 103):   # sent and unbeaten since, or still queued
        assert nodes[0].uuid in leaving.get(b), b
    assert len(sent) == 1


def test_overwrite_invalidates_old_blocks():
    ns = make()
    nodes = register(ns, 3)
    _, old, _ = write(ns, "/f", [10])
    _, new, _ = write(ns, "/f", [20], overwrite=True)
    assert ns.stat(ROOT, "/f").size == 20
    cmds = beat(ns, nodes)
    assert all(cmds[d.uuid].invalidate == {old[0][0]} for d in nodes)
    assert new[0][0] in ns.bmap.blocks


def test_set_replication_down_invalidates_excess():
    ns = make()
    nodes = register(ns, 3)
    _, blocks, _ = write(ns, "/f", [10])
    bid = blocks[0][0]
    ns.set_replication(ROOT, "/f", 1)
    ns.tick()
    cmds = beat(ns, nodes)
    assert sum(bid in c.invalidate for c in cmds.values()) == 2
    assert len(holders(ns, bid)) == 1
    assert ns.fsck(ROOT, "/f")["status"] == "HEALTHY"


def test_a_new_version_kept_a_setrep_made_while_it_was_written_and_its_blocks_follow():
    """keep_attributes (a mount's commit): the file's replication at complete, not the
    one its blocks were placed for; the monitor trims (or adds) copies to match."""
    ns = make()
    nodes = register(ns, 3)
    fid, _, _ = write(ns, "/f", [10])
    row, _, _ = ns.create(ROOT, "/f", overwrite=True, replication=3, block_size=BS, mode=0o644,
                          create_parent=False, complete=False, replaces=fid, keep_attributes=True)
    lb = ns.add_block(ROOT, row["id"], None, [], [])
    ns.set_replication(ROOT, "/f", 1)
    st = ns.complete(ROOT, row["id"], (lb.block_id, 10), [d.address for d in lb.locations],
                     keep_attributes=True)
    assert st.replication == 1 and ns.bmap.blocks[lb.block_id].replication == 1
    ns.tick()
    beat(ns, nodes)
    assert len(holders(ns, lb.block_id)) == 1


def test_late_received_report_does_not_undo_a_surplus_drop():
    """A node's report that it received a block, sent before it learns the copy is
    surplus, must not count the copy again (setrep -w saw 2, then 3)."""
    ns = make()
    nodes = register(ns, 3)
    _, blocks, _ = write(ns, "/f", [10])
    bid = blocks[0][0]
    ns.set_replication(ROOT, "/f", 2)
    ns.tick()
    assert len(holders(ns, bid)) == 2
    dropped = next(d for d in nodes if d.uuid not in holders(ns, bid))
    cmds = beat(ns, [dropped], received={dropped.uuid: [(bid, 1, 10)]})
    assert bid in cmds[dropped.uuid].invalidate
    assert len(holders(ns, bid)) == 2


def test_fsck_statuses():
    ns = make()
    nodes = register(ns, 3)
    write(ns, "/ok", [10])
    _, bad, _ = write(ns, "/bad", [10, 10])
    assert ns.fsck(ROOT, "/")["status"] == "HEALTHY"
    b0 = bad[0][0]
    ns.report_bad(ROOT, b0, nodes[0].address)
    r = ns.fsck(ROOT, "/")
    assert (r["status"], r["under_replicated"], r["corrupt"], r["missing"]) == ("DEGRADED", 1, 0, 0)
    assert ns.fsck(ROOT, "/ok")["status"] == "HEALTHY"
    # the corrupt replica is never offered to readers
    _, located, _, _ = ns.block_locations(ROOT, "/bad")
    assert nodes[0].uuid not in [d.uuid for d in located[0].locations]
    for d in nodes[1:]:
        ns.report_bad(ROOT, b0, d.address)
    r = ns.fsck(ROOT, "/")
    assert (r["status"], r["corrupt"], r["files"], r["blocks"]) == ("CORRUPT", 1, 2, 3)
    _, located, _, _ = ns.block_locations(ROOT, "/bad")
    assert located[0].corrupt and located[0].locations == []
    assert ns.fsck(ROOT, "/ok")["status"] == "HEALTHY"
    statuses = {d["path"]: d["status"] for d in ns.fsck(ROOT, "/")["details"]}
    assert statuses == {"/ok": "HEALTHY", "/bad": "CORRUPT"}
    # every node silent past the timeout: blocks missing
    ns.clock.advance(DEAD + 1)
    ns.tick()
    r = ns.fsck(ROOT, "/ok")
    assert (r["status"], r["missing"]) == ("CORRUPT", 1)


def test_only_a_caller_who_may_read_a_block_may_report_it_corrupt():
    # A report is believed (a datanode cannot check what it cannot decrypt): a user
    # who may not read the file must not be able to make its blocks unreadable.
    ns = make()
    nodes = register(ns, 3)
    bob = Caller("bob", ("users",), client_name="bob-1")
    _, blocks, _ = write(ns, "/secret", [10])
    ns.mkdir(ROOT, "/private", False, 0o700)
    _, inner, _ = write(ns, "/private/open", [10])
    _, public, _ = write(ns, "/public", [10])
    ns.chmod(ROOT, "/secret", 0o600)
    for bid in (blocks[0][0], inner[0][0]):
        with pytest.raises(errors.DfsPermissionError):
            ns.report_bad(bob, bid, nodes[0].address)
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.report_bad(bob, 10**9, nodes[0].address)
    assert ns.fsck(ROOT, "/")["status"] == "HEALTHY"
    ns.report_bad(bob, public[0][0], nodes[0].address)     # a reader of /public may
    assert ns.fsck(ROOT, "/public")["status"] == "DEGRADED"


def test_corrupt_replica_replaced_from_good_one():
    ns = make()
    nodes = register(ns, 4)
    _, blocks, _ = write(ns, "/f", [10])
    bid = blocks[0][0]
    bad = next(d for d in nodes if d.uuid in holders(ns, bid))
    spare = next(d for d in nodes if d.uuid not in holders(ns, bid))
    ns.report_bad(ROOT, bid, bad.address)
    ns.tick()
    cmds = beat(ns, nodes)
    # replaced from a good copy first ...
    assert all(bid not in c.invalidate for c in cmds.values())
    transfers = [t for c in cmds.values() for t in c.transfers]
    assert len(transfers) == 1 and transfers[0][3] == [spare.address]
    _, located, _, _ = ns.block_locations(ROOT, "/f")
    assert bad.address not in [d.address for d in located[0].locations]   # never served
    beat(ns, [spare], received={spare.uuid: [(bid, transfers[0][1], 10)]})
    ns.tick()
    # ... then deleted
    cmds = beat(ns, nodes)
    assert bid in cmds[bad.uuid].invalidate
    assert ns.fsck(ROOT, "/f")["status"] == "HEALTHY"


def test_a_copy_goes_to_a_node_only_after_it_deleted_its_corrupt_replica_of_the_block():
    """Three nodes, two bad replicas: they must go before their nodes can take the
    replacement. Sent to a node whose deletion was still on its way, the copy was
    deleted with the old replica, and the repair waited out the copy's timeout."""
    clock = Clock()
    ns = make(clock=clock)
    nodes = register(ns, 3)
    _, blocks, _ = write(ns, "/f", [10])
    bid = blocks[0][0]
    good, *bad = nodes
    for d in bad:
        ns.report_bad(ROOT, bid, d.address)
    clock.advance(10)                       # past the grace for more bad reports
    beat(ns, nodes)
    ns.tick()                               # both bad replicas are to be deleted ...
    ns.monitor.want((bid,))                 # (any event, or the periodic scan, plans it again)
    ns.tick()                               # ... and nothing is copied to them meanwhile
    assert all(ns.commands[d.uuid].invalidate == {bid} for d in bad)
    assert not ns.commands.get(good.uuid, NodeCommands()).transfers
    cmds = beat(ns, bad)                    # the deletions are delivered
    assert all(cmds[d.uuid].invalidate == {bid} for d in bad)
    ns.monitor.want((bid,))
    ns.tick()
    assert not ns.commands.get(good.uuid, NodeCommands()).transfers   # not carried out yet
    for d in bad:                           # the next beats say they were carried out
        ns.heartbeat(d.uuid, {"remaining": 10 << 30, "xceivers": 0}, [], [bid], [])
    ns.tick()
    [(b, _, _, targets)] = ns.commands[good.uuid].transfers
    assert b == bid and sorted(targets) == sorted(d.address for d in bad)


def test_decommission():
    ns = make()
    nodes = register(ns, 4)
    _, blocks, _ = write(ns, "/f", [10])
    bid = blocks[0][0]
    leaving = next(d for d in nodes if d.uuid in holders(ns, bid))
    spare = next(d for d in nodes if d.uuid not in holders(ns, bid))
    ns.decommission(leaving.address)
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.decommission("10.1.1.1:1")
    ns.tick()
    assert leaving.admin_state == "decommissioning"
    cmds = beat(ns, nodes)
    transfers = [t for c in cmds.values() for t in c.transfers]
    assert len(transfers) == 1 and transfers[0][3] == [spare.address]
    beat(ns, [spare], received={spare.uuid: [(bid, transfers[0][1], 10)]})
    ns.tick()
    assert leaving.admin_state == "decommissioned"
    r = ns.fsck(ROOT, "/")      # its replica counts apart, not toward the target
    assert (r["status"], r["under_replicated"], r["decommissioned_replicas"]) == ("HEALTHY", 0, 1)
    # a decommissioned node takes no new blocks
    _, more, _ = write(ns, "/g", [10])
    assert leaving.address not in more[0][1]


def test_a_decommission_outlives_a_restart_and_a_node_not_back_yet_is_named_so(tmp_path):
    # After a restart the namenode knows a datanode only once it has registered again:
    # "no such datanode" for one that was decommissioning read as a lost decommission.
    db, master, clock = str(tmp_path / "meta.db"), os.urandom(32), Clock()
    ns1 = make(SqliteStore(db), clock, master_key=master)
    nodes = register(ns1, 4)
    ns1.decommission(nodes[0].address)
    ns1.store.close()
    ns2 = make(SqliteStore(db), clock, master_key=master)
    clock.advance(5)
    for address in (nodes[1].address, "10.1.1.1:1"):
        with pytest.raises(errors.DfsFileNotFoundError) as e:
            ns2.decommission(address)
        assert str(e.value) == (f"{address}: no such datanode: none has registered at this address since the "
                                "namenode started 5 s ago (dfs admin report lists those that have)")
    back = register(ns2, 2)
    assert [d.admin_state for d in back] == ["decommissioning", "normal"]    # remembered by uuid
    ns2.decommission(back[1].address)


def test_a_namenodes_age_reads_in_a_fitting_unit():
    from dfs.namenode.admin import _age
    assert [_age(x) for x in (0.4, 119, 120, 7199, 7200, 86400 * 3)] == \
        ["0 s", "119 s", "2 min", "120 min", "2 h", "3 days"]


def test_decommission_that_would_leave_fewer_nodes_than_the_replication_waits_for_one_more():
    """3 datanodes, replication 3: the leaving node's replicas cannot go anywhere. It
    stays decommissioning (it was declared decommissioned at once, fsck HEALTHY, and
    switching it off left every block with 2 replicas), until a 4th node joins."""
    ns = make()
    nodes = register(ns, 3)
    _, blocks, _ = write(ns, "/f", [10])
    bid = blocks[0][0]
    leaving = nodes[0]
    ns.decommission(leaving.address)
    for _ in range(3):
        ns.tick()
        assert not [t for c in beat(ns, nodes).values() for t in c.transfers]   # nowhere to copy
    assert leaving.admin_state == "decommissioning"
    spare = dn(9, "/r1")
    ns.register(spare)
    ns.tick()
    (transfer,) = [t for c in beat(ns, nodes).values() for t in c.transfers]
    assert transfer[0] == bid and transfer[3] == [spare.address]
    ns.tick()
    assert leaving.admin_state == "decommissioning"          # the copy has not landed yet
    beat(ns, [spare], received={spare.uuid: [(bid, transfer[1], 10)]})
    ns.tick()
    assert leaving.admin_state == "decommissioned"


def test_fewer_datanodes_than_the_target_means_no_fast_heartbeats_until_one_joins():
    """Blocks nobody can take a copy of were re-planned every tick and every datanode was
    told to beat 10x as fast, for as long as the cluster had fewer nodes than the target."""
    ns = make()
    nodes = register(ns, 2)
    _, blocks, _ = write(ns, "/f", [10])
    for _ in range(3):
        ns.clock.advance(1.0)
        ns.tick()
        cmds = beat(ns, nodes)
        assert all(c.next_heartbeat == 0 and not c.transfers for c in cmds.values())
        assert not ns.monitor.needed
    spare = dn(9, "/r1")
    ns.register(spare)
    ns.tick()                                   # no scan due: the join itself brings the block back
    (transfer,) = [t for c in beat(ns, nodes).values() for t in c.transfers]
    assert transfer[0] == blocks[0][0] and transfer[3] == [spare.address]


def test_a_decommission_follows_the_node_across_restarts_not_its_address(tmp_path):
    """Remembered by the node's uuid: restarted on another address it stays decommissioned;
    a new machine on its old address (an empty data dir: a new uuid) is in service (it
    came up decommissioned for good, with no way to recommission it)."""
    db, master, clock = str(tmp_path / "meta.db"), os.urandom(32), Clock()
    ns = make(SqliteStore(db), clock, master_key=master)
    nodes = register(ns, 4)
    write(ns, "/f", [10])
    old = nodes[0]
    ns.decommission(old.address)
    ns.tick()
    for _ in range(2):   # its block is copied away
        for c in beat(ns, nodes).values():
            for bid, gs, ln, targets in c.transfers:
                target = next(n for n in nodes if n.address == targets[0])
                beat(ns, [target], received={target.uuid: [(bid, gs, ln)]})
        ns.tick()
    assert old.admin_state == "decommissioned"
    ns.store.close()
    ns = make(SqliteStore(db), clock, master_key=master)
    moved = dn(1)
    moved.address = "127.0.0.77:9866"
    ns.register(moved)
    assert moved.admin_state == "decommissioned"
    fresh = DatanodeDescriptor(uuid="new-disk", address=old.address, rack="/r0", capacity=10 << 30,
                               remaining=10 << 30)
    ns.register(fresh)
    assert fresh.admin_state == "normal"


def test_a_second_datanode_with_the_same_uuid_is_refused_while_the_first_beats():
    """A copied data dir: the copy took the live node's place (the report lost a node,
    their heartbeats and commands mixed). Now refused; the node itself restarted on
    another address is let in once its old self has missed two heartbeats."""
    ns = make()
    nodes = register(ns, 3)
    clone = dn(1)
    clone.address = "127.0.0.99:9866"
    with pytest.raises(errors.DfsFileExistsError, match="in use by the live datanode 127.0.0.1:9866"):
        ns.register(clone)
    assert ns.members.by_address(nodes[0].address) is nodes[0]
    ns.clock.advance(2 * HB + 0.1)     # it stopped beating (stale): a restart elsewhere
    beat(ns, nodes[1:])
    ns.register(clone)
    assert ns.members.by_address(clone.address) is clone and ns.members.by_address(nodes[0].address) is None


def test_a_new_datanode_on_a_stale_ones_address_replaces_it_and_its_replicas_are_lost_at_once():
    """A wiped disk (a new uuid) on the old address: the old uuid's replicas stayed in the
    block map, not counted and not repaired until a periodic scan came to them. And two
    datanodes giving one address while both beat are refused, not evicting each other."""
    ns = make()
    nodes = register(ns, 4)
    _, blocks, _ = write(ns, "/f", [10])
    bid, addrs = blocks[0]
    old = next(d for d in nodes if d.address in addrs)
    wiped = DatanodeDescriptor(uuid="wiped", address=old.address, rack=old.rack, capacity=10 << 30,
                               remaining=10 << 30)
    with pytest.raises(errors.DfsFileExistsError, match="address in use by the live datanode"):
        ns.register(wiped)
    ns.clock.advance(2 * HB + 0.1)
    beat(ns, [d for d in nodes if d is not old])
    ns.tick()
    ns.register(wiped)
    assert old.uuid not in ns.bmap.by_node and old.uuid not in ns.bmap.holders(bid)
    ns.tick()                              # no scan due: the replacement itself says so
    (transfer,) = [t for c in beat(ns, [d for d in nodes if d is not old] + [wiped]).values()
                   for t in c.transfers]
    assert transfer[0] == bid


def test_a_decommission_can_be_cancelled_and_the_copies_it_made_are_trimmed(tmp_path):
    db, master, clock = str(tmp_path / "meta.db"), os.urandom(32), Clock()
    ns = make(SqliteStore(db), clock, master_key=master)
    nodes = register(ns, 4)
    _, blocks, _ = write(ns, "/f", [10])
    bid = blocks[0][0]
    leaving = next(d for d in nodes if d.uuid in holders(ns, bid))
    ns.decommission(leaving.address)
    ns.tick()
    (transfer,) = [t for c in beat(ns, nodes).values() for t in c.transfers]
    spare = next(d for d in nodes if d.address == transfer[3][0])
    beat(ns, [spare], received={spare.uuid: [(bid, transfer[1], 10)]})
    ns.tick()
    assert leaving.admin_state == "decommissioned"
    ns.decommission(leaving.address, cancel=True)
    assert leaving.admin_state == "normal"
    ns.tick()
    drops = {u for u, c in beat(ns, nodes).items() if bid in c.invalidate}
    assert len(drops) == 1 and len(holders(ns, bid)) == 3       # 4 replicas in service: one goes
    _, more, _ = write(ns, "/g", [10] * 8)                        # it takes new blocks again
    assert any(leaving.address in addrs for _, addrs in more)
    ns.store.close()
    ns = make(SqliteStore(db), clock, master_key=master)          # and stays in service
    again = dn(int(leaving.uuid[2:]), leaving.rack)
    ns.register(again)
    assert again.admin_state == "normal"


def test_a_decommissioning_node_that_dies_is_not_decommissioned_until_it_is_back_and_drained():
    ns = make()
    nodes = register(ns, 3)
    _, blocks, _ = write(ns, "/f", [10])
    leaving = nodes[0]
    ns.decommission(leaving.address)
    ns.clock.advance(DEAD + 1)
    beat(ns, nodes[1:])
    ns.tick()                                   # dead: its replica left the map
    assert leaving.admin_state == "decommissioning"
    again = dn(1, leaving.rack)
    ns.register(again)
    ns.block_report(again.uuid, [(blocks[0][0], ns.bmap.blocks[blocks[0][0]].genstamp, 10)])
    ns.tick()
    assert again.admin_state == "decommissioning"    # 3 nodes, replication 3: nowhere to go


def test_a_decommissioning_node_is_not_done_before_its_block_report():
    """Registered, it holds nothing as far as the map knows until its block report
    comes: a tick in that gap declared it decommissioned while the only holder of its
    blocks (exploratory run: 88 blocks at replication 1, then switched off)."""
    ns = make()
    nodes = register(ns, 3)
    _, blocks, _ = write(ns, "/f", [10], replication=1)
    holder = next(d for d in nodes if d.address in blocks[0][1])
    ns.decommission(holder.address)
    ns.clock.advance(DEAD + 1)
    beat(ns, [d for d in nodes if d is not holder])
    ns.tick()                                   # dead: decommissioning, its replica unknown
    back = dn(int(holder.uuid[2:]), holder.rack)
    ns.register(back)
    ns.tick()
    assert back.admin_state == "decommissioning"          # its report has not come yet
    ns.block_report(back.uuid, [(blocks[0][0], ns.bmap.blocks[blocks[0][0]].genstamp, 10)])
    ns.tick()
    assert back.admin_state == "decommissioning"          # its one copy is still only here


def test_decommission_waits_for_blocks_being_written_on_the_node():
    """A block allocated to the node, or stored there but not yet committed, cannot be
    copied (its length is unknown): the node is not decommissioned until it is."""
    ns = make(replication=1)
    nodes = register(ns, 3)
    fid = start(ns, "/open")["id"]
    b0 = ns.add_block(ROOT, fid, None, [], [])
    leaving = next(d for d in nodes if d.address == b0.locations[0].address)
    ns.decommission(leaving.address)
    ns.tick()
    assert leaving.admin_state == "decommissioning"          # being written there
    beat(ns, [leaving], received={leaving.uuid: [(b0.block_id, b0.genstamp, 10)]})
    ns.tick()
    assert leaving.admin_state == "decommissioning"          # stored there, not committed
    b1 = ns.add_block(ROOT, fid, (b0.block_id, 10), [leaving.address], [])
    assert leaving.address not in [d.address for d in b1.locations]
    ns.tick()
    cmds = beat(ns, nodes)
    (transfer,) = [t for c in cmds.values() for t in c.transfers]   # b0 is committed: copied
    target = next(d for d in nodes if d.address == transfer[3][0])
    beat(ns, [target], received={target.uuid: [(b0.block_id, b0.genstamp, 10)]})
    ns.tick()
    assert leaving.admin_state == "decommissioned"
    assert not ns.bmap.writing - {b1.block_id}               # committed blocks leave it


def test_committed_blocks_of_an_unfinished_file_stay_committed_after_a_restart(tmp_path):
    db = str(tmp_path / "meta.db")
    master, clock = os.urandom(32), Clock()
    ns1 = make(SqliteStore(db), clock, master_key=master)
    register(ns1, 3)
    fid = start(ns1, "/open")["id"]
    b0 = ns1.add_block(ROOT, fid, None, [], [])
    b1 = ns1.add_block(ROOT, fid, (b0.block_id, BS), [d.address for d in b0.locations], [])
    ns1.store.close()
    ns2 = make(SqliteStore(db), clock, master_key=master)
    # b0 is repaired like any block; b1 is still being written
    assert ns2.bmap.blocks[b0.block_id].complete and ns2.bmap.blocks[b0.block_id].length == BS
    assert not ns2.bmap.blocks[b1.block_id].complete


def test_a_restarted_namenode_asks_writers_to_wait_for_its_datanodes(tmp_path):
    db = str(tmp_path / "meta.db")
    master, clock = os.urandom(32), Clock()
    ns1 = make(SqliteStore(db), clock, master_key=master)
    register(ns1, 3)
    write(ns1, "/f", [10])
    fid = start(ns1, "/open")["id"]
    ns1.store.close()
    ns2 = make(SqliteStore(db), clock, master_key=master)
    ns2.safemode_auto = False   # (the reports of /f's block are not the point here)
    with pytest.raises(errors.SafeModeError, match="waiting for the datanodes to register"):
        ns2.add_block(ROOT, fid, None, [], [])       # retried by the client
    clock.advance(DEAD + 1)
    with pytest.raises(errors.NoDatanodesError):     # none came: the usual error
        ns2.add_block(ROOT, fid, None, [], [])


def test_expired_lease_removes_unfinished_file():
    clock = Clock()
    ns = make(clock=clock)
    nodes = register(ns, 3)
    row = start(ns, "/f")
    lb = ns.add_block(ROOT, row["id"], None, [], [])
    received = {d.uuid: [(lb.block_id, lb.genstamp, 5)] for d in lb.locations}
    beat(ns, nodes, received=received)
    clock.advance(LEASE_SOFT_LIMIT - 1)
    ns.renew_lease(ROOT)
    clock.advance(LEASE_SOFT_LIMIT - 1)
    beat(ns, nodes)
    ns.tick()
    assert ns.store.get(row["id"]) is not None
    clock.advance(2)
    beat(ns, nodes)
    ns.tick()
    assert ns.store.get(row["id"]) is None
    cmds = beat(ns, nodes)
    assert {d.uuid for d in nodes if lb.block_id in cmds[d.uuid].invalidate} == set(received)
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.complete(ROOT, row["id"], (lb.block_id, 5), [])


def test_heartbeat_from_unknown_or_dead_node_asks_reregistration():
    clock = Clock()
    ns = make(clock=clock)
    nodes = register(ns, 1)
    assert ns.heartbeat("nobody", {}, [], [], [])[0] is True
    clock.advance(DEAD + 1)
    ns.tick()
    assert ns.heartbeat(nodes[0].uuid, {}, [], [], [])[0] is True
    ns.register(dn(1))
    assert ns.heartbeat(nodes[0].uuid, {}, [], [], [])[0] is False


def test_abandon_block_and_file():
    ns = make()
    nodes = register(ns, 3)
    row = start(ns, "/f")
    lb = ns.add_block(ROOT, row["id"], None, [], [])
    beat(ns, nodes, received={d.uuid: [(lb.block_id, lb.genstamp, 3)] for d in lb.locations})
    ns.abandon_block(ROOT, row["id"], lb.block_id)
    assert lb.block_id not in ns.bmap.blocks
    cmds = beat(ns, nodes)
    assert all(lb.block_id in cmds[d.uuid].invalidate for d in lb.locations)
    lb2 = ns.add_block(ROOT, row["id"], None, [], [])
    ns.abandon_file(ROOT, row["id"])
    assert ns.store.get(row["id"]) is None and lb2.block_id not in ns.bmap.blocks


# -- healing: hints, failures reported by datanodes, restarts ------------------------------------


def test_add_block_retry_after_a_lost_reply_drops_the_orphan():
    ns = make()
    nodes = register(ns, 3)
    row, _, _ = ns.create(ROOT, "/f", overwrite=False, replication=0, block_size=BS, mode=0o644,
                          create_parent=False, complete=False)
    first = ns.add_block(ROOT, row["id"], None, [], [])
    orphan = ns.add_block(ROOT, row["id"], (first.block_id, 10), [d.address for d in first.locations], [])
    beat(ns, nodes, received={d.uuid: [(orphan.block_id, orphan.genstamp, 0)] for d in orphan.locations})
    # the reply of that second call was lost: the writer asks again for the same step
    again = ns.add_block(ROOT, row["id"], (first.block_id, 10), [d.address for d in first.locations], [])
    assert again.block_id != orphan.block_id and orphan.block_id not in ns.bmap.blocks
    ns.complete(ROOT, row["id"], (again.block_id, 5), [d.address for d in again.locations])
    assert ns.stat(ROOT, "/f").size == 15
    cmds = beat(ns, nodes)
    assert any(orphan.block_id in c.invalidate for c in cmds.values())


def test_heartbeat_hint_and_reported_copy_failure_retries_elsewhere():
    clock = Clock()
    ns = make(clock=clock)
    nodes = register(ns, 5)
    _, blocks, _ = write(ns, "/f", [100])
    bid = blocks[0][0]
    assert beat(ns, nodes)[nodes[0].uuid].next_heartbeat == 0.0      # nothing going on: own interval
    victim = next(d for d in nodes if d.uuid in holders(ns, bid))
    others = [d for d in nodes if d is not victim]
    clock.advance(2 * HB + 1)
    beat(ns, others)
    ns.tick()
    # a node is stale: the others beat fast (it may be about to die)
    assert beat(ns, others)[others[0].uuid].next_heartbeat == ns.fast_heartbeat < HB
    clock.advance(DEAD)
    beat(ns, others)
    ns.tick()
    cmds = beat(ns, others)
    (src, (b, gs, length, targets)), = [(u, t) for u, c in cmds.items() for t in c.transfers]
    assert b == bid and cmds[src].next_heartbeat == ns.fast_heartbeat
    # the source says the copy failed: planned again at once, to another target
    rereg, _ = ns.heartbeat(src, {}, [], [], [], [(bid, targets, "connection refused")])
    assert not rereg
    ns.tick()
    retry = [t for c in beat(ns, others).values() for t in c.transfers]
    assert len(retry) == 1 and retry[0][0] == bid and retry[0][3] != targets


def test_restarted_datanode_drops_its_copies_in_flight():
    clock = Clock()
    ns = make(clock=clock)
    nodes = register(ns, 4)
    _, blocks, _ = write(ns, "/f", [100])
    bid = blocks[0][0]
    victim = next(d for d in nodes if d.uuid in holders(ns, bid))
    others = [d for d in nodes if d is not victim]
    clock.advance(DEAD + 1)
    beat(ns, others)
    ns.tick()
    (t,) = [t for c in beat(ns, others).values() for t in c.transfers]
    target = next(d for d in others if d.address == t[3][0])
    assert ns.monitor.in_flight.pending(bid) == 1
    ns.register(dn(int(target.address.split(".")[3].split(":")[0])))   # the target restarts
    assert ns.monitor.in_flight.pending(bid) == 0
    ns.tick()
    assert [t[0] for c in beat(ns, others).values() for t in c.transfers] == [bid]


def test_stale_nodes_take_writes_only_when_no_fresh_node_is_left(tmp_path):
    import os as _os
    import random as _random

    from dfs.model import DatanodeDescriptor
    from dfs.namenode.namespace import Caller
    from dfs.namenode.namesystem import NameSystem
    from dfs.namenode.store import SqliteStore

    now = [1000.0]
    ns = NameSystem(SqliteStore(":memory:"), _os.urandom(32), superuser="root", replication=1,
                    heartbeat_interval=1.0, dead_timeout=30.0, clock=lambda: now[0], rng=_random.Random(0))
    for i in range(2):
        ns.register(DatanodeDescriptor(uuid=f"u{i}", address=f"10.0.0.{i}:1", remaining=1 << 40))
    ns.safemode("leave")
    caller = Caller("root", (), "c1")
    now[0] += 5.0                                    # both stale (> 2 intervals), not dead
    ns.heartbeat("u1", {"remaining": 1 << 40}, [], [], [])   # u1 fresh again
    row, _, _ = ns.create(caller, "/f", overwrite=False, replication=1, block_size=0, mode=0o644,
                          create_parent=True, complete=False)
    lb = ns.add_block(caller, row["id"], None, [], [])
    assert [d.uuid for d in lb.locations] == ["u1"]
    now[0] += 5.0                                    # every node stale: still writable
    row2, _, _ = ns.create(caller, "/g", overwrite=False, replication=1, block_size=0, mode=0o644,
                           create_parent=True, complete=False)
    assert ns.add_block(caller, row2["id"], None, [], []).locations


def test_fsck_tree_names_nested_files_whatever_the_row_order():
    from dfs.namenode.blockmap import BlockInfo, BlockMap
    from dfs.namenode.health import check_tree

    keys = ("id", "parent", "name", "pending_name", "is_dir", "state", "length", "replication")
    rows = [dict(zip(keys, r, strict=True)) for r in (
        (3, 2, "f", None, 0, "C", 10, 2),
        (2, 1, "d", None, 1, "C", 0, 0),
        (1, None, "", None, 1, "C", 0, 0),
        (4, 2, None, "w", 0, "U", 0, 2),
    )]
    bmap = BlockMap()
    bmap.add_block(BlockInfo(7, 3, 1, 10, 2))
    bmap.add_replica(7, "a", 1, 10)
    out = check_tree(rows, 1, "/", lambda i: [{"id": 7, "length": 10}] if i == 3 else [], bmap, {"a"}, {})
    assert [d["path"] for d in out["details"]] == ["/d/f"]
    assert (out["status"], out["files"], out["directories"], out["under_replicated"]) == ("DEGRADED", 1, 2, 1)


def _writing() -> tuple[NameSystem, int]:
    """A namesystem with three datanodes and /f open for writing: (it, /f's id)."""
    ns = make()
    register(ns, 3)
    row, _, _ = ns.create(ROOT, "/f", overwrite=False, replication=0, block_size=BS, mode=0o644,
                          create_parent=False, complete=False)
    return ns, row["id"]


def test_next_block_while_the_last_drains_and_both_commit_in_order():
    """A writer streams block N+1 before reading block N's acknowledgement: N stays
    uncommitted until the following call commits it, and Complete commits both."""
    ns, fid = _writing()
    b0 = ns.add_block(ROOT, fid, None, [], [])
    b1 = ns.add_block(ROOT, fid, None, [], [], draining=b0.block_id)   # b0 still draining
    assert b1.block_id != b0.block_id
    # a third block while b0 is still uncommitted is refused: one block drains at a time
    with pytest.raises(errors.InvalidArgumentError):
        ns.add_block(ROOT, fid, None, [], [], draining=b1.block_id)
    b2 = ns.add_block(ROOT, fid, (b0.block_id, BS), [d.address for d in b0.locations], [],
                      draining=b1.block_id)
    st = ns.complete(ROOT, fid, (b2.block_id, 7), [d.address for d in b2.locations],
                     previous=(b1.block_id, BS), previous_nodes=[d.address for d in b1.locations])
    assert st.size == 2 * BS + 7
    got = [(b.block_id, b.offset, b.length) for b in ns.block_locations(ROOT, "/f")[1]]
    assert got == [(b0.block_id, 0, BS), (b1.block_id, BS, BS), (b2.block_id, 2 * BS, 7)]


def test_draining_must_name_the_last_block_and_a_lost_reply_still_drops_the_orphan():
    ns, fid = _writing()
    b0 = ns.add_block(ROOT, fid, None, [], [])
    with pytest.raises(errors.InvalidArgumentError):
        ns.add_block(ROOT, fid, None, [], [], draining=b0.block_id + 1000)
    orphan = ns.add_block(ROOT, fid, None, [], [], draining=b0.block_id)
    # that reply was lost: the writer asks again, b0 still draining; the orphan goes
    again = ns.add_block(ROOT, fid, None, [], [], draining=b0.block_id)
    assert orphan.block_id not in ns.bmap.blocks and again.block_id in ns.bmap.blocks
    st = ns.complete(ROOT, fid, (again.block_id, 3), [], previous=(b0.block_id, BS), previous_nodes=[])
    assert st.size == BS + 3


def _store_steps(ns: NameSystem, call) -> int:
    """SQLite VM instructions run by ``call``: a call's work in the store, counted rather
    than timed (deterministic)."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0
    ns.store._db.set_progress_handler(count, 1)
    try:
        call()
    finally:
        ns.store._db.set_progress_handler(None, 1)
    return steps[0]


def test_add_block_abandon_and_complete_cost_the_same_whatever_the_files_block_count():
    """AddBlock, AbandonBlock and Complete run under the namesystem lock: they must not
    read the file's every block (a file of 20,000 blocks took 28 ms per AddBlock, a
    quadratic write stalling every other call). The store work of each is the same at
    a file's 600th block as at its 10th."""
    ns = make()
    register(ns, 3)
    tails: dict[int, tuple] = {}

    def grow(fid: int, n: int = 1) -> LocatedBlock:
        prev, nodes = tails.get(fid, (None, []))
        for _ in range(n):
            lb = ns.add_block(ROOT, fid, prev, nodes, [])
            prev, nodes = (lb.block_id, BS), [d.address for d in lb.locations]
        tails[fid] = prev, nodes
        return lb

    def cost(fid: int) -> tuple[int, int, int]:
        prev, nodes = tails[fid]
        ns.add_block(ROOT, fid, prev, nodes, [])   # its reply is lost: the writer retries
        add = _store_steps(ns, lambda: grow(fid))   # and the block it never saw is dropped
        lb = grow(fid)
        abandon = _store_steps(ns, lambda: ns.abandon_block(ROOT, fid, lb.block_id))
        return add, abandon, _store_steps(ns, lambda: ns.complete(ROOT, fid, None, []))

    small, big = start(ns, "/small")["id"], start(ns, "/big")["id"]
    grow(small, 10)
    grow(big, 600)
    at_10, at_600 = cost(small), cost(big)
    assert all(b <= s + 50 for s, b in zip(at_10, at_600, strict=True)), (at_10, at_600)
    assert ns.stat(ROOT, "/small").size == 11 * BS and ns.stat(ROOT, "/big").size == 601 * BS
    assert [b.offset for b in ns.block_locations(ROOT, "/big")[1]] == [i * BS for i in range(601)]


def test_a_failing_mutation_rolls_back_only_itself_not_others_awaiting_the_group_commit():
    """Mutations share one open transaction until the next commit (group commit). One
    that writes and then fails (AddBlock commits the previous block, then finds no
    datanode) must undo only its own writes: a mkdir applied before it, whose caller
    is waiting for that commit, must survive."""
    ns, fid = _writing()
    b0 = ns.add_block(ROOT, fid, None, [], [])
    sync, ns._sync = ns._sync, lambda: None     # the mkdir's caller is still waiting
    ns.mkdir(ROOT, "/kept", False, 0o755)
    ns._sync = sync
    ns.clock.advance(DEAD + 1)                  # every datanode dead: no target for a block
    with pytest.raises(errors.NoDatanodesError):
        ns.add_block(ROOT, fid, (b0.block_id, BS), [d.address for d in b0.locations], [])
    ns._sync()
    assert ns.stat(ROOT, "/kept").is_dir
    f = ns.ns.open_file(fid, ROOT)
    assert [(b.block_id, b.committed) for b in f.blocks] == [(b0.block_id, False)]  # the failed call's write undone


def test_create_with_block_opens_the_file_and_allocates_its_first_block_in_one_call():
    ns = make()
    register(ns, 3)
    row, key, st, lb = ns.create_with_block(ROOT, "/f", overwrite=False, replication=0, block_size=BS,
                                            mode=0o644, create_parent=False)
    assert st is None and len(key) == 32 and len(lb.locations) == 3
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.stat(ROOT, "/f")   # invisible until complete
    done = ns.complete(ROOT, row["id"], (lb.block_id, 5), [d.address for d in lb.locations])
    assert done.size == 5


def test_create_with_block_empty_first_shows_an_empty_file_then_replaces_it():
    ns = make()
    register(ns, 3)
    row, _, st, lb = ns.create_with_block(ROOT, "/f", overwrite=False, replication=0, block_size=BS,
                                          mode=0o600, create_parent=False, empty_first=True)
    assert st.size == 0 and st.mode == 0o600 and ns.stat(ROOT, "/f").inode_id == st.inode_id
    assert row["id"] != st.inode_id
    ns.complete(ROOT, row["id"], (lb.block_id, 9), [d.address for d in lb.locations])
    assert ns.stat(ROOT, "/f").size == 9 and ns.stat(ROOT, "/f").inode_id == row["id"]


def test_create_with_block_creates_nothing_when_no_block_can_be_placed():
    ns = make()   # no datanodes
    with pytest.raises(errors.NoDatanodesError):
        ns.create_with_block(ROOT, "/f", overwrite=False, replication=0, block_size=BS, mode=0o644,
                             create_parent=False, empty_first=True)
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.stat(ROOT, "/f")
    assert ns.store.under_construction() == []


def test_periodic_scan_looks_at_the_block_map_a_bounded_slice_per_tick(monkeypatch):
    """Replicas lost without any event (nothing queued them) are found by the periodic
    scan, SCAN_SLICE blocks per SCAN_INTERVAL: no tick scans the whole map at once."""
    import dfs.namenode.monitor as monitor
    monkeypatch.setattr(monitor, "SCAN_SLICE", 3)
    clock = Clock()
    ns = make(clock=clock)
    nodes = register(ns, 4)
    _, blocks, _ = write(ns, "/f", [100] * 7)
    ids = [b for b, _ in blocks]
    for b in ids:   # one replica of each block vanishes, silently
        ns.bmap.remove_replica(b, next(iter(holders(ns, b))))
    ns.monitor.needed.clear()
    planned: list[int] = []

    def tick_and_collect() -> list[int]:
        ns.tick()
        got = [t[0] for c in beat(ns, nodes).values() for t in c.transfers]
        planned.extend(got)
        return got

    clock.advance(monitor.SCAN_INTERVAL)
    assert len(tick_and_collect()) == 3
    assert tick_and_collect() == []          # no slice before SCAN_INTERVAL has passed
    clock.advance(monitor.SCAN_INTERVAL)
    assert len(tick_and_collect()) == 3
    clock.advance(monitor.SCAN_INTERVAL)
    assert len(tick_and_collect()) == 1      # the pass ends with the map's last block
    assert sorted(planned) == sorted(ids)    # each block looked at once in the pass
    clock.advance(monitor.SCAN_INTERVAL)
    assert tick_and_collect() == []          # a new pass: all of them are in flight already


def test_the_wal_fsync_runs_outside_the_namesystem_lock():
    """While one mutation's fsync is in progress, reads and other mutations go on
    (as HDFS's logSync); a mutation applied meanwhile is answered only after an
    fsync of its own commit."""
    import threading
    ns = make()
    ns.safemode_auto = False
    in_flush, release = threading.Event(), threading.Event()
    flushed: list[str] = []

    def slow_flush():
        flushed.append(threading.current_thread().name)
        if threading.current_thread().name == "first":
            in_flush.set()
            assert release.wait(10)

    ns.store.flush = slow_flush
    ns.store.commit = (lambda commit: lambda: commit() or True)(ns.store.commit)  # :memory: owes none
    first = threading.Thread(target=ns.mkdir, args=(ROOT, "/a", False, 0o755), name="first")
    first.start()
    assert in_flush.wait(10)
    assert ns.stat(ROOT, "/a").is_dir                  # a read during the fsync: no wait
    second = threading.Thread(target=ns.mkdir, args=(ROOT, "/b", False, 0o755), name="second")
    second.start()
    second.join(0.5)
    assert second.is_alive()                            # applied, but its commit waits for the fsync
    assert ns.stat(ROOT, "/b").is_dir
    release.set()
    first.join(10)
    second.join(10)
    assert flushed == ["first", "second"]


# -- replicas lost on disk (files removed behind the datanode's back) ------------------


def _lose_one() -> tuple[NameSystem, list[DatanodeDescriptor], int, DatanodeDescriptor]:
    ns = make()
    nodes = register(ns, 4)
    _, blocks, _ = write(ns, "/f", [10])
    bid = blocks[0][0]
    victim = next(d for d in nodes if d.uuid in holders(ns, bid))
    return ns, nodes, bid, victim


def _copies(ns: NameSystem, nodes) -> list:
    ns.tick()
    return [t for c in beat(ns, nodes).values() for t in c.transfers]


def test_block_report_without_a_replica_drops_it_and_plans_a_copy():
    ns, nodes, bid, victim = _lose_one()
    ns.block_report(victim.uuid, [])
    assert victim.uuid not in holders(ns, bid) and len(holders(ns, bid)) == 2
    assert ns.fsck(ROOT, "/f")["status"] == "DEGRADED"
    assert len(_copies(ns, nodes)) == 1


def test_replica_reported_deleted_but_not_asked_for_is_copied_again():
    ns, nodes, bid, victim = _lose_one()
    ns.heartbeat(victim.uuid, {}, [], [bid], [])
    assert victim.uuid not in holders(ns, bid)
    assert len(_copies(ns, nodes)) == 1


def test_lost_replica_also_reported_bad_by_a_reader_is_forgotten_once_invalidated():
    """The datanode reports the replica deleted, then a reader (late) reports it
    bad: the block is copied again and the phantom bad replica is forgotten when
    its invalidation is sent, without waiting for an answer."""
    ns, nodes, bid, victim = _lose_one()
    ns.heartbeat(victim.uuid, {}, [], [bid], [])
    ns.report_bad(ROOT, bid, victim.address)
    assert victim.uuid in ns.bmap.corrupt.get(bid, ())
    (_, gs, _, targets), = _copies(ns, nodes)
    target = next(d for d in nodes if d.address == targets[0])
    beat(ns, [target], received={target.uuid: [(bid, gs, 10)]})
    ns.tick()
    cmds = beat(ns, nodes)
    assert bid in cmds[victim.uuid].invalidate
    assert victim.uuid not in ns.bmap.corrupt.get(bid, ()) and victim.uuid not in holders(ns, bid)
    assert ns.fsck(ROOT, "/f")["status"] == "HEALTHY"


def test_unreported_block_is_missing_after_the_dead_node_timeout(tmp_path):
    db = str(tmp_path / "meta.db")
    master = os.urandom(32)
    clock = Clock()
    ns1 = make(SqliteStore(db), clock, master_key=master)
    register(ns1, 3)
    write(ns1, "/f", [BS])
    ns1.store.close()
    ns2 = make(SqliteStore(db), clock, master_key=master)
    ns2.safemode("leave")
    with pytest.raises(errors.SafeModeError) as ei:  # reports may still come
        ns2.block_locations(ROOT, "/f")
    assert ei.value.retry_for == DEAD + 1            # the client may wait until then (+1 s)
    clock.t += DEAD - 4
    with pytest.raises(errors.SafeModeError) as ei:
        ns2.block_locations(ROOT, "/f")
    assert ei.value.retry_for == pytest.approx(5)
    ns2.safemode("enter")                            # an administrator's: no estimate
    with pytest.raises(errors.SafeModeError) as ei:
        ns2.mkdir(ROOT, "/d", False, 0o755)
    assert ei.value.retry_for == 0
    ns2.safemode("leave")
    clock.t += 5                                     # a node silent this long is dead
    _, located, _, _ = ns2.block_locations(ROOT, "/f")
    assert [b.locations for b in located] == [[]]
    # a block written after the restart is never "not reported yet"
    register(ns2, 3)
    write(ns2, "/g", [BS])
    clock.t = ns2.started
    _, located, _, _ = ns2.block_locations(ROOT, "/g")
    assert located and located[0].block_id > ns2._last_block_at_start


def test_fsck_and_report_do_not_count_replicas_on_decommissioning_nodes():
    """As HDFS's: only replicas on in-service nodes count toward a block's target. A
    decommission that cannot finish (3 nodes, replication 3) said HEALTHY, 0
    under-replicated; a block held only by leaving nodes is DEGRADED (still readable),
    not missing."""
    ns = make()
    nodes = register(ns, 3)
    write(ns, "/f", [10])
    ns.decommission(nodes[0].address)
    ns.tick()
    assert nodes[0].admin_state == "decommissioning"
    r = ns.fsck(ROOT, "/")
    assert (r["status"], r["under_replicated"], r["missing"], r["corrupt"]) == ("DEGRADED", 1, 0, 0)
    assert (r["decommissioning_replicas"], r["decommissioned_replicas"]) == (1, 0)
    assert r["details"][0]["status"] == "DEGRADED"
    rep = ns.report()
    assert (rep["under_replicated"], rep["missing"], rep["corrupt"]) == (1, 0, 0)
    for d in nodes[1:]:
        ns.decommission(d.address)
    r = ns.fsck(ROOT, "/")
    assert (r["status"], r["under_replicated"], r["missing"], r["decommissioning_replicas"]) == ("DEGRADED", 1, 0, 3)
    assert ns.report()["missing"] == 0
    ns.decommission(nodes[0].address, cancel=True)
    ns.decommission(nodes[1].address, cancel=True)
    ns.decommission(nodes[2].address, cancel=True)
    r = ns.fsck(ROOT, "/")
    assert (r["status"], r["under_replicated"], r["decommissioning_replicas"]) == ("HEALTHY", 0, 0)


def test_fsck_in_startup_safemode_counts_unreported_blocks_apart(tmp_path):
    """Right after a restart, blocks no datanode has reported yet are not missing: fsck
    said CORRUPT. They are `unreported`, the tree DEGRADED, and fsck says safe mode is on."""
    db, master, clock = str(tmp_path / "meta.db"), os.urandom(32), Clock()
    ns1 = make(SqliteStore(db), clock, master_key=master)
    nodes = register(ns1, 3)
    _, blocks, _ = write(ns1, "/f", [BS, 77])
    ns1.store.close()
    ns2 = make(SqliteStore(db), clock, master_key=master)
    r = ns2.fsck(ROOT, "/")
    assert (r["status"], r["missing"], r["corrupt"], r["unreported"]) == ("DEGRADED", 0, 0, 2)
    assert r["safemode"] and r["safemode_reason"].startswith("waiting for block reports: 0 of 2")
    assert r["details"][0]["status"] == "DEGRADED"
    rep = ns2.report()
    assert (rep["safemode"], rep["missing"], rep["unreported"]) == (True, 0, 2)
    gs = {b["id"]: b["genstamp"] for b in ns2.store.blocks(ns2.stat(ROOT, "/f").inode_id)}
    for d in nodes:
        ns2.register(dn(int(d.uuid[2:]), d.rack))
    ns2.block_report(nodes[0].uuid, [(blocks[0][0], gs[blocks[0][0]], BS)])
    r = ns2.fsck(ROOT, "/")
    assert (r["status"], r["missing"], r["unreported"], r["under_replicated"]) == ("DEGRADED", 0, 1, 1)
    # out of safe mode (an administrator left it): a block nobody has is missing
    ns2.safemode("leave")
    r = ns2.fsck(ROOT, "/")
    assert (r["status"], r["missing"], r["unreported"], r["safemode"]) == ("CORRUPT", 1, 0, False)
    assert (ns2.report()["missing"], ns2.report()["unreported"]) == (1, 0)


def test_fsck_in_manual_safemode_still_says_missing():
    """An administrator's safe mode on a running namenode: a block whose holders all died
    is missing, not waiting for a report."""
    ns = make()
    register(ns, 3)
    write(ns, "/f", [10])
    ns.safemode("enter")
    ns.clock.advance(DEAD + 1)
    ns.tick()
    r = ns.fsck(ROOT, "/")
    assert (r["status"], r["missing"], r["unreported"], r["safemode"]) == ("CORRUPT", 1, 0, True)
    assert r["safemode_reason"] == "entered by an administrator"


def test_decommission_says_when_its_blocks_cannot_reach_their_replication():
    """3 datanodes, replication 3: the decommission is accepted (as HDFS's) but can never
    finish; the caller is told (it was only in the namenode's log)."""
    ns = make()
    nodes = register(ns, 3)
    write(ns, "/f", [10, 10])
    write(ns, "/g", [10], replication=2)
    assert ns.decommission(nodes[0].address) == {"stuck_blocks": 2, "in_service": 2, "max_replication": 3}
    assert nodes[0].admin_state == "decommissioning"
    assert ns.decommission(nodes[0].address, cancel=True) == {"stuck_blocks": 0, "in_service": 0,
                                                              "max_replication": 0}
    ns.register(dn(9, "/r1"))
    assert ns.decommission(nodes[0].address) == {"stuck_blocks": 0, "in_service": 3, "max_replication": 3}


def test_after_a_restart_a_block_waits_for_the_datanodes_live_before(tmp_path):
    """The first datanode back reports every block of a small cluster and ends safe
    mode; a block placed then went on it alone (1 replica of 3, acknowledged) while
    the others were only late. Now it waits (safe mode, retried) for the nodes live
    before the restart, but not for one declared dead or replaced, nor past the
    dead-node timeout."""
    db, master, clock = str(tmp_path / "meta.db"), os.urandom(32), Clock()
    ns = make(SqliteStore(db), clock, master_key=master)
    nodes = register(ns, 4)
    _, blocks, _ = write(ns, "/f", [10])
    clock.advance(DEAD + 1)                       # the 4th goes silent: declared dead
    beat(ns, nodes[:3])
    ns.tick()
    ns.store.close()

    def restart() -> NameSystem:
        clock.advance(5)
        return make(SqliteStore(db), clock, master_key=master)

    def back(ns2, d):
        ns2.register(dn(int(d.uuid[2:]), d.rack))
        ns2.block_report(d.uuid, [(b, ns2.bmap.blocks[b].genstamp, 10) for b, holders in blocks
                                  if d.address in holders])

    ns2 = restart()
    back(ns2, nodes[0])
    ns2.safemode_auto = False                     # as if its report were enough (a small cluster)
    with pytest.raises(errors.SafeModeError, match="waiting for the datanodes to register"):
        write(ns2, "/g", [10])
    back(ns2, nodes[1])
    with pytest.raises(errors.SafeModeError):
        write(ns2, "/g", [10])
    back(ns2, nodes[2])                           # the dead 4th is not waited for
    _, placed, _ = write(ns2, "/g", [10])
    assert len(placed[0][1]) == 3
    ns2.store.close()
    ns3 = restart()
    back(ns3, nodes[0])
    ns3.safemode_auto = False
    with pytest.raises(errors.SafeModeError):
        write(ns3, "/h", [10])
    clock.advance(DEAD)                           # the others never came: SPEC §6, best effort
    beat(ns3, nodes[:1])
    _, placed, _ = write(ns3, "/h", [10])
    assert len(placed[0][1]) == 1


def test_fsck_and_du_read_the_tree_without_holding_the_lock(tmp_path, monkeypatch):
    # fsck / of a million files held the lock for 15 s: every other call waited past its
    # 10 s deadline and failed as "cannot reach namenode". The tree is now read from a
    # snapshot of the committed namespace, with the lock free for others meanwhile.
    import threading

    from dfs.namenode import store as store_mod
    odd = tmp_path / "a #b?c%20 é"     # the snapshot opens it by URI: quoted
    odd.mkdir()
    ns = make(SqliteStore(str(odd / "ns.db")))
    register(ns, 3)
    write(ns, "/a/f", [10, 10])
    write(ns, "/a/b/g", [5])
    ns.mkdir(ROOT, "/a/empty", False, 0o755)
    seen = []
    real = store_mod.Snapshot.subtree

    def subtree(self, inode_id):
        got = []
        t = threading.Thread(target=lambda: got.append(ns.lock.acquire(timeout=2) and ns.lock.release() is None))
        t.start()
        t.join()
        seen.append(got == [True])
        return real(self, inode_id)
    monkeypatch.setattr(store_mod.Snapshot, "subtree", subtree)
    r = ns.fsck(ROOT, "/a")
    assert (r["status"], r["files"], r["directories"], r["blocks"], r["total_size"]) == ("HEALTHY", 2, 3, 3, 25)
    assert {d["path"] for d in r["details"]} == {"/a/f", "/a/b/g"}
    assert ns.content_summary(ROOT, "/a") == {"length": 25, "files": 2, "directories": 3, "space_consumed": 75}
    assert seen == [True, True]
    bob = Caller("bob", ("users",), client_name="bob-1")
    ns.chmod(ROOT, "/a/b", 0o711)                      # searchable, not readable: no summary
    with pytest.raises(errors.DfsPermissionError) as e:
        ns.content_summary(bob, "/a")
    assert e.value.path == "/a/b"


def test_a_block_reported_only_corrupt_after_a_restart_does_not_hold_safe_mode(tmp_path):
    """Replication 1, its one replica corrupt: after a restart the datanode says so in
    its heartbeat. Safe mode waited for a good report of that block for ever (every
    write refused); the block has been reported, and fsck says CORRUPT."""
    db, master, clock = str(tmp_path / "meta.db"), os.urandom(32), Clock()
    ns1 = make(SqliteStore(db), clock, master_key=master)
    nodes = register(ns1, 3)
    _, good, _ = write(ns1, "/good", [BS, 10])
    _, bad, _ = write(ns1, "/bad", [10], replication=1)
    ns1.store.close()
    ns2 = make(SqliteStore(db), clock, master_key=master)
    gs = {b["id"]: b["genstamp"] for b in ns2.store.blocks(ns2.stat(ROOT, "/good").inode_id)}
    bad_id, (bad_holder,) = bad[0][0], bad[0][1]
    for d in nodes:
        ns2.register(dn(int(d.uuid[2:]), d.rack))
        ns2.block_report(d.uuid, [(b, gs[b], BS if i == 0 else 10) for i, (b, _) in enumerate(good)])
    ns2.tick()
    assert ns2.in_safemode() and "2 of 3 blocks reported" in ns2._safemode_progress()
    holder = next(d for d in nodes if d.address == bad_holder)
    ns2.heartbeat(holder.uuid, {"remaining": 10 << 30, "xceivers": 0}, [], [], [bad_id])
    ns2.tick()
    assert not ns2.in_safemode()
    r = ns2.fsck(ROOT, "/")
    assert (r["status"], r["corrupt"]) == ("CORRUPT", 1), r


def test_complete_may_carry_the_files_mtime_and_times_must_be_finite():
    # A mount's commit at close gives the last write's time (it got the close's, and a
    # set_times after it when utimens ran meanwhile). NaN would be stored as NULL.
    ns = make()
    register(ns, 3)
    row, key, st, lb = ns.create_with_block(ROOT, "/f", overwrite=False, replication=0, block_size=BS,
                                            mode=0o644, create_parent=False)
    done = ns.complete(ROOT, row["id"], (lb.block_id, 5), [d.address for d in lb.locations], mtime=1000.25)
    assert done.mtime == ns.stat(ROOT, "/f").mtime == 1000.25
    for bad in (float("nan"), float("inf")):
        with pytest.raises(errors.InvalidArgumentError):
            ns.set_times(ROOT, "/f", bad)
    row, key, st, lb = ns.create_with_block(ROOT, "/g", overwrite=False, replication=0, block_size=BS,
                                            mode=0o644, create_parent=False)
    with pytest.raises(errors.InvalidArgumentError):
        ns.complete(ROOT, row["id"], (lb.block_id, 5), [d.address for d in lb.locations], mtime=float("nan"))
    assert ns.stat(ROOT, "/f").mtime == 1000.25


def test_fsck_details_only_of_unhealthy_files_unless_asked_and_streamed_in_batches():
    # Every file's details went in one reply: past ~150,000 files (434 bytes each with
    # 3 replicas) that passed gRPC's 64 MiB limit and `dfs fsck /` failed. Without
    # --files only files not HEALTHY are sent (and printed, as HDFS's fsck).
    from dfs.namenode import service
    from dfs.namenode.service import ClientNamenodeService
    ns = make()
    nodes = register(ns, 3)
    for i in range(5):
        write(ns, f"/d/f{i}", [10])
    _, blocks, _ = write(ns, "/d/one", [10], replication=1)
    holder = next(d for d in nodes if d.address in blocks[0][1])
    ns.bmap.mark_corrupt(blocks[0][0], holder.uuid)
    r = ns.fsck(ROOT, "/", files=False)
    assert r["status"] == "CORRUPT" and [d["path"] for d in r["details"]] == ["/d/one"], r
    assert len(ns.fsck(ROOT, "/")["details"]) == 6
    svc = ClientNamenodeService.__new__(ClientNamenodeService)
    svc.ns = ns
    full = ns.fsck(ROOT, "/")
    full["details"] = full["details"] * 1000   # 6,000 files' details
    replies = list(svc._fsck_replies(full))
    assert [len(x.details) for x in replies] == [service.FSCK_BATCH] * 3 + [0]
    assert max(x.ByteSize() for x in replies) < 4 << 20
    from dfs.client.namenode import _merged
    merged = _merged(iter(replies))
    assert (len(merged.details), merged.status, merged.files, merged.corrupt) == (6000, "CORRUPT", 6, 1)


def test_fsck_skips_files_replaced_or_removed_after_its_snapshot(tmp_path, monkeypatch):
    # fsck reads the tree from a snapshot, then checks its blocks against the block map:
    # a file overwritten or removed in between had blocks gone from the map, counted
    # missing (CORRUPT, exit 1) whenever files were being overwritten (a load pass).
    ns = make(SqliteStore(str(tmp_path / "ns.db")))
    register(ns, 3)
    for name in "fgh":
        write(ns, f"/a/{name}", [10])
    real = NameSystem.read_subtree

    def read_then_change(self, caller, path, blocks=False):
        out = real(self, caller, path, blocks)
        self.delete(ROOT, "/a/f", False)
        write(self, "/a/g", [20], overwrite=True)
        return out
    monkeypatch.setattr(NameSystem, "read_subtree", read_then_change)
    r = ns.fsck(ROOT, "/a")
    assert (r["status"], r["missing"], r["files"], r["blocks"]) == ("HEALTHY", 0, 1, 1), r


def test_a_writers_lease_is_live_for_a_lease_period_after_a_restart_against_creates_too(tmp_path):
    """Leases restart with the namenode: the lease monitor waits a whole period before
    recovering any. Another client's create checked the stored expiry instead, so right
    after a restart it removed a live writer's file (its close then failed)."""
    db = str(tmp_path / "meta.db")
    master, clock = os.urandom(32), Clock()
    ns1 = make(SqliteStore(db), clock, master_key=master)
    register(ns1, 3)
    start(ns1, "/p")
    ns1.store.close()
    clock.advance(ns1.ns.lease_limit + 5)           # down longer than the lease: it lapsed on disk
    ns2 = make(SqliteStore(db), clock, master_key=master)
    ns2.safemode_auto = False
    register(ns2, 3)
    other = Caller("root", ("supergroup",), client_name="other-client", host="10.9.9.9")
    with pytest.raises(errors.AlreadyBeingCreatedError):
        start(ns2, "/p", other)
    clock.advance(ns2.ns.lease_limit)               # its writer never renewed: recovered now
    assert start(ns2, "/p", other)["pending_name"] == "p"
