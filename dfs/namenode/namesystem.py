"""NameSystem: the namenode's whole state behind one lock and one API.

Composes the namespace (durable, in the MetaStore), the block map and
membership (soft state), safemode, the per-datanode command queues and the
ReplicationMonitor (monitor.py), which plans repairs from the events this
class reports to it. The gRPC servicers call these methods and nothing else;
the server's monitor thread calls ``tick``. Its datanode-facing half
(registration, heartbeats, block reports) is in datanode_protocol.py and its
administration (report, fsck, safemode, decommission) in admin.py: parts of
this class, in modules of their own. Every public method takes the
lock; mutations return only after ``_sync()`` made them durable (its fsync
outside the lock, so concurrent mutations share one commit). Steps of a
write that nobody can see yet (creating a file under construction,
allocating and abandoning its blocks) are committed without an fsync:
Complete's fsync makes them durable with it (store.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import operator
import pickle
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from dfs import errors
from dfs.codec import keys
from dfs.model import DatanodeDescriptor, FileStatus
from dfs.namenode import placement
from dfs.namenode.admin import ClusterAdmin
from dfs.namenode.block_index import FileBlockIndex
from dfs.namenode.blockmap import BlockInfo, BlockMap
from dfs.namenode.datanode_protocol import LIVE_DATANODES_KEY, DatanodeProtocol, NodeCommands, older_only
from dfs.namenode.membership import DEAD, LIVE, STALE, Membership, admin_key, still_avoided
from dfs.namenode.monitor import ReplicationMonitor
from dfs.namenode.namespace import Caller, Namespace, OpenFile, normalize, summarize
from dfs.namenode.store import MetaStore, store_error
from dfs.rpc import protocol

log = logging.getLogger(__name__)

SAFEMODE_THRESHOLD = 0.999

RETRY_CACHE_SECONDS = 600.0       # how long a mutation's outcome answers a retry (as HDFS)
RETRY_CACHE_MAX = 250_000         # and at most this many (~50 MB): the newest
# A status recorded for retries: its fields in order. dataclasses.astuple deep-copies
# every field, 42 of the 250 us a small create took in the namenode with its fsync.
_STATUS_FIELDS = operator.attrgetter(*(f.name for f in dataclasses.fields(FileStatus)))


class _Leaving:
    """A read-only view for replication.plan's ``leaving``: .get(block, default)."""

    def __init__(self, commands: dict[str, NodeCommands], deleting: dict[str, set[int]]):
        self._commands, self._deleting = commands, deleting

    def get(self, block_id: int, default=()):
        out = {u for u, c in self._commands.items() if block_id in c.invalidate}
        out.update(u for u, blocks in self._deleting.items() if block_id in blocks)
        return out or default


@dataclass
class LocatedBlock:
    block_id: int
    genstamp: int
    offset: int
    length: int
    locations: list[DatanodeDescriptor]
    corrupt: bool = False


class _Tx:
    """The mutations applied since the last commit, which share the next one."""
    __slots__ = ("dropped", "error", "calls")

    def __init__(self) -> None:
        self.dropped: list[int] = []    # blocks to forget and delete once committed
        self.calls: set[tuple[str, int]] = set()   # retry cache entries written in it
        self.error: errors.MetadataStoreError | None = None   # set if the commit failed


CLUSTER_ID_KEY = "cluster_id"   # in the store's meta table


def new_cluster_id() -> str:
    return f"CID-{uuid.uuid4()}"


