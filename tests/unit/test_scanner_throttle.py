"""The block scanner's rate limit (scanner.Throttle), with a fake clock: no sleeps."""

from __future__ import annotations

import threading

from dfs.datanode.scanner import Throttle

MiB = 1 << 20


class FakeStop(threading.Event):
    """A stop event whose waits advance a fake clock instead of sleeping."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock
        self.waits: list[float] = []

    def wait(self, timeout=None):
        self.waits.append(timeout)
        self.clock.now += timeout
        return False


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_reads_faster_than_the_rate_wait_until_the_rate_is_met():
    clock = Clock()
    stop = FakeStop(clock)
    t = Throttle(4 * MiB, stop, clock)
    for _ in range(8):          # 8 MiB read instantly: 2 s at 4 MiB/s
        t(MiB)
    assert abs(clock.now - 102.0) < 1e-9
    assert len(stop.waits) == 8 and all(abs(w - 0.25) < 1e-9 for w in stop.waits)   # record by record
    assert t.ahead() <= 1e-9


def test_reads_slower_than_the_rate_never_wait():
    clock = Clock()
    stop = FakeStop(clock)
    t = Throttle(4 * MiB, stop, clock)
    for _ in range(4):
        clock.now += 1.0        # the disk gives 1 MiB/s
        t(MiB)
    assert stop.waits == []


def test_a_slow_stretch_is_not_made_up_for_beyond_the_rate():
    # Ahead is measured from the start: after a slow record, the next ones go at once
    # until the average reaches the rate, never above it.
    clock = Clock()
    stop = FakeStop(clock)
    t = Throttle(1 * MiB, stop, clock)
    clock.now += 3.0
    t(MiB)
    t(MiB)
    t(MiB)
    assert stop.waits == []
    t(MiB)
    assert abs(clock.now - 104.0) < 1e-9 and t.bytes / (clock.now - t.start) <= MiB
