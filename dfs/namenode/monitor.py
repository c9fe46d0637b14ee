"""ReplicationMonitor: keeps every block at its target replication.

Events mark blocks as ``needed`` (a node died or restarted, a replica landed,
vanished or was found corrupt, a copy failed or timed out, setrep, a
decommission, a block report); a periodic scan walks the whole block map a
slice at a time as a safety net. Each ``plan`` hands those blocks to the pure
planner (replication.py), which files them in the repair queue it keeps here
and plans copies from it; ``plan`` queues the copies and deletions it decides as
heartbeat commands, and tracks the repair under way: copies in flight, bytes
delivered, the repair rate ``dfs admin report`` shows. Decommissioning nodes
whose every block has its replicas elsewhere are marked decommissioned.

It shares the NameSystem's state (block map, membership, command queues) and
its lock: every method here runs with ``NameSystem.lock`` held, except
``wait_for_work``, which the monitor thread calls between ticks.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from dfs.config import setting
from dfs.namenode import replication as planner
from dfs.namenode.membership import admin_key
from dfs.namenode.repair_progress import RepairProgress, copies_of
from dfs.namenode.repair_queue import RepairQueue

if TYPE_CHECKING:
    from dfs.namenode.namesystem import NameSystem

log = logging.getLogger(__name__)

# Replication tuning (see dfs/namenode/replication.py and docs/healing.md).
MAX_STREAMS = setting("DFS_REPLICATION_MAX_STREAMS", 4) # per source, HDFS: 2
HARD_LIMIT = setting("DFS_REPLICATION_HARD_LIMIT", 6) # endangered blocks, HDFS: 4
MAX_INCOMING = setting("DFS_REPLICATION_MAX_INCOMING", 8) # per target
MAX_INFLIGHT_BYTES = int(setting("DFS_REPLICATION_MAX_INFLIGHT_GB", 4.0) * (1 << 30))
# A node at its limit of copies takes more small ones while their bytes fit in that many
# streams of this size (replication.has_room; docs/healing.md, "Small blocks").
STREAM_BYTES = int(setting("DFS_REPLICATION_STREAM_MB", 1.0) * (1 << 20)) or None
PENDING_TIMEOUT = setting("DFS_REPLICATION_TIMEOUT", 30.0) # HDFS: 300 s
MIN_COPY_RATE = 8 << 20           # bytes/s a queued copy is allowed before it counts as late
# The periodic scan (a safety net under the event-driven plans) looks at the block map
# a slice at a time: one slice at most every SCAN_INTERVAL, SCAN_SLICE blocks each, so
# a tick holds the namesystem lock ~25 ms at most however many blocks there are (a
# whole-map scan took 12 ms per 10,000 blocks, a stall of every RPC each second).
# A pass over N blocks takes N / SCAN_SLICE seconds, then the next pass begins.
SCAN_INTERVAL = 1.0
SCAN_SLICE = 20_000
DECOMMISSION_LOG_EVERY = 60.0     # seconds between "stays decommissioning" lines per node


class ReplicationMonitor:
    def __init__(self, system: NameSystem):
        self.sys = system
        self.in_flight = planner.InFlight()
        self.needed: set[int] = set()          # blocks to look at in the next plan (events add them)
        self.queue = RepairQueue()             # blocks waiting for a copy (a free stream, target or budget)
        self.hurry = False                     # repairs under way: datanodes should beat fast
        self._work = threading.Event()         # wakes the monitor: something to plan, or to stop
        self._last_scan = float("-inf")
        self._scan: list[int] = []             # block ids the current scan pass has still to look at
        self._corrupt_seen: dict[int, float] = {}   # block -> when a replica of it was last found corrupt
        # The repair under way (None: none), for the rate and the pending bytes of the report.
        self.repair: RepairProgress | None = None
        self._sent_counter: dict[str, int] = {}     # datanode -> its cumulative repair bytes, last heard
        self.deferred: set[int] = set()        # blocks known before a restart, planned once its grace is over
        self.stuck: set[int] = set()           # blocks no node can take a copy of (until one joins or has room)
        self._decom_short: dict[str, float] = {}    # decommissioning node -> when its progress was last logged

    # -- events (NameSystem calls these under its lock) -------------------
    def want(self, blocks, *, wake: bool = True) -> None:
        """Look at ``blocks`` in the next plan (soon, with ``wake``)."""
        self.needed.update(blocks)
        if wake:
            self._work.set()

    def wake(self) -> None:
        self._work.set()

    def nodes_changed(self) -> None:
        """A node joined, came back, or has room again: the blocks that had nowhere to go
        may have somewhere now."""
        if self.stuck:
            self.want(self.stuck)
            self.stuck = set()

    def node_gone(self, uuid: str, lost) -> None:
        """A node died or restarted: its replicas (``lost``) and its copies need planning."""
        self.needed |= set(lost) | self.in_flight.drop_node(uuid)
        if self.repair is not None:
            self.repair.forget(uuid)

    def forget_block(self, block_id: int) -> None:
        """The block is gone (its file was deleted)."""
        self.in_flight.forget_block(block_id)
        self.queue.discard(block_id)

    def corrupt_found(self, block_id: int, now: float) -> None:
        self._corrupt_seen[block_id] = now
        self.want((block_id,))

    def replica_landed(self, block_id: int, uuid: str, length: int, now: float) -> bool:
        """A replica was reported received; True if it was one of our copies (a stream
        slot is free again: worth planning at once)."""
        if not self.in_flight.is_pending(block_id, uuid):
            return False
        source = self.in_flight.done(block_id, uuid)
        if self.repair is not None:
            self.repair.landed(source, length, now)
        return True

    def copy_failed(self, block_id: int, source: str, targets: list[str], now: float) -> bool:
        """A copy failed; True if the block still needs one."""
        gone = self.in_flight.failed(block_id, source, targets, now, avoid_for=2 * PENDING_TIMEOUT)
        return gone or block_id in self.sys.bmap.blocks

    def repair_progress(self, uuid: str, counter: int, now: float) -> None:
        """A datanode's cumulative count of bytes its copies delivered."""
        last = self._sent_counter.get(uuid)
        self._sent_counter[uuid] = counter
        if last is None:
            grown = 0                  # first heard of: what it counted before is no news
        elif counter >= last:
            grown = counter - last
        else:
            grown = counter            # restarted from 0 with its datanode: all of it is new
        if grown > 0 and self.repair is not None:
            self.repair.sent(uuid, grown, now, self.in_flight.bytes_from.get(uuid, 0))

    def busy(self, uuid: str) -> bool:
        """Whether ``uuid`` should beat fast: repairs anywhere, or copies of its own."""
        return bool(self.hurry or self.in_flight.per_source.get(uuid) or self.in_flight.per_target.get(uuid))

    # -- the monitor thread -----------------------------------------------
    def wait_for_work(self, timeout: float) -> None:
        """Sleep until the next tick is due: ``timeout``, or sooner when a node
        is about to be declared dead or there is new replication work."""
        s = self.sys
        with s.lock:
            due = s.members.next_death()
            now = s.clock()
        if due is not None:
            timeout = min(timeout, max(0.0, due - now) + 0.005)
        self._work.wait(timeout)
        self._work.clear()

    def run(self, now: float) -> None:
        """One round: expire late copies, plan, check decommissions."""
        for b, src, t in self.in_flight.expire(now, avoid_for=2 * PENDING_TIMEOUT):
            self.needed.add(b)
            log.warning("copy of block %d from %s to %s timed out; retrying elsewhere", b,
                        self.sys.address_of(src), self.sys.address_of(t))
        self.plan(now, self._scan_slice(now))
        self.check_decommission(now)

    def _scan_slice(self, now: float) -> list[int]:
        """The next slice of the periodic scan, if one is due (see SCAN_SLICE)."""
        if now - self._last_scan < SCAN_INTERVAL:
            return []
        self._last_scan = now
        if not self._scan:
            self._scan = list(self.sys.bmap.blocks)
            self.stuck.intersection_update(self.sys.bmap.blocks)   # forget deleted ones
        piece = self._scan[-SCAN_SLICE:]
        del self._scan[-SCAN_SLICE:]
        return piece

    def plan(self, now: float, scan: list[int] | None = None) -> None:
        """Plan copies and deletions for the blocks events touched (``needed``) and
        ``scan``, the blocks of a periodic scan slice (None: every block)."""
        s = self.sys
        live = s.members.live_ids(now)
        stale = s.members.stale_ids(now)
        blocks = None if scan is None else self.needed.union(scan)
        self.needed = set()
        # Just restarted: a datanode that has not registered yet is not lost until it has
        # been silent for the dead-node timeout since our start, like any other. Until
        # then a block known before the start may have replicas we have not heard of:
        # copying it now, then trimming the copies when that node reports (it came back a
        # few seconds late), moved all of that node's data twice -- 13 of 13 replicas
        # copied within 1.5 s of a namenode restart, and the node's own then deleted.
        # (HDFS waits out its safe-mode extension, 30 s, for the same reason.)
        last_old = s._last_block_at_start
        if last_old and now < s.started + s.members.dead_timeout:
            pool = set(s.bmap.blocks) if blocks is None else blocks
            old = {b for b in pool if b <= last_old}
            self.deferred |= old
            blocks = pool - old
        elif self.deferred:
            if blocks is not None:
                blocks |= self.deferred
            self.deferred = set()
        stuck: set[int] = set()
        copies: list[planner.Replicate] = []
        drops: list[planner.Invalidate] = []
        if blocks is None or blocks or self.queue:
            writable = {n.uuid for n in s.writable(now)}
            # A corrupt replica may go before its replacement exists (its node being the
            # only possible target) once no other replica of the block was found bad lately.
            grace = max(2.0, 3 * s.members.heartbeat_interval)
            for b in [b for b, t in self._corrupt_seen.items() if not s.bmap.corrupt.get(b) and t < now - grace]:
                del self._corrupt_seen[b]
            settled = {b for b in s.bmap.corrupt if self._corrupt_seen.get(b, 0.0) <= now - grace}
            copies, drops = planner.plan(
                s.bmap, s.members.nodes, live, writable, self.in_flight, s.rng,
                max_streams=MAX_STREAMS, hard_limit=HARD_LIMIT, max_incoming=MAX_INCOMING,
                max_bytes=MAX_INFLIGHT_BYTES, stale=stale, blocks=blocks, queue=self.queue,
                stream_bytes=STREAM_BYTES, fix_racks=True, delete_first=settled, now=now, stuck=stuck,
                leaving=s.replicas_leaving())
        # Nowhere to copy to: looked at again when the nodes change (nodes_changed), or by the scan.
        self.stuck = (self.stuck - (blocks if blocks is not None else set(s.bmap.blocks))) | stuck
        hb = s.members.heartbeat_interval
        for c in copies:
            info = s.bmap.blocks[c.block_id]
            addrs = [s.members.nodes[t].address for t in c.targets]
            s.cmds(c.source).transfers.append((c.block_id, info.genstamp, info.length, addrs))
            if c.priority == planner.ENDANGERED:
                s.cmds(c.source).urgent.add(c.block_id)
            # Late means: not done within the timeout plus the copy's time at a slow rate
            # (the source may have other copies queued ahead of it).
            slack = (self.in_flight.per_source.get(c.source, 0) + 1) * info.length * len(addrs) / MIN_COPY_RATE
            self.in_flight.add(c, now + max(PENDING_TIMEOUT, 10 * hb) + slack)
            if self.repair is None:
                self.repair = RepairProgress(now)
            log.debug("copy block %d (%s) from %s to %s", c.block_id, planner.PRIORITY_NAMES[c.priority],
                      s.address_of(c.source), ",".join(addrs))
        for d in drops:
            s.cmds(d.node).invalidate.add(d.block_id)
            s.bmap.remove_replica(d.block_id, d.node)
        if not copies and not self.in_flight.targets and not self.queue:
            self.repair = None
        self.hurry = bool(self.in_flight.targets or self.queue or stale
                          or any(c.transfers or c.invalidate for c in s.commands.values()))

    def check_decommission(self, now: float) -> None:
        """Decommissioning nodes whose every block has enough replicas elsewhere are done."""
        s = self.sys
        live = s.members.live_ids(now)
        normal = {u for u in live if s.members.nodes[u].admin_state == "normal"}
        for d in s.members.nodes.values():
            if d.admin_state != "decommissioning" or d.uuid not in live or not d.reported:
                # A dead one's replicas left the map with it: nothing says they are
                # elsewhere (it was marked decommissioned at once, and back, switched off
                # for good, it could take replicas nothing had copied with it). One that
                # has registered but not yet sent its block report holds, as far as the
                # map knows, nothing: it was declared decommissioned in that gap while
                # the only holder of its blocks (as HDFS, wait for the first report).
                continue
            # A block being written (or written, not yet committed) may have its
            # only copy here and cannot be copied yet: wait for its writer to commit
            # it (or for its lease to expire and the unfinished file to go).
            if s.bmap.writes_on(d.uuid):
                continue
            if planner.undrained(s.bmap, d.uuid, normal, count=False):
                if now - self._decom_short.get(d.uuid, float("-inf")) >= DECOMMISSION_LOG_EVERY:
                    self._decom_short[d.uuid] = now     # said once a minute, not every tick of a drain
                    log.info("datanode %s stays decommissioning: %d of its blocks have fewer than their "
                             "target replicas on the %d other nodes in service", d.address,
                             planner.undrained(s.bmap, d.uuid, normal), len(normal))
                continue
            self._decom_short.pop(d.uuid, None)
            d.admin_state = "decommissioned"
            s.store.set_meta(admin_key(d.uuid), "decommissioned")
            log.info("datanode %s is decommissioned: every block it holds has its replicas elsewhere",
                     d.address)

    # -- the report ---------------------------------------------------------
    def pending_bytes(self, live: set[str]) -> int:
        """Bytes still to copy: each repairable block's length times the replicas it lacks
        (on nodes in service; a decommissioning node's copies are being moved off), less
        what copies in flight have already delivered (see repair_progress.py)."""
        s = self.sys
        nodes = s.members.nodes
        lacking: dict[int, int] = {}     # block -> replicas it lacks
        total = 0
        for b, info in s.bmap.blocks.items():
            if not info.complete:
                continue
            good = [u for u in s.bmap.replicas.get(b, ()) if u in live]
            usable = sum(1 for u in good if nodes[u].admin_state == "normal")
            if good and usable < info.replication:
                lacking[b] = info.replication - usable
                total += info.length * lacking[b]
        if self.repair is None:
            return total
        return self.repair.pending(total, copies_of(lacking, self.in_flight.copies()))

    def repair_rate(self, now: float) -> float:
        """Bytes/s copied over the last seconds of this repair (0: none, or not known yet)."""
        return 0.0 if self.repair is None else self.repair.rate(now)
