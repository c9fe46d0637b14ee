"""Datanode membership and liveness. Pure: no I/O; ``now`` is always passed in.

A node is *live* while it heart-beats, *stale* after two silent intervals
(last choice for reads, skipped for writes), *dead* after the dead-node
timeout (its replicas leave the block map and are repaired).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dfs.model import DatanodeDescriptor

LIVE, STALE, DEAD = "live", "stale", "dead"


@dataclass
class Membership:
    heartbeat_interval: float = 3.0
    dead_timeout: float = 30.0
    nodes: dict[str, DatanodeDescriptor] = field(default_factory=dict)   # uuid ->
    dead: set[str] = field(default_factory=set)

    def register(self, node: DatanodeDescriptor, now: float) -> None:
        # A new node on an address another uuid used replaces it.
        for other in [n for n in self.nodes.values() if n.address == node.address and n.uuid != node.uuid]:
            del self.nodes[other.uuid]
            self.dead.discard(other.uuid)
        old = self.nodes.get(node.uuid)
        if old is not None:
            node.admin_state = old.admin_state
        node.last_heartbeat = now
        node.registered_at = now
        self.nodes[node.uuid] = node
        self.dead.discard(node.uuid)

    def heartbeat(self, uuid: str, now: float, **stats: int) -> DatanodeDescriptor | None:
        node = self.nodes.get(uuid)
        if node is None or uuid in self.dead:
            return None
        for k, v in stats.items():
            setattr(node, k, v)
        node.last_heartbeat = now
        return node

    def state(self, node: DatanodeDescriptor, now: float) -> str:
        if node.uuid in self.dead:
            return DEAD
        silent = now - node.last_heartbeat
        if silent > self.dead_timeout:
            return DEAD
        if silent > 2 * self.heartbeat_interval:
            return STALE
        return LIVE

    def newly_dead(self, now: float) -> list[DatanodeDescriptor]:
        out = [n for n in self.nodes.values()
               if n.uuid not in self.dead and now - n.last_heartbeat > self.dead_timeout]
        for n in out:
            self.dead.add(n.uuid)
        return out

    def next_death(self) -> float | None:
        """When the next node still counted alive will be declared dead, if it stays silent."""
        times = [n.last_heartbeat + self.dead_timeout for n in self.nodes.values() if n.uuid not in self.dead]
        return min(times) if times else None

    def stale_ids(self, now: float) -> set[str]:
        return {n.uuid for n in self.nodes.values() if self.state(n, now) == STALE}

    def live(self, now: float, *, include_stale: bool = True) -> list[DatanodeDescriptor]:
        ok = (LIVE, STALE) if include_stale else (LIVE,)
        return [n for n in self.nodes.values() if self.state(n, now) in ok]

    def live_ids(self, now: float) -> set[str]:
        return {n.uuid for n in self.live(now)}

    def by_address(self, address: str) -> DatanodeDescriptor | None:
        for n in self.nodes.values():
            if n.address == address:
                return n
        return None
