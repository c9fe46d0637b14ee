"""Where replicas go (writes) and in which order readers try them. Pure: no I/O.

HDFS's default rack-aware policy: the first replica on the writer's own node
when the writer runs on a datanode, the second on another rack, the third on
the second's rack but another node, any further ones spread at random. Among
eligible nodes we pick by "power of two choices": draw two at random and keep
the one with fewer transfers in flight and more free space, which spreads
load without herding every writer onto the single emptiest node.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterable, Sequence

from dfs.model import DatanodeDescriptor


def _better(a: DatanodeDescriptor, b: DatanodeDescriptor) -> DatanodeDescriptor:
    ka = (a.xceivers, -a.remaining)
    kb = (b.xceivers, -b.remaining)
    return a if ka <= kb else b


def _pick(cands: list[DatanodeDescriptor], rng: random.Random) -> DatanodeDescriptor | None:
    if not cands:
        return None
    if len(cands) == 1:
        return cands[0]
    a, b = rng.sample(cands, 2)
    return _better(a, b)


def choose_targets(n: int, nodes: Iterable[DatanodeDescriptor], rng: random.Random, *,
                   writer_host: str = "", excluded: Iterable[str] = (),
                   chosen: Sequence[DatanodeDescriptor] = (), block_size: int = 0) -> list[DatanodeDescriptor]:
    """Choose up to ``n`` new targets, in pipeline order.

    ``nodes`` are the writable candidates (live, not stale, not decommissioning);
    ``excluded`` addresses are never chosen; ``chosen`` already hold a replica
    (re-replication) and count for rack spreading. A node whose data dir is dead
    (``storage_failed``) is never chosen, whatever free space it last reported.
    """
    skip = set(excluded) | {c.address for c in chosen}
    pool = [d for d in nodes if d.address not in skip and d.remaining >= block_size and not d.storage_failed]
    result: list[DatanodeDescriptor] = []
    placed = list(chosen)

    def take(cands: list[DatanodeDescriptor]) -> bool:
        d = _pick(cands, rng)
        if d is None:
            return False
        result.append(d)
        placed.append(d)
        pool.remove(d)
        return True

    while len(result) < n and pool:
        k = len(placed)
        if k == 0:
            local = [d for d in pool if d.host == writer_host]
            take(local) or take(pool)
        elif k == 1:
            take([d for d in pool if d.rack != placed[0].rack]) or take(pool)
        elif k == 2:
            if placed[0].rack == placed[1].rack:
                take([d for d in pool if d.rack != placed[0].rack]) or take(pool)
            else:
                take([d for d in pool if d.rack == placed[1].rack]) or take(pool)
        else:
            take(pool)
    return result


def sort_for_reader(nodes: list[DatanodeDescriptor], reader_host: str, reader_rack: str | None,
                    stale: set[str], tie: random.Random | int) -> list[DatanodeDescriptor]:
    """Nearest first: same host, then same rack, then the rest; stale nodes last.

    Equally near replicas: shuffled by ``tie`` (an rng), so reads spread over them
    (and a corrupt one is met); or, ``tie`` a block id, ordered by a hash of block,
    reader and node, so that locality hints answer alike each time: ``locate --json``
    and fsspec's ``get_block_locations`` must agree (they differed 2 times in 3)."""
    def key(d: DatanodeDescriptor) -> tuple[int, int, float]:
        dist = 0 if d.host == reader_host else 1 if reader_rack is not None and d.rack == reader_rack else 2
        if isinstance(tie, random.Random):
            return (d.uuid in stale, dist, tie.random())
        return (d.uuid in stale, dist, zlib.crc32(f"{tie}/{reader_host}/{d.uuid}".encode()))
    return sorted(nodes, key=key)


def choose_excess(holders: list[DatanodeDescriptor], target: int) -> list[DatanodeDescriptor]:
    """Which replicas to delete when a block has more than ``target``.

    From the rack holding the most replicas (keeps them spread: 3+2 replicas
    trimmed to 4 leave 2+2, not 3+1; a rack with one is never emptied while
    another has two), then the node with the least free space."""
    keep = list(holders)
    drop: list[DatanodeDescriptor] = []
    while len(keep) > target:
        racks: dict[str, int] = {}
        for d in keep:
            racks[d.rack] = racks.get(d.rack, 0) + 1
        most = max(racks.values())
        crowded = [d for d in keep if racks[d.rack] == most]
        victim = min(crowded, key=lambda d: d.remaining)
        keep.remove(victim)
        drop.append(victim)
    return drop
