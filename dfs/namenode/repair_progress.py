"""How far the repair under way has got: what `dfs admin report` shows as
``pending_repair_bytes`` and ``repair_rate`` (``eta_seconds`` = pending / rate).

Pure: the monitor (monitor.py) feeds it the datanodes' repair byte counters and
the copies that land, and asks with what is in flight; no clock, lock or I/O.

Two sources of news, neither ordered against the other: a source datanode's
counter (block bytes its copies have sent, after its bandwidth cap let them go;
in its heartbeat) and a target's report that the replica landed (in the
target's heartbeat). Per source, ``balance`` = bytes its counter says were sent
less the bytes of its copies that landed: what its copies in flight have
delivered so far. It may dip below 0 for a moment (a landing heard before the
counter that covers it) and is held to the bytes the source has in flight, so
a copy that failed or timed out after sending part of its block is not
credited to the next ones for long.

A copy is done when its target confirms it, not when its last byte left the
source: until then its last ``UNCONFIRMED_RESERVE`` bytes (a record at the
default chunk size; the counter moves a record at a time) count as still to
copy. So the pending bytes reach 0 only with the last under-replicated block,
and a block of one record is pending until it lands.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping

UNCONFIRMED_RESERVE = 1 << 20
RATE_WINDOW = 10.0       # seconds of copying behind the repair rate
# No rate before this much of the repair has passed (the report then shows no ETA):
# the counters come in heartbeats, whole records at a time, and a datanode's bandwidth
# cap lets a quarter of a second's bytes go at once -- over the first fraction of a
# second they made the rate several times what the caps allow (77 MB/s for three
# datanodes capped at 1 MiB/s each, an ETA of 0.2 s for 17 s of copying).
MIN_RATE_SPAN = 3.0


class RepairProgress:
    """One repair: from the first copy planned until nothing is in flight or waiting."""

    def __init__(self, started: float):
        self.started = started
        self.balance: dict[str, int] = {}    # source uuid -> bytes sent, less its copies landed
        self._sent: collections.deque[tuple[float, int]] = collections.deque()     # (when, bytes)
        self._landed: collections.deque[tuple[float, int]] = collections.deque()   # (when, bytes)

    def sent(self, source: str, nbytes: int, now: float, in_flight: int) -> None:
        """``source``'s counter rose by ``nbytes``; it has ``in_flight`` bytes of copies
        not yet landed (0: whatever it sent was for copies landed, failed or timed out)."""
        self._sent.append((now, nbytes))
        self.balance[source] = min(self.balance.get(source, 0) + nbytes, in_flight)

    def landed(self, source: str | None, nbytes: int, now: float) -> None:
        """A copy from ``source`` of ``nbytes`` was confirmed by its target."""
        self._landed.append((now, nbytes))
        if source is not None:
            self.balance[source] = self.balance.get(source, 0) - nbytes

    def forget(self, node: str) -> None:
        """``node`` died or restarted: its counter starts again, its copies are gone."""
        self.balance.pop(node, None)

    def pending(self, lacking: int, copies: Iterable[tuple[str, int]]) -> int:
        """Bytes still to copy: ``lacking`` (block length times replicas lacking, over the
        under-replicated blocks) less what ``copies`` in flight for those blocks, as
        (source, block length), have delivered."""
        deliverable: dict[str, int] = {}     # per source: what it may be credited with
        reserved = 0
        for source, length in copies:
            keep = min(length, UNCONFIRMED_RESERVE)
            reserved += keep
            deliverable[source] = deliverable.get(source, 0) + length - keep
        credit = sum(min(max(0, self.balance.get(s, 0)), cap) for s, cap in deliverable.items())
        return max(lacking - credit, min(lacking, reserved), 0)

    def rate(self, now: float, window: float = RATE_WINDOW, min_span: float = MIN_RATE_SPAN) -> float:
        """Bytes/s copied over the last ``window`` seconds of this repair (0: not known
        yet): from the datanodes' counters, or from the copies landed if none send one."""
        for q in (self._sent, self._landed):
            while q and q[0][0] <= now - window:
                q.popleft()
        span = min(window, now - self.started)
        q = self._sent or self._landed
        if span < min_span or not q:
            return 0.0
        return sum(n for _, n in q) / span


def copies_of(lacking: Mapping[int, int], copies: Iterable[tuple[int, str, int]]) -> list[tuple[str, int]]:
    """Of the ``copies`` in flight, as (block, source, length), those of ``lacking`` blocks
    (block -> replicas it lacks), at most as many per block as it lacks (a copy to fix a
    block's racks brings nothing toward its count)."""
    left = dict(lacking)
    out = []
    for b, source, length in copies:
        if left.get(b, 0) > 0:
            left[b] -= 1
            out.append((source, length))
    return out
