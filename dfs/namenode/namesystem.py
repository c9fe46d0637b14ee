"""NameSystem: the namenode's whole state behind one lock and one API.

Composes the namespace (durable, in the MetaStore), the block map and
membership (soft state), safemode and the per-datanode command queues. The
gRPC servicers call these methods and nothing else; background monitors call
``tick``. Every public method takes the lock; mutations return only after
``store.sync()`` made them durable (outside the lock, so concurrent
mutations share one commit).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from dfs import errors
from dfs.codec import keys
from dfs.model import DatanodeDescriptor, FileStatus
from dfs.namenode import placement
from dfs.namenode import replication as planner
from dfs.namenode.blockmap import BlockInfo, BlockMap
from dfs.namenode.membership import DEAD, LIVE, STALE, Membership
from dfs.namenode.namespace import Caller, Namespace, normalize
from dfs.namenode.store import MetaStore

log = logging.getLogger(__name__)

SAFEMODE_THRESHOLD = 0.999


@dataclass
class NodeCommands:
    invalidate: set[int] = field(default_factory=set)
    transfers: list[tuple[int, int, int, list[str]]] = field(default_factory=list)  # (block, gs, len, target addrs)
    request_report: bool = False


@dataclass
class LocatedBlock:
    block_id: int
    genstamp: int
    offset: int
    length: int
    locations: list[DatanodeDescriptor]
    corrupt: bool = False


class NameSystem:
    def __init__(self, store: MetaStore, master_key: bytes, *, superuser: str,
                 replication: int = 3, block_size: int = 64 << 20, chunk_size: int = 1 << 20,
                 heartbeat_interval: float = 3.0, dead_timeout: float = 30.0,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None):
        self.lock = threading.RLock()
        self._sync_lock = threading.Lock()
        self.store = store
        self.master_key = master_key
        self.clock = clock
        self.rng = rng or random.Random()
        self.ns = Namespace(store, superuser=superuser, default_replication=replication,
                            default_block_size=block_size, chunk_size=chunk_size)
        self.members = Membership(heartbeat_interval, dead_timeout)
        self.bmap = BlockMap()
        self.commands: dict[str, NodeCommands] = {}
        self.in_flight = planner.InFlight()
        self.repair_started: float | None = None
        self.repaired_bytes = 0.0
        self.safemode_manual = False
        self.safemode_auto = True
        self.started = clock()
        for bid, inode, gs, length, repl, complete in store.all_blocks():
            self.bmap.add_block(BlockInfo(bid, inode, gs, length, repl, bool(complete)))
        self._update_safemode()

    # -- helpers --------------------------------------------------------
    def _sync(self) -> None:
        """Commit everything applied so far; called without the namesystem lock."""
        with self._sync_lock, self.lock:
            self.store.sync()

    def _mutating(self) -> None:
        if self.in_safemode():
            raise errors.SafeModeError("namenode is in safe mode (dfs admin safemode wait)")

    def in_safemode(self) -> bool:
        return self.safemode_manual or self.safemode_auto

    def _update_safemode(self) -> None:
        if not self.safemode_auto:
            return
        total = sum(1 for b in self.bmap.blocks.values() if b.complete)
        reported = sum(1 for b, info in self.bmap.blocks.items() if info.complete and self.bmap.replicas.get(b))
        if total == 0 or reported >= SAFEMODE_THRESHOLD * total:
            self.safemode_auto = False
            log.info("leaving safe mode: %d of %d blocks reported", reported, total)

    def _invalidate_blocks(self, block_ids: list[int]) -> None:
        for b in block_ids:
            for node in self.bmap.remove_block(b):
                self._cmds(node).invalidate.add(b)

    def _cmds(self, uuid: str) -> NodeCommands:
        return self.commands.setdefault(uuid, NodeCommands())

    def _ids_for(self, addresses: list[str]) -> list[str]:
        out = []
        for a in addresses:
            d = self.members.by_address(a)
            if d is not None:
                out.append(d.uuid)
        return out

    def _mutate(self, fn):
        with self.lock:
            self._mutating()
            try:
                result = fn()
            except BaseException:
                self.store.rollback()
                raise
        self._sync()
        return result

    # -- namespace ------------------------------------------------------
    def stat(self, caller: Caller, path: str) -> FileStatus:
        with self.lock:
            return self.ns.stat(path, caller)

    def listdir(self, caller: Caller, path: str, start_after: str, limit: int):
        with self.lock:
            return self.ns.list(path, caller, start_after, limit)

    def mkdir(self, caller: Caller, path: str, parents: bool, mode: int) -> FileStatus:
        return self._mutate(lambda: self.ns.mkdir(path, caller, self.clock(), parents=parents, mode=mode))

    def delete(self, caller: Caller, path: str, recursive: bool) -> bool:
        def op():
            self._invalidate_blocks(self.ns.delete(path, caller, self.clock(), recursive=recursive))
            return True
        return self._mutate(op)

    def rename(self, caller: Caller, src: str, dst: str, overwrite: bool) -> FileStatus:
        def op():
            st, dropped = self.ns.rename(src, dst, caller, self.clock(), overwrite=overwrite)
            self._invalidate_blocks(dropped)
            return st
        return self._mutate(op)

    def chmod(self, caller: Caller, path: str, mode: int) -> FileStatus:
        return self._mutate(lambda: self.ns.chmod(path, mode, caller))

    def chown(self, caller: Caller, path: str, owner: str, group: str) -> FileStatus:
        return self._mutate(lambda: self.ns.chown(path, owner, group, caller))

    def set_times(self, caller: Caller, path: str, mtime: float) -> FileStatus:
        return self._mutate(lambda: self.ns.set_times(path, mtime, caller))

    def set_replication(self, caller: Caller, path: str, n: int) -> FileStatus:
        def op():
            st, blocks = self.ns.set_replication(path, n, caller)
            for b in blocks:
                if b in self.bmap.blocks:
                    self.bmap.blocks[b].replication = n
            return st
        return self._mutate(op)

    def content_summary(self, caller: Caller, path: str) -> dict:
        with self.lock:
            return self.ns.content_summary(path, caller)

    # -- writing --------------------------------------------------------
    def create(self, caller: Caller, path: str, *, overwrite: bool, replication: int, block_size: int,
               mode: int, create_parent: bool, complete: bool) -> tuple[dict, bytes, FileStatus | None]:
        data_key = keys.new_key()

        def op():
            row, dropped = self.ns.create(
                path, caller, self.clock(), overwrite=overwrite, replication=replication,
                block_size=block_size, mode=mode, create_parent=create_parent, complete=complete,
                key_for=lambda fid: keys.wrap(self.master_key, data_key, fid))
            self._invalidate_blocks(dropped)
            st = self.ns.status(row, normalize(path)) if complete else None
            return row, data_key, st
        return self._mutate(op)

    def _commit(self, f, block_id: int, length: int, nodes: list[str]) -> None:
        self.ns.commit_block(f, block_id, length)
        info = self.bmap.blocks.get(block_id)
        if info is not None:
            info.length, info.complete = length, True
            for uuid in self._ids_for(nodes):
                self.bmap.add_replica(block_id, uuid, info.genstamp, length)

    def add_block(self, caller: Caller, file_id: int, previous: tuple[int, int] | None,
                  previous_nodes: list[str], excluded: list[str]) -> LocatedBlock:
        def op():
            f = self.ns.open_file(file_id, caller)
            if previous is not None:
                self._commit(f, previous[0], previous[1], previous_nodes)
            now = self.clock()
            writable = self._writable(now)
            if not writable:
                raise errors.NoDatanodesError(
                    f"no live datanodes to write to ({len(self.members.live(now))} live)", f.row["pending_name"] or "")
            targets = placement.choose_targets(
                f.row["replication"], writable, self.rng, writer_host=caller.host,
                excluded=excluded, block_size=0)
            if not targets:
                raise errors.NoDatanodesError("no datanode with room left for the block",
                                              f.row["pending_name"] or "")
            block_id = self.store.next_id("block_id")
            gs = self.store.next_id("genstamp")
            ref = self.ns.add_block(f, block_id, gs, now)
            self.bmap.add_block(BlockInfo(block_id, file_id, gs, 0, f.row["replication"], complete=False))
            for t in targets:
                t.xceivers += 1  # until its next heartbeat says otherwise
            return LocatedBlock(block_id, gs, ref.offset, 0, targets)
        return self._mutate(op)

    def _writable(self, now: float) -> list[DatanodeDescriptor]:
        return [n for n in self.members.live(now, include_stale=False)
                if n.admin_state == "normal" and n.remaining > 0]

    def abandon_block(self, caller: Caller, file_id: int, block_id: int) -> None:
        def op():
            f = self.ns.open_file(file_id, caller)
            self.ns.abandon_block(f, block_id)
            self._invalidate_blocks([block_id])
        self._mutate(op)

    def abandon_file(self, caller: Caller, file_id: int) -> None:
        def op():
            self.ns.open_file(file_id, caller)
            self._invalidate_blocks(self.ns.store.delete_subtree(file_id))
        self._mutate(op)

    def complete(self, caller: Caller, file_id: int, last: tuple[int, int] | None,
                 last_nodes: list[str]) -> FileStatus:
        def op():
            f = self.ns.open_file(file_id, caller)
            if last is not None:
                self._commit(f, last[0], last[1], last_nodes)
            st, dropped = self.ns.complete(f, caller, self.clock())
            self._invalidate_blocks(dropped)
            return st
        return self._mutate(op)

    def renew_lease(self, caller: Caller) -> None:
        with self.lock:
            self.ns.renew_leases(caller.client_name, self.clock())
        self._sync()

    # -- reading --------------------------------------------------------
    def block_locations(self, caller: Caller, path: str, offset: int = 0,
                        length: int | None = None) -> tuple[FileStatus, list[LocatedBlock], bytes, int]:
        with self.lock:
            row = self.ns.resolve(path, caller)
            if row["is_dir"]:
                raise errors.DfsIsADirectoryError(path=path)
            self.ns._check(row, caller, 4, path)
            st = self.ns.status(row, normalize(path))
            key = keys.unwrap(self.master_key, row["key"], row["id"]) if row["key"] else b""
            now = self.clock()
            reader_rack = None
            for n in self.members.nodes.values():
                if n.host == caller.host:
                    reader_rack = n.rack
                    break
            stale = {n.uuid for n in self.members.nodes.values() if self.members.state(n, now) == STALE}
            live = self.members.live_ids(now)
            end = st.size if length is None else offset + length
            out, off = [], 0
            for b in self.store.blocks(row["id"]):
                blen = b["length"]
                if off < end and off + blen > offset or (blen == 0 and offset <= off < end):
                    holders = [self.members.nodes[u] for u in self.bmap.holders(b["id"])
                               if u in live and u in self.members.nodes]
                    locs = placement.sort_for_reader(holders, caller.host, reader_rack, stale, self.rng)
                    out.append(LocatedBlock(b["id"], b["genstamp"], off, blen, locs,
                                            corrupt=not holders and bool(self.bmap.corrupt.get(b["id"]))))
                off += blen
            return st, out, key, row["chunk_size"]

    def report_bad(self, block_id: int, address: str) -> None:
        with self.lock:
            d = self.members.by_address(address)
            if d is not None:
                log.warning("replica of block %d on %s reported corrupt", block_id, address)
                self.bmap.mark_corrupt(block_id, d.uuid)

    # -- datanodes ------------------------------------------------------
    def register(self, node: DatanodeDescriptor) -> None:
        with self.lock:
            self.members.register(node, self.clock())
            self.commands.pop(node.uuid, None)

    def heartbeat(self, uuid: str, stats: dict, received: list[tuple[int, int, int]],
                  deleted: list[int], corrupt: list[int]) -> tuple[bool, NodeCommands]:
        with self.lock:
            now = self.clock()
            node = self.members.heartbeat(uuid, now, **stats)
            if node is None:
                return True, NodeCommands()
            for b, gs, length in received:
                if not self.bmap.add_replica(b, uuid, gs, length) and b not in self.bmap.blocks:
                    self._cmds(uuid).invalidate.add(b)
                if self.in_flight.is_pending(b, uuid):
                    self.in_flight.done(b, uuid)
                    self.repaired_bytes += length
            for b in deleted:
                self.bmap.remove_replica(b, uuid)
            for b in corrupt:
                self.bmap.mark_corrupt(b, uuid)
            cmds = self.commands.pop(uuid, NodeCommands())
            return False, cmds

    def block_report(self, uuid: str, blocks: list[tuple[int, int, int]]) -> None:
        with self.lock:
            if uuid not in self.members.nodes:
                return
            unwanted = self.bmap.node_report(uuid, blocks)
            if unwanted:
                self._cmds(uuid).invalidate.update(unwanted)
            self.members.nodes[uuid].blocks = len(blocks)
            self._update_safemode()

    # -- background -----------------------------------------------------
    def tick(self) -> None:
        """Liveness, lease expiry, safemode and replication planning (monitor thread)."""
        with self.lock:
            now = self.clock()
            for node in self.members.newly_dead(now):
                lost = self.bmap.remove_node(node.uuid)
                self.commands.pop(node.uuid, None)
                log.warning("datanode %s declared dead; %d blocks to re-replicate", node.address, len(lost))
            self._update_safemode()
            if self.in_safemode():
                return
            for fid in self.ns.expired_leases(now):
                outcome, dropped = self.ns.recover_lease(fid, now)
                log.warning("lease on file #%d expired: %s", fid, outcome)
                self._invalidate_blocks(dropped)
            self.in_flight.expire(now)
            self._plan(now)
            self._check_decommission(now)
        self._sync()

    def _plan(self, now: float) -> None:
        live = self.members.live_ids(now)
        writable = {n.uuid for n in self._writable(now)}
        copies, drops = planner.plan(self.bmap, self.members.nodes, live, writable,
                                         self.in_flight, self.rng)
        for c in copies:
            info = self.bmap.blocks[c.block_id]
            addrs = [self.members.nodes[t].address for t in c.targets]
            self._cmds(c.source).transfers.append((c.block_id, info.genstamp, info.length, addrs))
            self.in_flight.add(c, now + max(30.0, 4 * self.members.heartbeat_interval))
            if self.repair_started is None:
                self.repair_started, self.repaired_bytes = now, 0.0
        for d in drops:
            self._cmds(d.node).invalidate.add(d.block_id)
            self.bmap.remove_replica(d.block_id, d.node)
        if not copies and not self.in_flight.targets:
            self.repair_started = None

    # -- admin ----------------------------------------------------------
    def node_state(self, node: DatanodeDescriptor, now: float) -> str:
        s = self.members.state(node, now)
        if s != DEAD and node.admin_state != "normal":
            return node.admin_state
        return s

    def report(self) -> dict:
        with self.lock:
            now = self.clock()
            live = self.members.live_ids(now)
            nblocks, under, missing, corrupt = self.bmap.counts(live)
            pending = sum(info.length * max(0, info.replication - len(self.bmap.replicas.get(b, set()) & live))
                          for b, info in self.bmap.blocks.items() if info.complete)
            rate = 0.0
            if self.repair_started is not None and now > self.repair_started:
                rate = self.repaired_bytes / (now - self.repair_started)
            files, dirs = self.store.stats()  # type: ignore[attr-defined]
            return {
                "safemode": self.in_safemode(),
                "nodes": [(n, self.node_state(n, now)) for n in self.members.nodes.values()],
                "under_replicated": under, "missing": missing, "corrupt": corrupt,
                "blocks": nblocks, "files": files, "pending_repair_bytes": float(pending),
                "repair_rate": rate,
            }

    def fsck(self, caller: Caller, path: str) -> dict:
        with self.lock:
            row = self.ns.resolve(path, caller)
            now = self.clock()
            live = self.members.live_ids(now)
            files = dirs = nblocks = under = missing = corrupt = total = 0
            details = []
            base = normalize(path).rstrip("/")
            paths = {row["id"]: base or "/"}
            for r in self.store.subtree(row["id"]):  # type: ignore[attr-defined]
                if r["id"] != row["id"]:
                    parent_path = paths.get(r["parent"], "")
                    name = r["name"] if r["name"] is not None else r["pending_name"] + " (being written)"
                    paths[r["id"]] = parent_path.rstrip("/") + "/" + name
                if r["is_dir"]:
                    dirs += 1
                    continue
                if r["state"] != "C":
                    continue
                files += 1
                total += r["length"]
                fstatus = "HEALTHY"
                blocks = []
                for b in self.store.blocks(r["id"]):
                    nblocks += 1
                    good = self.bmap.replicas.get(b["id"], set()) & live
                    bad = bool(self.bmap.corrupt.get(b["id"]))
                    if not good:
                        if bad:
                            corrupt += 1
                        else:
                            missing += 1
                        fstatus = "CORRUPT"
                    elif len(good) < r["replication"]:
                        under += 1
                        if fstatus == "HEALTHY":
                            fstatus = "DEGRADED"
                    blocks.append((b, [self.members.nodes[u] for u in good if u in self.members.nodes]))
                details.append({"path": paths[r["id"]], "length": r["length"], "replication": r["replication"],
                                "status": fstatus, "blocks": blocks})
            status = "CORRUPT" if (missing or corrupt) else "DEGRADED" if under else "HEALTHY"
            return {"status": status, "files": files, "directories": dirs, "blocks": nblocks,
                    "under_replicated": under, "missing": missing, "corrupt": corrupt,
                    "total_size": total, "details": details}

    def safemode(self, action: str) -> tuple[bool, str]:
        with self.lock:
            if action == "enter":
                self.safemode_manual = True
            elif action == "leave":
                self.safemode_manual = False
                self.safemode_auto = False
            elif action != "get":
                raise errors.InvalidArgumentError(f"unknown safemode action {action!r}")
            reason = ("entered by an administrator" if self.safemode_manual else
                      "waiting for block reports" if self.safemode_auto else "")
            return self.in_safemode(), reason

    def decommission(self, address: str) -> None:
        with self.lock:
            d = self.members.by_address(address)
            if d is None:
                raise errors.DfsFileNotFoundError("no such datanode", address)
            if d.admin_state == "normal":
                d.admin_state = "decommissioning"

    def _check_decommission(self, now: float) -> None:
        """Decommissioning nodes whose every block has enough replicas elsewhere are done."""
        live = self.members.live_ids(now)
        for d in self.members.nodes.values():
            if d.admin_state != "decommissioning":
                continue
            normal = [u for u in live if self.members.nodes[u].admin_state == "normal"]
            done = True
            for b in self.bmap.by_node.get(d.uuid, ()):
                info = self.bmap.blocks.get(b)
                if info is None or not info.complete:
                    continue
                others = [u for u in self.bmap.replicas.get(b, ()) if u in normal]
                if len(others) < min(info.replication, len(normal)):
                    done = False
                    break
            if done:
                d.admin_state = "decommissioned"


__all__ = ["NameSystem", "LocatedBlock", "NodeCommands", "LIVE", "STALE", "DEAD"]
