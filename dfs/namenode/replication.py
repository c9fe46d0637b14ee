"""Replication planning: what to copy and what to delete. Pure: no I/O.

``plan`` looks at the block map and membership and returns commands; the
namenode queues them per datanode and hands them out in heartbeat replies.
The blocks waiting for a copy stay in a RepairQueue (repair_queue.py) kept by
the caller, so a plan looks again only at the blocks that changed and at the
queued ones it gets to before the nodes or the budget run out.

Priorities (HDFS's redundancy queues, lowest number first):

  0 ENDANGERED   one good replica left, or good ones only on decommissioning nodes
  1 VERY_UNDER   usable replicas x 3 < target
  2 UNDER        any other block below its target
  3 MISPLACED    enough replicas, but all on one rack while another rack could
                 take one (only with ``fix_racks``): one extra copy goes to
                 another rack, then the excess trimming drops one from the
                 crowded rack

Blocks whose every replica is corrupt, or that have no live replica at all,
cannot be planned (nothing to copy from); fsck reports them.

Throttles: each source runs at most ``max_streams`` copies at once
(``hard_limit`` for ENDANGERED blocks; more of small blocks, see ``has_room``),
each target receives at most ``max_incoming``, and ``max_bytes`` caps the bytes in flight cluster-wide so
a big failure does not take every disk and link away from clients. A copy
that does not finish by its deadline, or that its source reports failed, is
forgotten; the source/target pair is then avoided for that block for a while
so the retry goes to another source or target when there is one.

Deletions: a surplus replica (a node came back, or the target was lowered)
is trimmed only while no copy of the block is in flight and none of its
holders is stale, and never below the target. A corrupt replica is deleted
once the good ones are back to target (replaced first, then deleted), or at
once when its node is the only place a replacement could go.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dfs.model import DatanodeDescriptor
from dfs.namenode import placement
from dfs.namenode.blockmap import BlockInfo, BlockMap
from dfs.namenode.repair_queue import Key, RepairQueue

ENDANGERED, VERY_UNDER, UNDER, MISPLACED = 0, 1, 2, 3
PRIORITY_NAMES = ("endangered", "very-under-replicated", "under-replicated", "mis-placed")
# See has_room: a node busy with its copies' limit takes more small ones, up to this many a stream.
SMALL_COPIES_PER_STREAM = 16
# Blocks of one repair-queue bucket a plan looks at in vain before it goes on to the next
# (HDFS bounds each pass to 2 blocks per live node). A miss costs ~10 us under the lock.
MAX_MISSES = 256


@dataclass(frozen=True)
class Replicate:
    block_id: int
    source: str            # uuid
    targets: tuple[str, ...]  # uuids
    priority: int = UNDER
    length: int = 0


@dataclass(frozen=True)
class Invalidate:
    block_id: int
    node: str              # uuid


@dataclass
class InFlight:
    """Copies scheduled but not yet reported done: block -> {target uuid: deadline}.

    A source's stream slot is held per (block, source) until every target of
    that block it serves has landed, failed or expired."""

    targets: dict[int, dict[str, float]] = field(default_factory=dict)
    per_source: dict[str, int] = field(default_factory=dict)
    sources: dict[tuple[int, str], str] = field(default_factory=dict)     # (block, target) -> source
    per_target: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    bytes_from: dict[str, int] = field(default_factory=dict)                # source -> bytes of its copies
    bytes_to: dict[str, int] = field(default_factory=dict)                  # target -> bytes of its copies
    avoid: dict[int, dict[str, float]] = field(default_factory=dict)       # block -> {node: until}
    _serving: dict[tuple[int, str], int] = field(default_factory=dict)     # (block, source) -> targets
    _lengths: dict[tuple[int, str], int] = field(default_factory=dict)     # (block, target) -> bytes

    def add(self, r: Replicate, deadline: float, length: int | None = None) -> None:
        length = r.length if length is None else length
        for t in r.targets:
            if self.is_pending(r.block_id, t):
                self.done(r.block_id, t)
        key = (r.block_id, r.source)
        if not self._serving.get(key):
            self.per_source[r.source] = self.per_source.get(r.source, 0) + 1
        self._serving[key] = self._serving.get(key, 0) + len(r.targets)
        for t in r.targets:
            self.targets.setdefault(r.block_id, {})[t] = deadline
            self.sources[(r.block_id, t)] = r.source
            self.per_target[t] = self.per_target.get(t, 0) + 1
            self._lengths[(r.block_id, t)] = length
            self.bytes += length
            self.bytes_from[r.source] = self.bytes_from.get(r.source, 0) + length
            self.bytes_to[t] = self.bytes_to.get(t, 0) + length

    def done(self, block_id: int, target: str) -> str | None:
        """The copy of ``block_id`` to ``target`` is over (landed or given up). Returns its source."""
        t = self.targets.get(block_id)
        if t is None or target not in t:
            return None
        del t[target]
        if not t:
            del self.targets[block_id]
        self.per_target[target] = max(0, self.per_target.get(target, 0) - 1)
        length = self._lengths.pop((block_id, target), 0)
        self.bytes = max(0, self.bytes - length)
        _take(self.bytes_to, target, length)
        src = self.sources.pop((block_id, target), None)
        if src is not None:
            _take(self.bytes_from, src, length)
            key = (block_id, src)
            left = self._serving.get(key, 1) - 1
            if left > 0:
                self._serving[key] = left
            else:
                self._serving.pop(key, None)
                self.per_source[src] = max(0, self.per_source.get(src, 0) - 1)
        return src

    def _avoid(self, block_id: int, nodes: Iterable[str], until: float) -> None:
        a = self.avoid.setdefault(block_id, {})
        for n in nodes:
            a[n] = max(a.get(n, 0.0), until)

    def expire(self, now: float, avoid_for: float = 0.0) -> list[tuple[int, str, str]]:
        """Forget copies past their deadline; returns them as (block, source, target)."""
        out = []
        for b in list(self.targets):
            for t, dl in list(self.targets[b].items()):
                if dl < now:
                    src = self.done(b, t)
                    out.append((b, src or "", t))
                    if avoid_for:
                        self._avoid(b, [x for x in (src, t) if x], now + avoid_for)
        for b in [b for b, a in self.avoid.items() if all(until <= now for until in a.values())]:
            del self.avoid[b]
        return out

    def failed(self, block_id: int, source: str, targets: Iterable[str] = (), now: float = 0.0,
               avoid_for: float = 0.0) -> list[str]:
        """``source`` reports it could not copy ``block_id`` (to ``targets``, or to all it was given).

        Returns the targets given up."""
        wanted = set(targets)
        gone = [t for t in list(self.targets.get(block_id, {}))
                if self.sources.get((block_id, t)) == source and (not wanted or t in wanted)]
        for t in gone:
            self.done(block_id, t)
        if avoid_for:
            self._avoid(block_id, gone or wanted, now + avoid_for)
        return gone

    def drop_node(self, node: str) -> set[int]:
        """Forget every copy from or to ``node`` (it died or restarted). Returns those blocks."""
        hit = set()
        for (b, t), s in list(self.sources.items()):
            if node in (s, t):
                self.done(b, t)
                hit.add(b)
        return hit

    def forget_block(self, block_id: int) -> None:
        """The block is gone (its file was deleted): its copies no longer count."""
        for t in list(self.targets.get(block_id, ())):
            self.done(block_id, t)
        self.avoid.pop(block_id, None)

    def copies(self) -> list[tuple[int, str, int]]:
        """Every copy in flight, as (block, source, length): one per target."""
        return [(b, s, self._lengths.get((b, t), 0)) for (b, t), s in self.sources.items()]

    def is_pending(self, block_id: int, target: str) -> bool:
        return target in self.targets.get(block_id, {})

    def pending(self, block_id: int) -> int:
        return len(self.targets.get(block_id, ()))

    def avoided(self, block_id: int, now: float) -> set[str]:
        a = self.avoid.get(block_id)
        return {n for n, until in a.items() if until > now} if a else set()


def _take(counts: dict[str, int], node: str, n: int) -> None:
    left = counts.get(node, 0) - n
    if left > 0:
        counts[node] = left
    else:
        counts.pop(node, None)


def undrained(bmap: BlockMap, node: str, in_service: set[str], count: bool = True) -> int:
    """How many complete blocks on ``node`` (being decommissioned) still have fewer than
    their target replicas on ``in_service`` nodes (live, normal; not ``node``). 0: it may
    leave. The target itself, not the number of nodes left: with 3 datanodes and
    replication 3, one leaving would take a replica of every block with it (it was
    declared decommissioned at once, HEALTHY, and switching it off left every block
    DEGRADED). Such a node stays decommissioning until another one joins (or the
    files' replication is lowered), as HDFS's. Without ``count``: 1 at the first such
    block (a tick need not walk the whole node once it knows)."""
    short = 0
    for b in bmap.by_node.get(node, ()):
        info = bmap.blocks.get(b)
        if info is None or not info.complete:
            continue
        if sum(1 for u in bmap.replicas.get(b, ()) if u in in_service and u != node) < info.replication:
            short += 1
            if not count:
                break
    return short


def priority(good: int, usable: int, target: int) -> int:
    if good <= 1 or usable == 0:
        return ENDANGERED
    if usable * 3 < target:
        return VERY_UNDER
    return UNDER


def has_room(count: int, nbytes: int, length: int, limit: int, stream_bytes: int | None) -> bool:
    """Whether a node with ``count`` copies of ``nbytes`` in flight may take one more of
    ``length`` bytes under a limit of ``limit`` copies. With ``stream_bytes``, small
    copies go beyond it while their bytes stay within ``limit`` streams of
    ``stream_bytes`` each (at most ``SMALL_COPIES_PER_STREAM`` copies a stream): see
    docs/healing.md, "Small blocks"."""
    if count < limit:
        return True
    return (stream_bytes is not None and count < SMALL_COPIES_PER_STREAM * limit
            and nbytes + length <= limit * stream_bytes)


def _wanted(info: BlockInfo, good: list[str], usable: list[str], pending: int, nodes: dict[str, DatanodeDescriptor],
            fix_racks: bool, racks_writable: set[str]) -> Key | None:
    """Where a block with these replicas goes in the repair queue (None: it needs no copy)."""
    target = info.replication
    if not good:
        return None
    if len(usable) + pending < target:
        return priority(len(good), len(usable), target), len(usable) / target
    if (fix_racks and not pending and len(usable) == target and target > 1 and len(racks_writable) > 1
            and len({nodes[n].rack for n in usable}) == 1):
        return MISPLACED, 1.0
    return None


def plan(bmap: BlockMap, nodes: dict[str, DatanodeDescriptor], live: set[str], writable: set[str],
         in_flight: InFlight, rng: random.Random, *, max_streams: int = 4, max_commands: int = 1000,
         hard_limit: int | None = None, max_incoming: int | None = None, max_bytes: int | None = None,
         stale: set[str] | frozenset = frozenset(), blocks: Iterable[int] | None = None,
         backlog: set[int] | None = None, fix_racks: bool = False, delete_first: set[int] | None = None,
         now: float = 0.0, stuck: set[int] | None = None,
         leaving: Mapping[int, set[str]] | None = None, queue: RepairQueue | None = None,
         stream_bytes: int | None = None, max_misses: int = MAX_MISSES) -> tuple[list[Replicate], list[Invalidate]]:
    """Commands that move every complete block toward its target replication.

    live: uuids that may serve as sources (live or stale, incl. decommissioning);
    writable: uuids that may receive new replicas; stale: live uuids that
    missed heartbeats (last choice as sources, and no trimming while one holds
    a replica). ``blocks``: the blocks to look at again (default: all) -- their
    deletions are decided and they are filed in ``queue`` (or taken out of it);
    then copies are planned from the queue, in its order, from where the last
    plan stopped (see repair_queue.py). ``queue``: the blocks waiting for a
    copy, kept by the caller between plans (default: a new one, so only
    ``blocks`` are planned); ``backlog``, when given, receives the blocks still
    in it after this plan (no free source, target or budget), so the caller can
    look at them again soon. ``delete_first``, when given, lists the blocks whose
    corrupt replicas may be deleted before their replacement exists (when
    their nodes are the only possible targets); the caller keeps a fresh
    report out of it for a while, as more reports of the same block often
    follow (its other replicas may be bad too). ``stuck``, when given, receives
    the blocks that cannot get a copy at all: every writable node holds one or
    is receiving one (fewer datanodes than the target, a decommission with
    nowhere to go). Only a node joining or finding room changes that, so they
    leave the queue: re-planning them every tick cost the lock a whole
    plan of them each second and kept every datanode beating 10x as fast,
    for good. ``leaving`` (anything with ``.get(block, default)``) maps a
    block to the nodes told to delete their replica of it that have not
    confirmed it yet: none of them is a target for it now. ``stream_bytes``:
    see ``has_room``. ``max_misses``: the blocks of one bucket a plan may look
    at without placing a copy (their sources or targets busy) before it goes
    on to the next bucket: what bounds a plan whose free nodes hold none of the
    blocks it meets.
    """
    hard_limit = max(hard_limit or max_streams, max_streams)
    if queue is None:
        queue = RepairQueue()
    invalidate: list[Invalidate] = []
    racks_writable = {nodes[n].rack for n in writable if n in nodes}
    leaving = leaving or {}
    for b in (bmap.blocks if blocks is None else blocks):
        info = bmap.blocks.get(b)
        if info is None or not info.complete:
            queue.discard(b)
            continue
        holders = bmap.replicas.get(b, set())
        good = [n for n in holders if n in live]
        corrupt = [n for n in bmap.corrupt.get(b, ()) if n in nodes]
        usable = [n for n in good if nodes[n].admin_state == "normal"]
        pending = in_flight.pending(b)
        target = info.replication
        if good and corrupt:
            if len(usable) >= target:
                invalidate += [Invalidate(b, n) for n in corrupt]
            elif len(usable) + pending < target:
                # Replace first, then delete -- unless the corrupt copies sit
                # on the only nodes that could take the replacement.
                busy = holders | set(corrupt) | set(in_flight.targets.get(b, {}))
                if (delete_first is None or b in delete_first) and not any(w not in busy for w in writable):
                    invalidate += [Invalidate(b, n) for n in corrupt if n in writable]
        if good and len(usable) > target:
            if not pending and not any(n in stale for n in good):
                for d in placement.choose_excess([nodes[n] for n in usable], target):
                    invalidate.append(Invalidate(b, d.uuid))
        key = _wanted(info, good, usable, pending, nodes, fix_racks, racks_writable)
        if key is None:
            queue.discard(b)
        else:
            queue.put(b, key)
    copies = _place(bmap, nodes, live, writable, in_flight, rng, queue, max_commands=max_commands,
                    max_bytes=max_bytes, max_misses=max_misses, max_streams=max_streams, hard_limit=hard_limit,
                    max_incoming=max_incoming, stale=stale, fix_racks=fix_racks, racks_writable=racks_writable,
                    now=now, stuck=stuck, leaving=leaving, stream_bytes=stream_bytes)
    if backlog is not None:
        backlog |= queue.blocks()
    return copies, invalidate


def _place(bmap: BlockMap, nodes: dict[str, DatanodeDescriptor], live: set[str], writable: set[str],
           in_flight: InFlight, rng: random.Random, queue: RepairQueue, *, max_commands: int,
           max_bytes: int | None, max_misses: int, **rules) -> list[Replicate]:
    """plan's second half: copies for the blocks of ``queue``, in its order, until the
    sources, the targets or the budget run out."""
    placer = _Placer(bmap, nodes, live, writable, in_flight, rng, queue, **rules)

    def spent(pr: int) -> bool:
        return (not placer.senders or not placer.takers or len(placer.copies) >= max_commands
                or (max_bytes is not None and placer.in_bytes >= max_bytes and pr != ENDANGERED))

    for key, bucket in queue.walk():
        if spent(key[0]):
            break       # (endangered blocks come first: the byte budget spares them only)
        misses = 0
        for b in bucket:
            if spent(key[0]) or misses >= max_misses:
                break
            misses += not placer.place(b)
    return placer.copies


class _Placer:
    """The copies of one plan, and what they leave free on each node."""

    def __init__(self, bmap: BlockMap, nodes: dict[str, DatanodeDescriptor], live: set[str], writable: set[str],
                 in_flight: InFlight, rng: random.Random, queue: RepairQueue, *, max_streams: int, hard_limit: int,
                 max_incoming: int | None, stale: set[str] | frozenset, fix_racks: bool, racks_writable: set[str],
                 now: float, stuck: set[int] | None, leaving: Mapping[int, set[str]], stream_bytes: int | None):
        self.bmap, self.nodes, self.live, self.in_flight = bmap, nodes, live, in_flight
        self.rng, self.queue = rng, queue
        self.max_streams, self.hard_limit, self.max_incoming = max_streams, hard_limit, max_incoming
        self.stale, self.fix_racks, self.racks_writable = stale, fix_racks, racks_writable
        self.now, self.stuck, self.leaving, self.stream_bytes = now, stuck, leaving, stream_bytes
        self.copies: list[Replicate] = []
        self.busy = dict(in_flight.per_source)
        self.busy_bytes = dict(in_flight.bytes_from)
        self.incoming = dict(in_flight.per_target)
        self.incoming_bytes = dict(in_flight.bytes_to)
        self.in_bytes = in_flight.bytes
        self.candidates = [nodes[n] for n in writable if n in nodes]
        # Nodes that could still send or take a copy: when either runs out, so does the plan.
        self.senders = {n for n in live if self._sends_more(n)}
        self.takers = {c.uuid for c in self.candidates if self._takes_more(c.uuid)}

    def _sends_more(self, n: str) -> bool:
        return has_room(self.busy.get(n, 0), self.busy_bytes.get(n, 0), 1, self.hard_limit, self.stream_bytes)

    def _takes_more(self, n: str) -> bool:
        return self.max_incoming is None or has_room(self.incoming.get(n, 0), self.incoming_bytes.get(n, 0), 1,
                                                     self.max_incoming, self.stream_bytes)

    def place(self, b: int) -> bool:
        """Plan copies of queued block ``b``; False if it waits for a busy node."""
        bmap, nodes, in_flight, queue = self.bmap, self.nodes, self.in_flight, self.queue
        info = bmap.blocks.get(b)
        if info is None or not info.complete:
            queue.discard(b)
            return True
        good = [n for n in bmap.replicas.get(b, ()) if n in self.live]
        usable = [n for n in good if nodes[n].admin_state == "normal"]
        pending = in_flight.pending(b)
        key = _wanted(info, good, usable, pending, nodes, self.fix_racks, self.racks_writable)
        if key is None:
            queue.discard(b)
            return True
        queue.put(b, key)     # (where it belongs now; it waited under the key it had when filed)
        pr = key[0]
        need = 1 if pr == MISPLACED else info.replication - len(usable) - pending
        limit = self.hard_limit if pr == ENDANGERED else self.max_streams
        avoid = in_flight.avoided(b, self.now)
        sources = [n for n in good if has_room(self.busy.get(n, 0), self.busy_bytes.get(n, 0), info.length * need,
                                               limit, self.stream_bytes)]
        if not sources:
            return False
        source = min(sources, key=lambda n: (n in avoid, n in self.stale, self.busy.get(n, 0), self.rng.random()))
        taken = set(bmap.replicas.get(b, ())) | set(bmap.corrupt.get(b, ())) | set(in_flight.targets.get(b, {}))
        # Could take it, now or once a copy slot frees up.
        room = [c for c in self.candidates if c.uuid not in taken and c.remaining >= info.length]
        # A node told to delete its replica of b (a corrupt or surplus one), and not known to
        # have done so, takes no copy of b yet: the deletion may reach it after the copy and
        # delete the new replica, whose arrival the namenode then never counts (the copy
        # looked lost until its 30 s timeout). It is a target again at its next heartbeat.
        going = self.leaving.get(b, ())
        soon = [c for c in room if c.uuid in going]
        if soon:
            room = [c for c in room if c.uuid not in going]
        if pr == MISPLACED:
            crowded = {nodes[n].rack for n in usable}
            room = [c for c in room if c.rack not in crowded]
        pool = [c for c in room if self.max_incoming is None
                or has_room(self.incoming.get(c.uuid, 0), self.incoming_bytes.get(c.uuid, 0), info.length,
                            self.max_incoming, self.stream_bytes)]
        chosen = [nodes[n] for n in usable]
        targets = placement.choose_targets(need, [c for c in pool if c.uuid not in avoid], self.rng,
                                           chosen=chosen, block_size=info.length)
        if len(targets) < need and avoid:
            # nowhere else to go: try the avoided targets again
            targets += placement.choose_targets(need - len(targets), [c for c in pool if c.uuid in avoid], self.rng,
                                                chosen=chosen + targets, block_size=info.length)
        if not targets:
            if self.stuck is not None and not room and not soon:
                self.stuck.add(b)
                queue.discard(b)
                return True
            return False
        self._count(source, targets, info.length)
        self.copies.append(Replicate(b, source, tuple(t.uuid for t in targets), pr, info.length))
        full = len(targets) >= need
        nowhere_else = not full and self.stuck is not None and len(room) + len(soon) <= len(targets)
        if nowhere_else:
            self.stuck.add(b)   # and looked at again when these copies land
        if full or nowhere_else:
            queue.discard(b)
        return True

    def _count(self, source: str, targets: list[DatanodeDescriptor], length: int) -> None:
        self.busy[source] = self.busy.get(source, 0) + 1
        self.busy_bytes[source] = self.busy_bytes.get(source, 0) + length * len(targets)
        if not self._sends_more(source):
            self.senders.discard(source)
        for t in targets:
            self.incoming[t.uuid] = self.incoming.get(t.uuid, 0) + 1
            self.incoming_bytes[t.uuid] = self.incoming_bytes.get(t.uuid, 0) + length
            if not self._takes_more(t.uuid):
                self.takers.discard(t.uuid)
        self.in_bytes += length * len(targets)