class NameSystem(DatanodeProtocol, ClusterAdmin):
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
        self.block_index = FileBlockIndex()   # big files' block offsets, for readers' windows
        self.commands: dict[str, NodeCommands] = {}
        # Deletions sent in a node's last heartbeat reply: done once it beats again (it
        # carries out a reply's commands before its next beat). See replicas_leaving.
        self._deleting: dict[str, set[int]] = {}
        self.monitor = ReplicationMonitor(self)
        self._clients_seen: dict[str, float] = {}  # datanode -> when it last reported client traffic
        self.safemode_manual = False
        self.safemode_auto = True
        self.started = clock()
        self.ns.started = self.started
        self._last_block_at_start = 0   # blocks up to this id were known before this start
        self._tx = _Tx()
        self.unsyncable: errors.MetadataStoreError | None = None   # see _unsyncable
        self.on_unsyncable = None       # the server's exit; None in-process (tests)
        self._next_expiry = 0.0     # when the retry cache is next pruned
        # The datanodes live when the last namenode recorded them, less decommissioned
        # ones: after a restart, blocks wait for these (_awaiting_datanodes).
        self.recorded_live: set[str] = set(json.loads(store.get_meta(LIVE_DATANODES_KEY) or "[]"))
        self.expected_at_start = {u for u in self.recorded_live
                                  if store.get_meta(admin_key(u)) not in ("decommissioning", "decommissioned")}
        for bid, inode, gs, length, repl, complete in store.all_blocks():
            self.bmap.add_block(BlockInfo(bid, inode, gs, length, repl, bool(complete)))
            self._last_block_at_start = max(self._last_block_at_start, bid)
        self._update_safemode()
        self.cluster_id = self._cluster_identity()

    def _cluster_identity(self) -> str:
        """This namespace's cluster id, made at its first start (as HDFS's clusterID). A
        datanode records it when it first registers; one that brings another's is refused,
        so a data dir of another cluster is never taken for ours (nor emptied as surplus)."""
        cid = self.store.get_meta(CLUSTER_ID_KEY)
        if not cid:
            cid = new_cluster_id()
            self.store.set_meta(CLUSTER_ID_KEY, cid)
            self.store.want_durable()
            self._sync()
        return cid

    # -- helpers --------------------------------------------------------
    def _sync(self) -> None:
        """Commit everything applied so far and make it durable; called without the
        namesystem lock. Only the COMMIT takes the lock: the WAL's fsync runs outside
        it (as HDFS's logSync), so reads and other mutations go on meanwhile, and the
        mutations applied during one fsync share the next (group commit). A reader
        may see a change whose fsync is still running; its caller has not been
        answered yet, and only a power loss, not a crash, could lose it."""
        with self._sync_lock:
            with self.lock:
                if self.unsyncable is not None:   # nothing more is committed
                    self._tx.error = self._tx.error or self.unsyncable
                    raise self.unsyncable
                tx, self._tx = self._tx, _Tx()
                try:
                    owed = self.store.commit()
                except errors.MetadataStoreError as e:
                    self._lost(tx, e)
                    raise
            try:
                if owed:
                    self.store.flush()
            except errors.MetadataStoreError as e:
                tx.error = e     # committed, but not durable: its callers are not told it is
                self._unsyncable(e)
                raise
            if tx.dropped:
                # Replicas are deleted only once the change that dropped them is on disk
                # (as HDFS removes blocks after logSync).
                with self.lock:
                    self._committed(tx)

    def _unsyncable(self, e: errors.MetadataStoreError) -> None:
        """The WAL's fsync failed after its COMMIT: changes other calls can already see
        may not be on disk, and after a failed fsync the kernel may have dropped the
        dirty pages, so a retry proves nothing (PostgreSQL's "fsyncgate"). Stop, as
        HDFS's namenode does when it cannot sync its edit log: every later mutation
        fails, no replica of a block this change dropped is deleted, and the server
        (``on_unsyncable``) exits so that a restart reads back only what the disk holds."""
        log.critical("%s: the metadata on disk may lag what was served; no further "
                     "changes are accepted", e)
        self.unsyncable = e
        if self.on_unsyncable is not None:
            self.on_unsyncable(e)

    def _abort_tx(self, e: BaseException):
        """A write outside ``_mutate`` failed in the store: the open transaction is lost."""
        tx, self._tx = self._tx, _Tx()
        self.store.rollback()
        err = e if isinstance(e, errors.MetadataStoreError) else store_error(e)
        self._lost(tx, err)
        raise err from None

    def _committed(self, tx: _Tx) -> None:
        """What a transaction's mutations do in memory once it is on disk: forget the
        blocks they dropped and tell their datanodes to delete them. Before the commit
        succeeded, a replica deleted could belong to a file a failed commit keeps; before
        its fsync, to one a power loss brings back."""
        for b in tx.dropped:
            for node in self.bmap.remove_block(b):
                self.cmds(node).invalidate.add(b)
            self.monitor.forget_block(b)

    def _lost(self, tx: _Tx, e: errors.MetadataStoreError) -> None:
        """A transaction could not be stored (the store rolled it back): fail each
        of its callers, and bring the block map back to what the store holds (blocks
        its mutations allocated, committed or re-replicated)."""
        log.error("%s: the calls waiting on this commit fail (%d block drops undone)", e,
                  len(tx.dropped))
        tx.error = e
        self.block_index.clear()
        stored = {r[0]: r for r in self.store.all_blocks()}
        for b in [b for b in self.bmap.blocks if b not in stored]:
            for node in self.bmap.remove_block(b):      # allocated by a lost call: in no file
                self.cmds(node).invalidate.add(b)
            self.monitor.forget_block(b)
        for bid, inode, gs, length, repl, complete in stored.values():
            info = self.bmap.blocks.get(bid)
            if info is None:
                self.bmap.add_block(BlockInfo(bid, inode, gs, length, repl, bool(complete)))
                continue
            info.inode, info.genstamp, info.length, info.replication = inode, gs, length, repl
            if info.complete and not complete:
                info.complete = False
                self.bmap.writing.add(bid)

    def _mutating(self) -> None:
        if self.safemode_manual:    # waiting would not help: say what does (as `safemode get`)
            raise errors.SafeModeError("namenode is in safe mode, entered by an administrator "
                                       "(dfs admin safemode leave ends it)", manual=True)
        if self.in_safemode():
            raise errors.SafeModeError("namenode is in safe mode (dfs admin safemode wait)",
                                       retry_for=self._restart_wait(self.clock()))

    def _restart_wait(self, now: float) -> float:
        """How long a client should keep retrying a SafeModeError caused by this start:
        until the dead-node timeout since the start (a datanode silent that long is
        dead, its blocks are then missing, not late), plus a second for its report.
        0 under an administrator's safe mode: that lasts until it is left."""
        if self.safemode_manual:
            return 0.0
        left = self.started + self.members.dead_timeout - now
        return left + 1.0 if left > 0 else 0.0

    def in_safemode(self) -> bool:
        return self.safemode_manual or self.safemode_auto

    def _block_reports(self) -> tuple[int, int]:
        """(complete blocks some datanode has reported, complete blocks). A block whose
        every reported replica is corrupt counts as reported: no report to come can
        mend it, and waiting for one kept the whole namespace read-only (one corrupt
        replication-1 file after a restart); fsck names it."""
        total = sum(1 for b in self.bmap.blocks.values() if b.complete)
        reported = sum(1 for b, info in self.bmap.blocks.items()
                       if info.complete and (self.bmap.replicas.get(b) or self.bmap.corrupt.get(b)))
        return reported, total

    def _update_safemode(self) -> None:
        if not self.safemode_auto:
            return
        reported, total = self._block_reports()
        if total == 0 or reported >= SAFEMODE_THRESHOLD * total:
            self.safemode_auto = False
            log.info("leaving safe mode: %d of %d blocks reported", reported, total)

    def _safemode_progress(self) -> str:
        """Why automatic safe mode goes on, in numbers: the operator sees what is missing
        (a datanode that has not come back) instead of only "waiting"."""
        reported, total = self._block_reports()
        nodes = sum(1 for n in self.members.nodes.values() if n.uuid not in self.members.dead)
        return (f"waiting for block reports: {reported} of {total} blocks reported, "
                f"{SAFEMODE_THRESHOLD:.1%} needed; {nodes} datanode{'s' * (nodes != 1)} registered")

    def _invalidate_blocks(self, block_ids: list[int]) -> None:
        """Drop blocks the open transaction removed: done once it is committed (_committed)."""
        self._tx.dropped.extend(block_ids)

    def cmds(self, uuid: str) -> NodeCommands:
        return self.commands.setdefault(uuid, NodeCommands())

    def _forget_commands(self, uuid: str) -> None:
        """A node died or started afresh: what it was told, or is to be told, is void."""
        self.commands.pop(uuid, None)
        self._deleting.pop(uuid, None)

    def replicas_leaving(self) -> _Leaving:
        """block -> nodes to delete their replica of it, or told to and not beaten since
        (looked up per block: the queues may hold a mass delete's many blocks)."""
        return _Leaving(self.commands, self._deleting)

    def _ids_for(self, addresses: list[str]) -> list[str]:
        out = []
        for a in addresses:
            d = self.members.by_address(a)
            if d is not None:
                out.append(d.uuid)
        return out

    def _mutate(self, fn, durable: bool = True, caller: Caller | None = None,
                key_at: int | None = None):
        """Apply ``fn`` as one mutation, commit it (shared with others) and return its
        result. With a ``caller`` whose call has an id, the outcome is recorded in the
        same transaction (the retry cache) and a retry of that call gets it back instead
        of running ``fn`` again; ``key_at``: the result's item that is a file's data key,
        recorded only wrapped (in the file's row, the result's first item)."""
        call = (caller.client_name, caller.call_id) if caller is not None and caller.call_id \
            and caller.client_name else None
        if self.unsyncable is not None:
            raise self.unsyncable
        with self.lock:
            tx = self._tx
            done = self.store.recorded_call(*call) if call is not None else None
            if done is not None:
                log.info("call %d of %s retried: answered with its recorded outcome",
                         call[1], call[0])
                result = self._replayed(done, key_at)
                pending = call in tx.calls     # recorded in the transaction not yet committed
            else:
                result, pending = self._apply(fn, tx, durable, call, key_at), True
        try:
            self._sync()   # after a replay too: the first call's fsync may still be running
        except errors.MetadataStoreError:
            pass   # whose transaction failed: ours (tx.error), or one before it
        if pending and tx.error is not None:
            raise tx.error
        return result

    def _apply(self, fn, tx: _Tx, durable: bool, call: tuple[str, int] | None, key_at: int | None):
        """Run ``fn`` as a savepoint of the open transaction ``tx`` (under the lock)."""
        self._mutating()
        ndropped = len(tx.dropped)
        self.store.begin_op()
        try:
            result = fn()
            if call is not None:
                self.store.record_call(*call, self.clock(), self._recorded(result, key_at))
            self.store.end_op()
        except BaseException as e:
            del tx.dropped[ndropped:]
            if not self.store.undo_op():   # this call's writes only: others await the commit
                # SQLite rolled back the whole transaction (a full disk): all its calls fail.
                err = e if isinstance(e, errors.MetadataStoreError) else store_error(e)
                self._tx = _Tx()
                self._lost(tx, err)
                raise err from None
            if isinstance(e, sqlite3.Error):
                raise store_error(e) from None
            raise
        if call is not None:
            tx.calls.add(call)
        if durable:
            self.store.want_durable()
        return result

    # An outcome is recorded compactly (a small file writes two a second for ten minutes,
    # ~200 bytes each): a status as its fields, a file's row as its id (read again when
    # replayed: what a reply takes from it does not change), a block with its targets,
    # a data key not at all (it is in the row, wrapped).
    def _recorded(self, result, key_at: int | None) -> bytes:
        def enc(v):
            if isinstance(v, FileStatus):
                return ("S", _STATUS_FIELDS(v))
            if isinstance(v, LocatedBlock):
                return ("B", v.block_id, v.genstamp, v.offset, v.length,
                        tuple((d.uuid, d.address, d.rack) for d in v.locations), v.corrupt)
            if isinstance(v, dict):
                return ("R", v["id"])
            return v
        if isinstance(result, tuple):
            result = tuple(None if i == key_at else enc(v) for i, v in enumerate(result))
            return pickle.dumps(result, protocol=5)
        return pickle.dumps(enc(result), protocol=5)

    def _replayed(self, outcome: bytes, key_at: int | None):
        def dec(v):
            if isinstance(v, tuple) and v and v[0] == "S":
                return FileStatus(*v[1])
            if isinstance(v, tuple) and v and v[0] == "B":
                # Its targets, also those not registered again yet (just restarted): the
                # writer needs only their addresses.
                nodes = [self.members.nodes.get(u) or DatanodeDescriptor(uuid=u, address=a, rack=r)
                         for u, a, r in v[5]]
                return LocatedBlock(v[1], v[2], v[3], v[4], nodes, v[6])
            if isinstance(v, tuple) and v and v[0] == "R":
                row = self.store.get(v[1])
                if row is None:
                    raise errors.DfsFileNotFoundError(
                        "created, then removed before the retry of its creation")
                return row
            return v
        result = pickle.loads(outcome)
        if key_at is None:
            return dec(result)
        result = tuple(dec(v) for v in result)
        row = result[0]
        key = keys.unwrap(self.master_key, row["key"], row["id"])
        return (*result[:key_at], key, *result[key_at + 1:])

    # -- namespace ------------------------------------------------------
    def stat(self, caller: Caller, path: str) -> FileStatus:
        with self.lock:
            return self.ns.stat(path, caller)

    def listdir(self, caller: Caller, path: str, start_after: str, limit: int):
        with self.lock:
            return self.ns.list(path, caller, start_after, limit)

    def mkdir(self, caller: Caller, path: str, parents: bool, mode: int) -> FileStatus:
        return self._mutate(
            lambda: self.ns.mkdir(path, caller, self.clock(), parents=parents, mode=mode), caller=caller)

    def delete(self, caller: Caller, path: str, recursive: bool, files_only: bool = False,
               inode_id: int = 0) -> bool:
        def op():
            self._invalidate_blocks(self.ns.delete(path, caller, self.clock(), recursive=recursive,
                                                   files_only=files_only, inode_id=inode_id))
            return True
        return self._mutate(op, caller=caller)

    def rename(self, caller: Caller, src: str, dst: str, overwrite: bool) -> FileStatus:
        def op():
            st, dropped = self.ns.rename(src, dst, caller, self.clock(), overwrite=overwrite)
            self._invalidate_blocks(dropped)
            return st
        return self._mutate(op, caller=caller)

    def chmod(self, caller: Caller, path: str, mode: int) -> FileStatus:
        return self._mutate(lambda: self.ns.chmod(path, mode, caller))

    def chown(self, caller: Caller, path: str, owner: str, group: str) -> FileStatus:
        return self._mutate(lambda: self.ns.chown(path, owner, group, caller))

    def set_times(self, caller: Caller, path: str, mtime: float) -> FileStatus:
        return self._mutate(lambda: self.ns.set_times(path, mtime, caller))

    def set_replication(self, caller: Caller, path: str, n: int) -> FileStatus:
        def op():
            st, blocks = self.ns.set_replication(path, n, caller)
            self._retarget(blocks, n)
            return st
        return self._mutate(op)

    def _retarget(self, blocks: list[int], n: int) -> None:
        """``blocks``' file now wants ``n`` replicas: the monitor adds or trims them."""
        known = [b for b in blocks if b in self.bmap.blocks]
        for b in known:
            self.bmap.blocks[b].replication = n
        self.monitor.want(known)

    def content_summary(self, caller: Caller, path: str) -> dict:
        _, rows, _ = self.read_subtree(caller, path)
        return summarize(rows)

    def read_subtree(self, caller: Caller, path: str, blocks: bool = False):
        """-> (``path``'s inode id, its subtree's rows, a function from a file id to its
        blocks (read only with ``blocks``)), after the caller's permission over all of it is checked. Read from a
        snapshot of the committed namespace, without the lock: a tree of a million
        entries takes seconds to read, and every other call waited for the lock past
        its 10 s deadline ("cannot reach namenode")."""
        with self.lock:
            root = self.ns.resolve(path, caller)
            snap = self.store.snapshot()  # type: ignore[attr-defined]
            if snap is None:   # an in-memory store (tests): read under the lock
                rows = self.store.subtree(root["id"])  # type: ignore[attr-defined]
                self.ns.check_subtree(rows, caller)
                return root["id"], rows, self.store.blocks  # type: ignore[attr-defined]
        try:
            with snap:
                rows = snap.subtree(root["id"])
                by_file = snap.blocks_under(root["id"]) if blocks else {}
        except errors.MetadataStoreError as e:   # the caller hears it; the log says it once
            log.error("reading the tree under %s: %s", normalize(path), e)
            raise
        with self.lock:   # its error names a path: read through the store
            self.ns.check_subtree(rows, caller)
        return root["id"], rows, lambda file_id: by_file.get(file_id, [])

    # -- writing --------------------------------------------------------
    def create(self, caller: Caller, path: str, *, overwrite: bool, replication: int, block_size: int,
               mode: int, create_parent: bool, complete: bool, replaces: int = 0,
               keep_attributes: bool = False) -> tuple[dict, bytes, FileStatus | None]:
        data_key = keys.new_key()

        def op():
            row, dropped = self.ns.create(
                path, caller, self.clock(), overwrite=overwrite, replication=replication,
                block_size=block_size, mode=mode, create_parent=create_parent, complete=complete,
                replaces=replaces, keep_attributes=keep_attributes,
                key_for=lambda fid: keys.wrap(self.master_key, data_key, fid))
            self._invalidate_blocks(dropped)
            if complete or dropped:
                self.store.want_durable()   # visible at once
            st = self.ns.status(row, normalize(path)) if complete else None
            return row, data_key, st
        return self._mutate(op, durable=False, caller=caller, key_at=1)

    def create_with_block(self, caller: Caller, path: str, *, overwrite: bool, replication: int,
                          block_size: int, mode: int, create_parent: bool, empty_first: bool = False,
                          replaces: int = 0, keep_attributes: bool = False
                          ) -> tuple[dict, bytes, FileStatus | None, LocatedBlock]:
        """Create ``path`` for writing and allocate its first block in one transaction
        (a small file is then this, one pipeline and Complete). With ``empty_first``
        ``path`` first appears as an empty complete file, durable at once (a FUSE
        create: the name exists while the file is written), and what is opened is
        its next version; the status returned is the empty file's. If no block can
        be allocated nothing is created. -> (row, data key, status, first block)."""
        data_key, empty_key = keys.new_key(), keys.new_key()

        def op():
            now = self.clock()
            common = dict(replication=replication, block_size=block_size, mode=mode)
            st, dropped = None, []
            if empty_first:
                empty, dropped = self.ns.create(
                    path, caller, now, overwrite=overwrite, create_parent=create_parent, complete=True,
                    key_for=lambda fid: keys.wrap(self.master_key, empty_key, fid), **common)
                st = self.ns.status(empty, normalize(path))
                self.store.want_durable()   # visible at once
            row, more = self.ns.create(
                path, caller, now, overwrite=overwrite or empty_first, create_parent=create_parent,
                complete=False, replaces=0 if empty_first else replaces, keep_attributes=keep_attributes,
                key_for=lambda fid: keys.wrap(self.master_key, data_key, fid), **common)
            lb = self._allocate(OpenFile(row), caller, [], now, path=normalize(path))
            self._invalidate_blocks(dropped + more)   # in memory: only once nothing can fail
            return row, data_key, st, lb
        return self._mutate(op, durable=False, caller=caller, key_at=1)

    def _commit(self, f, block_id: int, length: int, nodes: list[str]) -> None:
        self.ns.commit_block(f, block_id, length)
        info = self.bmap.commit(block_id, length)
        if info is not None:
            for uuid in self._ids_for(nodes):
                self.bmap.add_replica(block_id, uuid, info.genstamp, length)
            nodes_in_service = [u for u in self.bmap.replicas.get(block_id, ())
                                if u in self.members.nodes and self.members.nodes[u].admin_state == "normal"]
            if len(nodes_in_service) < info.replication:
                # A pipeline node failed, or one is leaving (it was being written on a
                # node being decommissioned): repair it soon.
                self.monitor.want((block_id,))

    def add_block(self, caller: Caller, file_id: int, previous: tuple[int, int] | None,
                  previous_nodes: list[str], excluded: list[str], draining: int = 0,
                  excluded_age: list[float] = ()) -> LocatedBlock:
        """Allocate the file's next block. ``previous`` is committed first; ``draining``
        names the last block when its writer has sent it but not yet read its
        acknowledgement (the writer streams the next block meanwhile): it stays
        uncommitted until a later AddBlock or Complete commits it. ``excluded``: nodes
        the writer gave up on, ``excluded_age`` seconds ago (see ``still_avoided``)."""
        def op():
            now = self.clock()
            f = self.ns.open_file(file_id, caller)
            last = f.blocks[-1] if f.blocks else None
            if (last is not None and not last.committed and last.block_id != draining
                    and (previous is None or previous[0] != last.block_id)):
                # Allocated by an AddBlock whose reply never reached the writer (the
                # namenode died after committing it): the writer is retrying; drop it.
                orphan = f.blocks[-1].block_id
                self.ns.abandon_block(f, orphan)
                self._invalidate_blocks([orphan])
            if previous is not None:
                self._commit(f, previous[0], previous[1], previous_nodes)
            if draining and not (f.blocks and f.blocks[-1].block_id == draining):
                raise errors.InvalidArgumentError(f"block {draining} is not the file's last block")
            avoid = still_avoided(excluded, excluded_age, self.members.nodes.values(), now)
            return self._allocate(f, caller, avoid, now, draining)
        # In the retry cache: a retry of an AddBlock whose reply was lost (the namenode
        # died after committing it) gets the same block, as HDFS's retried addBlock does.
        return self._mutate(op, durable=False, caller=caller)

    def _allocate(self, f: OpenFile, caller: Caller, excluded: list[str], now: float,
                  draining: int = 0, path: str = "") -> LocatedBlock:
        """Choose targets for ``f``'s next block and record it (inside a mutation).
        ``path``: the file's, for errors (its pending name is only the last component)."""
        file_id = f.row["id"]
        name = path or f.row["pending_name"] or ""
        writable = self.writable(now)
        if self._awaiting_datanodes(now, len(writable), f.row["replication"]):
            raise errors.SafeModeError("namenode restarted: waiting for the datanodes to register",
                                       name, retry_for=self._restart_wait(now))
        if not writable:
            live = [n for n in self.members.live(now) if n.admin_state == "normal"]
            full = [n for n in live if not n.storage_failed]
            failed = len(live) - len(full)
            also = f" ({failed} more with a dead data dir)" if failed else ""
            if full:  # every one reports no room left: the one case that is ENOSPC
                raise errors.NoSpaceError(f"no space left: all {len(full)} live datanodes are full{also}",
                                          name)
            alive = self.members.live(now)
            leaving = sum(1 for n in alive if n.admin_state != "normal")
            why = [f"{leaving} of them decommissioning or decommissioned"] if leaving else []
            why += [f"{failed} with a dead data dir"] if failed else []
            raise errors.NoDatanodesError(
                f"no live datanodes to write to ({', '.join([f'{len(alive)} live', *why])})", name)
        def choose(pool: list[DatanodeDescriptor]) -> list[DatanodeDescriptor]:
            return placement.choose_targets(f.row["replication"], pool, self.rng, writer_host=caller.host,
                                            excluded=excluded, block_size=0)
        # The same nodes as ``writable`` when all of them take writes (the usual case):
        # only a cluster with an older datanode scans them again.
        current = writable if all(protocol.takes_writes(n.protocol) for n in writable) \
            else self.writable(now, protocol.takes_writes)
        targets = choose(current)
        if not targets:
            # A datanode that runs an older dfs only when no upgraded one can take the block:
            # one that said no protocol number may speak enough (protocol.may_take_writes).
            targets = choose(self.writable(now, protocol.may_take_writes))
        if not targets and not current:
            raise errors.NoDatanodesError(older_only(writable), name)
        if not targets:
            # Every writable node is one this writer gave up on and that has not restarted
            # since: name them, and which are silent now (frozen); the others are up, just
            # not for this write (the writer adds what any of them said when it refused).
            failed = sorted({w.address for w in writable} & set(excluded))
            silent = {w.address: self.members.silence(w, now) for w in writable
                      if w.address in failed and self.members.state(w, now) != LIVE}
            raise errors.no_datanode_left(failed, path=f.row["pending_name"] or "", silent=silent)
        block_id = self.store.next_id("block_id")
        gs = self.store.next_id("genstamp")
        ref = self.ns.add_block(f, block_id, gs, now, draining=draining)
        self.bmap.add_block(BlockInfo(block_id, file_id, gs, 0, f.row["replication"], complete=False,
                                      pipeline=frozenset(t.uuid for t in targets)))
        for t in targets:
            t.xceivers += 1  # until its next heartbeat says otherwise
        return LocatedBlock(block_id, gs, ref.offset, 0, targets)

    def _awaiting_datanodes(self, now: float, writable: int, replication: int) -> bool:
        """Just restarted, and fewer nodes to write to than a block wants while datanodes
        live before the restart have not registered again: they are on their way (each
        within a heartbeat or two). A writer retries this (as safe mode) instead of
        having its block placed on the first node back, acknowledged with one replica
        while the others were only late (the one node's block report ends safe mode
        in a small cluster). Past the dead-node timeout, or once they are back, a
        block goes on whatever is live (SPEC §6). With no record (a store from before
        it), only a cluster with blocks and no datanode yet waits; a new, empty one
        fails at once."""
        if now - self.started >= self.members.dead_timeout:
            return False
        missing = self.expected_at_start - self.members.nodes.keys()
        if missing:
            return writable < min(replication, len(self.expected_at_start))
        return not self.members.nodes and not self.recorded_live and bool(self.bmap.blocks)

    def writable(self, now: float, speaks: Callable[[int], bool] | None = None) -> list[DatanodeDescriptor]:
        """Nodes that may take new replicas: fresh ones; stale ones only when no
        fresh node is left (a busy cluster whose heartbeats lag must still take
        writes; a truly dead node is dropped after the dead-node timeout). Never
        one whose data dir is dead: it beats on, but stores nothing until a restart.
        ``speaks``: only nodes whose data-transfer protocol it accepts (a client's
        write pipeline: dfs/rpc/protocol.py); repair copies go to any."""
        usable = [n for n in self.members.live(now)
                  if n.admin_state == "normal" and n.remaining > 0 and not n.storage_failed
                  and (speaks is None or speaks(n.protocol))]
        fresh = [n for n in usable if self.members.state(n, now) == LIVE]
        return fresh or usable

    def abandon_block(self, caller: Caller, file_id: int, block_id: int) -> None:
        def op():
            f = self.ns.open_file(file_id, caller)
            self.ns.abandon_block(f, block_id)
            self._invalidate_blocks([block_id])
        self._mutate(op, durable=False, caller=caller)

    def abandon_file(self, caller: Caller, file_id: int) -> None:
        def op():
            self.ns.open_file(file_id, caller)
            self._invalidate_blocks(self.ns.store.delete_subtree(file_id))
        self._mutate(op, durable=False, caller=caller)

    def complete(self, caller: Caller, file_id: int, last: tuple[int, int] | None,
                 last_nodes: list[str], previous: tuple[int, int] | None = None,
                 previous_nodes: list[str] = (), mtime: float | None = None,
                 keep_attributes: bool = False) -> FileStatus:
        def op():
            again = self.ns.completed_already(file_id, last, previous)
            if again is not None:   # a retry without a call id (none of our clients sends one)
                return again
            f = self.ns.open_file(file_id, caller)
            if previous is not None:
                self._commit(f, previous[0], previous[1], list(previous_nodes))
            if last is not None:
                self._commit(f, last[0], last[1], last_nodes)
            st, dropped = self.ns.complete(f, caller, self.clock(), mtime=mtime,
                                           keep_attributes=keep_attributes)
            self._invalidate_blocks(dropped)
            if st.replication != f.row["replication"]:   # kept: a setrep while it was written
                self._retarget([b["id"] for b in self.store.blocks(file_id)], st.replication)
            return st
        return self._mutate(op, caller=caller)

    def renew_lease(self, caller: Caller) -> None:
        with self.lock:
            try:
                self.ns.renew_leases(caller.client_name, self.clock())
            except sqlite3.Error as e:
                self._abort_tx(e)
        self._sync()

    # -- reading --------------------------------------------------------
    def block_locations(self, caller: Caller, path: str, offset: int = 0, length: int | None = None,
                        stable: bool = False, ahead: int = 0,
                        inode_id: int = 0) -> tuple[FileStatus, list[LocatedBlock], bytes, int]:
        """The blocks overlapping [offset, offset+length) (to the end without ``length``),
        then up to ``ahead`` more (a reader's read-ahead). With ``inode_id``, of that file
        wherever it is now (a reader's later windows: it may have been renamed)."""
        with self.lock:
            if inode_id:
                row = self.ns.readable_file(inode_id, caller, path)
            else:
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
            # Nodes leaving service come last; a decommissioned node's copies are
            # offered only when no node in service has one.
            leaving = {n.uuid for n in self.members.nodes.values() if n.admin_state != "normal"}
            live = self.members.live_ids(now)
            end = st.size if length is None else offset + length
            out = []
            for bid, gs, off, blen in self.block_index.window(row["id"], self.store.blocks, offset, end, ahead):
                holders = [self.members.nodes[u] for u in self.bmap.holders(bid)
                           if u in live and u in self.members.nodes]
                if any(h.admin_state == "normal" for h in holders):
                    holders = [h for h in holders if h.admin_state != "decommissioned"]
                if not holders and self._not_reported_yet(bid, now):
                    # Just restarted: its datanodes have not re-registered or reported
                    # yet. A reader retries this (safe mode) instead of failing at once.
                    raise errors.SafeModeError(
                        f"namenode restarted: no datanode has reported block {bid} yet", path,
                        retry_for=self._restart_wait(now))
                locs = placement.sort_for_reader(holders, caller.host, reader_rack, stale | leaving,
                                                 bid if stable else self.rng)
                out.append(LocatedBlock(bid, gs, off, blen, locs,
                                        corrupt=not holders and bool(self.bmap.corrupt.get(bid))))
            return st, out, key, row["chunk_size"]

    def _not_reported_yet(self, block_id: int, now: float) -> bool:
        """A block known before this start that no datanode has reported since, while
        reports may still come: in safe mode, or within the dead-node timeout of the
        start (a node silent that long would be declared dead anyway). Not a block
        whose replicas were all found corrupt: that one is missing, not late."""
        return (block_id <= self._last_block_at_start and not self.bmap.corrupt.get(block_id)
                and not self.bmap.replicas.get(block_id)
                and (self.safemode_auto or now - self.started < self.members.dead_timeout))

    def report_bad(self, caller: Caller, block_id: int, address: str) -> None:
        with self.lock:
            self.ns.check_block_readable(block_id, caller)
            d = self.members.by_address(address)
            if d is not None:
                log.warning("replica of block %d on %s reported corrupt", block_id, address)
                self.bmap.mark_corrupt(block_id, d.uuid)
                self.monitor.corrupt_found(block_id, self.clock())

    # -- background -----------------------------------------------------
    def wait_for_work(self, timeout: float) -> None:
        self.monitor.wait_for_work(timeout)

    def wake(self) -> None:
        self.monitor.wake()

    def tick(self) -> None:
        """Liveness, lease expiry, safemode, then a ReplicationMonitor round (monitor thread)."""
        with self.lock:
            now = self.clock()
            paused = self.members.witness(now)
            if paused:
                # Measured between monitor rounds: a stopped process, but also one starved
                # of CPU or whose lock a big block report held (a scale pass saw both).
                log.warning("namenode was not running for %.1fs (paused, starved of CPU, or busy under "
                            "its lock): datanodes' silence during it is not held against them", paused)
            for node in self.members.newly_dead(now):
                self._record_live(node.uuid, False)    # not waited for after a restart
                lost = self.bmap.remove_node(node.uuid)
                self._forget_commands(node.uuid)
                self.monitor.node_gone(node.uuid, lost)
                log.warning("datanode %s declared dead (silent %.1fs); %d of its blocks lost a replica",
                            node.address, now - node.last_heartbeat, len(lost))
            self._update_safemode()
            if self.in_safemode():
                return
            try:
                # Leases restart with the namenode (as HDFS's): a writer gets a whole lease
                # period from our start to renew, however long ago its last renewal was.
                leases_due = now >= self.started + self.ns.lease_limit
                for fid in self.ns.expired_leases(now) if leases_due else ():
                    outcome, dropped = self.ns.recover_lease(fid, now)
                    log.warning("lease on file #%d expired: %s", fid, outcome)
                    self._invalidate_blocks(dropped)
                if now >= self._next_expiry:
                    self._next_expiry = now + 10.0
                    self.store.expire_calls(now - RETRY_CACHE_SECONDS, RETRY_CACHE_MAX)
            except sqlite3.Error as e:
                self._abort_tx(e)
            self.monitor.run(now)
        self._sync()

    def address_of(self, uuid: str) -> str:
        n = self.members.nodes.get(uuid)
        return n.address if n is not None else uuid or "?"


__all__ = ["NameSystem", "LocatedBlock", "NodeCommands", "LIVE", "STALE", "DEAD"]
