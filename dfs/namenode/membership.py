"""Datanode membership and liveness. Pure: no I/O; ``now`` is always passed in.

A node is *live* while it heart-beats, *stale* after two silent intervals
(last choice for reads, skipped for writes), *dead* after the dead-node
timeout (its replicas leave the block map and are repaired).

Silence is only counted while the namenode itself runs. The monitor thread
calls ``witness(now)`` every tick (at most ~1 s apart); a longer gap means
the namenode was not running (SIGSTOP, a VM or swap stall, a clock jump) and
its datanodes could not have reached it, so every node's last heartbeat
moves forward by the gap instead of the whole cluster being declared dead at
once when it resumes. Until that tick comes, ``state`` judges silence only up
to the last witnessed moment plus the allowance, so a client call served
first does not see them dead either. (A namenode SIGSTOPped for 5 s with a
3 s dead timeout declared all 5 datanodes dead: writes failed "0 live", reads
"no readable replica", until they re-registered; found by test_chaos.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from dfs.model import DatanodeDescriptor

LIVE, STALE, DEAD = "live", "stale", "dead"


@dataclass
class Membership:
    heartbeat_interval: float = 3.0
    dead_timeout: float = 30.0
    nodes: dict[str, DatanodeDescriptor] = field(default_factory=dict)   # uuid ->
    dead: set[str] = field(default_factory=set)
    # A gap between monitor ticks longer than this is a pause of the namenode. None:
    # off (unit tests drive a fake clock in jumps); the server sets it (see witness).
    pause_allowance: float | None = None
    witnessed: float | None = None       # the monitor's last tick

    def witness(self, now: float) -> float:
        """The monitor is running at ``now``; returns the pause forgiven (0.0 if none)."""
        gap = 0.0 if self.witnessed is None else now - self.witnessed
        self.witnessed = now
        if self.pause_allowance is None or gap <= self.pause_allowance:
            return 0.0
        for n in self.nodes.values():
            if n.uuid not in self.dead:
                n.last_heartbeat = min(now, n.last_heartbeat + gap)
        return gap

    def silence(self, node: DatanodeDescriptor, now: float) -> float:
        if self.witnessed is not None and self.pause_allowance is not None:
            now = min(now, self.witnessed + self.pause_allowance)
        return now - node.last_heartbeat

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

    def reported(self, uuid: str, blocks: int) -> None:
        """Its full block report has been taken in: what it holds is known from now."""
        node = self.nodes[uuid]
        node.blocks, node.reported = blocks, True

    def heartbeat(self, uuid: str, now: float, **stats: int) -> DatanodeDescriptor | None:
        node = self.nodes.get(uuid)
        if node is None or uuid in self.dead:
            return None
        for k, v in stats.items():
            setattr(node, k, v)
        node.last_heartbeat = now
        return node

    @staticmethod
    def storage_report(node: DatanodeDescriptor, failed: str, failed_for: float, now: float) -> bool:
        """What a node says of its data dir: ``failed`` why it is dead ("" while it
        works), for ``failed_for`` seconds. -> whether that is news. The time of the
        failure is kept from the first report (each later one would move it by the
        beat's latency); a node whose disk is back has restarted and says ""."""
        if failed == node.storage_failed:
            return False
        node.storage_failed = failed
        node.storage_failed_at = now - max(0.0, failed_for) if failed else 0.0
        return True

    def state(self, node: DatanodeDescriptor, now: float) -> str:
        if node.uuid in self.dead:
            return DEAD
        silent = self.silence(node, now)
        if silent > self.dead_timeout:
            return DEAD
        if silent > 2 * self.heartbeat_interval:
            return STALE
        return LIVE

    def newly_dead(self, now: float) -> list[DatanodeDescriptor]:
        out = [n for n in self.nodes.values()
               if n.uuid not in self.dead and self.silence(n, now) > self.dead_timeout]
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


def still_avoided(excluded: Sequence[str], ages: Sequence[float], nodes: Iterable[DatanodeDescriptor],
                  now: float) -> list[str]:
    """Of the nodes a writer gave up on (``excluded``, ``ages[i]`` seconds ago; no age:
    unknown), those its next block must still avoid: all but a node registered since,
    a new process (restarted) that has failed nothing. A frozen or full node does not
    re-register, so it stays avoided; a rolling restart bounces every node once, and a
    write that avoided each of them for good had nowhere to go with 3 of 4 up."""
    registered = {n.address: n.registered_at for n in nodes}
    return [a for i, a in enumerate(excluded)
            if i >= len(ages) or a not in registered or registered[a] <= now - ages[i]]


def admin_key(uuid: str) -> str:
    """Where a datanode's decommission is remembered across namenode restarts: by its
    uuid (its data dir), not its address. By address, a new machine put in place of a
    decommissioned one (same host:port, empty disk) came up decommissioned, and the
    node itself restarted on another address came back in service."""
    return f"admin_state@{uuid}"
