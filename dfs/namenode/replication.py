"""Replication planning: what to copy and what to delete. Pure: no I/O.

``plan`` looks at the block map and membership and returns commands; the
namenode queues them per datanode and hands them out in heartbeat replies.
Most endangered blocks come first (one live replica before two), each
source node runs at most ``max_streams`` copies at once, and a copy that
does not finish by its deadline is forgotten so the next plan retries it
from another source or to another target.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from dfs.model import DatanodeDescriptor
from dfs.namenode import placement
from dfs.namenode.blockmap import BlockMap


@dataclass(frozen=True)
class Replicate:
    block_id: int
    source: str            # uuid
    targets: tuple[str, ...]  # uuids


@dataclass(frozen=True)
class Invalidate:
    block_id: int
    node: str              # uuid


@dataclass
class InFlight:
    """Copies scheduled but not yet reported done: block -> {target uuid: deadline}."""

    targets: dict[int, dict[str, float]] = field(default_factory=dict)
    per_source: dict[str, int] = field(default_factory=dict)
    sources: dict[tuple[int, str], str] = field(default_factory=dict)

    def add(self, r: Replicate, deadline: float) -> None:
        # One slot per (block, source), as done() releases it: a second copy of
        # a block from the same source must not take a slot that is never freed.
        serving = any(s == r.source for (b, _), s in self.sources.items() if b == r.block_id)
        for t in r.targets:
            self.targets.setdefault(r.block_id, {})[t] = deadline
            self.sources[(r.block_id, t)] = r.source
        if not serving:
            self.per_source[r.source] = self.per_source.get(r.source, 0) + 1

    def done(self, block_id: int, target: str) -> None:
        t = self.targets.get(block_id)
        if t is None or target not in t:
            return
        del t[target]
        if not t:
            del self.targets[block_id]
        src = self.sources.pop((block_id, target), None)
        if src is not None and not any(s == src for (b, _), s in self.sources.items() if b == block_id):
            self.per_source[src] = max(0, self.per_source.get(src, 0) - 1)

    def expire(self, now: float) -> None:
        for b in list(self.targets):
            for t, dl in list(self.targets[b].items()):
                if dl < now:
                    self.done(b, t)

    def is_pending(self, block_id: int, target: str) -> bool:
        return target in self.targets.get(block_id, {})

    def pending(self, block_id: int) -> int:
        return len(self.targets.get(block_id, ()))


def plan(bmap: BlockMap, nodes: dict[str, DatanodeDescriptor], live: set[str], writable: set[str],
         in_flight: InFlight, rng: random.Random, *, max_streams: int = 4,
         max_commands: int = 1000) -> tuple[list[Replicate], list[Invalidate]]:
    """Commands that move every complete block toward its target replication.

    live: uuids that may serve as sources (live or stale, incl. decommissioning);
    writable: uuids that may receive new replicas.
    """
    work: list[tuple[float, int, list[str]]] = []
    invalidate: list[Invalidate] = []
    for b, info in bmap.blocks.items():
        if not info.complete:
            continue
        good = [n for n in bmap.replicas.get(b, ()) if n in live]
        corrupt = [n for n in bmap.corrupt.get(b, ()) if n in nodes]
        if good and corrupt:
            # A corrupt copy is no copy: drop it as soon as a good one exists,
            # so its node can take a fresh replica.
            invalidate += [Invalidate(b, n) for n in corrupt]
        usable = [n for n in good if nodes[n].admin_state == "normal"]
        have = len(usable) + in_flight.pending(b)
        if good and have < info.replication:
            work.append((len(usable) / info.replication, b, good))
        elif len(usable) > info.replication and not in_flight.pending(b):
            for d in placement.choose_excess([nodes[n] for n in usable], info.replication):
                invalidate.append(Invalidate(b, d.uuid))
    work.sort(key=lambda w: (w[0], w[1]))
    copies: list[Replicate] = []
    busy = dict(in_flight.per_source)
    candidates = [nodes[n] for n in writable]
    for _, b, good in work:
        if len(copies) >= max_commands:
            break
        sources = [n for n in good if busy.get(n, 0) < max_streams]
        if not sources:
            continue
        source = min(sources, key=lambda n: (busy.get(n, 0), rng.random()))
        info = bmap.blocks[b]
        usable = [n for n in good if nodes[n].admin_state == "normal"]
        need = info.replication - len(usable) - in_flight.pending(b)
        holders = set(bmap.replicas.get(b, ())) | set(bmap.corrupt.get(b, ())) | set(in_flight.targets.get(b, {}))
        chosen = [nodes[n] for n in usable]
        targets = placement.choose_targets(
            need, [c for c in candidates if c.uuid not in holders], rng,
            chosen=chosen, block_size=info.length)
        if not targets:
            continue
        busy[source] = busy.get(source, 0) + 1
        copies.append(Replicate(b, source, tuple(t.uuid for t in targets)))
    return copies, invalidate
