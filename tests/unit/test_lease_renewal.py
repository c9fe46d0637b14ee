"""A client renews its leases within the lease period its namenode said (a Create reply's
lease_period): at a fixed 20 s, a namenode with a shorter lease removed the file of a live
writer pausing between writes. An older namenode says nothing: 20 s, a third of its 60 s."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from dfs.client.client import LEASE_RENEW_INTERVAL, DfsClient, renew_interval


@pytest.mark.parametrize(("period", "every"), [
    (0.0, LEASE_RENEW_INTERVAL),    # an older namenode: not said
    (60.0, 20.0),
    (600.0, LEASE_RENEW_INTERVAL),  # a longer lease never slows renewal down
    (10.0, 10 / 3),
    (2.0, 2 / 3),
])
def test_renew_interval_is_a_third_of_the_lease_at_most_the_default(period, every):
    assert renew_interval(period) == pytest.approx(every)


class _Namenode:
    """Records when RenewLease is called."""

    def __init__(self):
        self.renewals: list[float] = []

    def call(self, method, request=None, **kw):
        assert method == "RenewLease", method
        self.renewals.append(time.monotonic())

    def close(self):
        pass


def _writer(file_id: int, lease_period: float):
    return SimpleNamespace(file_id=file_id, lease_period=lease_period)


def _until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


def test_the_shortest_lease_period_said_wakes_a_waiting_renewer_and_sets_its_pace():
    # Deadlines far under the 20 s the renewer waits otherwise: a loaded machine passes.
    client = DfsClient("127.0.0.1:1")
    client.nn = nn = _Namenode()
    writers = [_writer(1, 0.0), _writer(2, 0.3), _writer(3, 60.0)]
    try:
        client._lease_acquired(writers[0])         # an older namenode's reply: 20 s
        time.sleep(0.3)
        assert nn.renewals == []
        t0 = time.monotonic()
        client._lease_acquired(writers[1])         # every 0.1 s from now on
        assert _until(lambda: len(nn.renewals) >= 3), nn.renewals
        assert nn.renewals[0] - t0 < 2.0           # woken: not after the 20 s it was waiting for
        client._lease_acquired(writers[2])         # a longer period said later: still the shortest
        n = len(nn.renewals)
        assert _until(lambda: len(nn.renewals) >= n + 3), nn.renewals
    finally:
        renewer = client._lease_thread
        for w in writers:                          # closed: the renewer ends
            client._lease_released(w)
        client.close()
        renewer.join(5)
        assert not renewer.is_alive()
