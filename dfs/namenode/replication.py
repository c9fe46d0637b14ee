"""Replication planning: what to copy and what to delete. Pure: no I/O.

``plan`` looks at the block map and membership and returns commands; the
namenode queues them per datanode and hands them out in heartbeat replies.

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
(``hard_limit`` for ENDANGERED blocks), each target receives at most
``max_incoming``, and ``max_bytes`` caps the bytes in flight cluster-wide so
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
from dfs.namenode.blockmap import BlockMap

ENDANGERED, VERY_UNDER, UNDER, MISPLACED = 0, 1, 2, 3
PRIORITY_NAMES = ("endangered", "very-under-replicated", "under-replicated", "mis-placed")


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
        src = self.sources.pop((block_id, target), None)
        if src is not None:
            left_bytes = self.bytes_from.get(src, 0) - length
            if left_bytes > 0:
                self.bytes_from[src] = left_bytes
            else:
                self.bytes_from.pop(src, None)
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


def plan(bmap: BlockMap, nodes: dict[str, DatanodeDescriptor], live: set[str], writable: set[str],
         in_flight: InFlight, rng: random.Random, *, max_streams: int = 4, max_commands: int = 1000,
         hard_limit: int | None = None, max_incoming: int | None = None, max_bytes: int | None = None,
         stale: set[str] | frozenset = frozenset(), blocks: Iterable[int] | None = None,
         backlog: set[int] | None = None, fix_racks: bool = False, delete_first: set[int] | None = None,
         now: float = 0.0, stuck: set[int] | None = None,
         leaving: Mapping[int, set[str]] | None = None) -> tuple[list[Replicate], list[Invalidate]]:
    """Commands that move every complete block toward its target replication.

    live: uuids that may serve as sources (live or stale, incl. decommissioning);
    writable: uuids that may receive new replicas; stale: live uuids that
    missed heartbeats (last choice as sources, and no trimming while one holds
    a replica). ``blocks`` limits the pass to those block ids (default: all);
    ``backlog``, when given, receives the blocks that still need work after
    this plan (no free source, target or budget), so the caller can look at
    them again soon. ``delete_first``, when given, lists the blocks whose
    corrupt replicas may be deleted before their replacement exists (when
    their nodes are the only possible targets); the caller keeps a fresh
    report out of it for a while, as more reports of the same block often
    follow (its other replicas may be bad too). ``stuck``, when given, receives
    the blocks that cannot get a copy at all: every writable node holds one or
    is receiving one (fewer datanodes than the target, a decommission with
    nowhere to go). Only a node joining or finding room changes that, so they
    are not in ``backlog``: re-planning them every tick cost the lock a whole
    plan of them each second and kept every datanode beating 10x as fast,
    for good. ``leaving`` (anything with ``.get(block, default)``) maps a
    block to the nodes told to delete their replica of it that have not
    confirmed it yet: none of them is a target for it now.
    """
    hard_limit = max(hard_limit or max_streams, max_streams)
    work: list[tuple[int, float, int]] = []
    invalidate: list[Invalidate] = []
    racks_writable = {nodes[n].rack for n in writable if n in nodes}
    leaving = leaving or {}
    for b in (bmap.blocks if blocks is None else blocks):
        info = bmap.blocks.get(b)
        if info is None or not info.complete:
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
        if not good:
            continue
        if len(usable) + pending < target:
            work.append((priority(len(good), len(usable), target), len(usable) / target, b))
        elif len(usable) > target:
            if not pending and not any(n in stale for n in good):
                for d in placement.choose_excess([nodes[n] for n in usable], target):
                    invalidate.append(Invalidate(b, d.uuid))
        elif (fix_racks and not pending and target > 1 and len(racks_writable) > 1
              and len({nodes[n].rack for n in usable}) == 1):
            work.append((MISPLACED, 1.0, b))
    work.sort(key=lambda w: (w[0], w[1], w[2]))
    copies: list[Replicate] = []
    busy = dict(in_flight.per_source)
    incoming = dict(in_flight.per_target)
    in_bytes = in_flight.bytes
    candidates = [nodes[n] for n in writable if n in nodes]
    for pr, _, b in work:
        if len(copies) >= max_commands or (max_bytes is not None and in_bytes >= max_bytes and pr != ENDANGERED):
            if backlog is not None:
                backlog.add(b)
            continue
        info = bmap.blocks[b]
        limit = hard_limit if pr == ENDANGERED else max_streams
        good = [n for n in bmap.replicas.get(b, ()) if n in live]
        avoid = in_flight.avoided(b, now)
        sources = [n for n in good if busy.get(n, 0) < limit]
        if not sources:
            if backlog is not None:
                backlog.add(b)
            continue
        source = min(sources, key=lambda n: (n in avoid, n in stale, busy.get(n, 0), rng.random()))
        usable = [n for n in good if nodes[n].admin_state == "normal"]
        if pr == MISPLACED:
            need = 1
        else:
            need = info.replication - len(usable) - in_flight.pending(b)
        taken = set(bmap.replicas.get(b, ())) | set(bmap.corrupt.get(b, ())) | set(in_flight.targets.get(b, {}))
        # Could take it, now or once a copy slot frees up.
        room = [c for c in candidates if c.uuid not in taken and c.remaining >= info.length]
        # A node told to delete its replica of b (a corrupt or surplus one), and not known to
        # have done so, takes no copy of b yet: the deletion may reach it after the copy and
        # delete the new replica, whose arrival the namenode then never counts (the copy
        # looked lost until its 30 s timeout). It is a target again at its next heartbeat.
        going = leaving.get(b, ())
        soon = [c for c in room if c.uuid in going]
        if soon:
            room = [c for c in room if c.uuid not in going]
        if pr == MISPLACED:
            crowded = {nodes[n].rack for n in usable}
            room = [c for c in room if c.rack not in crowded]
        pool = [c for c in room if max_incoming is None or incoming.get(c.uuid, 0) < max_incoming]
        chosen = [nodes[n] for n in usable]
        targets = placement.choose_targets(need, [c for c in pool if c.uuid not in avoid], rng,
                                           chosen=chosen, block_size=info.length)
        if len(targets) < need and avoid:
            # nowhere else to go: try the avoided targets again
            targets += placement.choose_targets(need - len(targets), [c for c in pool if c.uuid in avoid], rng,
                                                chosen=chosen + targets, block_size=info.length)
        if not targets:
            if stuck is not None and not room and not soon:
                stuck.add(b)
            elif backlog is not None:
                backlog.add(b)
            continue
        busy[source] = busy.get(source, 0) + 1
        for t in targets:
            incoming[t.uuid] = incoming.get(t.uuid, 0) + 1
        in_bytes += info.length * len(targets)
        copies.append(Replicate(b, source, tuple(t.uuid for t in targets), pr, info.length))
        if backlog is not None:
            if len(targets) < need and (stuck is None or len(room) + len(soon) > len(targets)):
                backlog.add(b)
            elif len(targets) < need:
                stuck.add(b)   # and looked at again when these copies land
                backlog.discard(b)
            else:
                backlog.discard(b)
    return copies, invalidate
