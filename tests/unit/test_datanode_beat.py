"""The interval a datanode beats at (dfs/datanode/server.py beat_interval)."""

from __future__ import annotations

from dfs.datanode.server import beat_interval


def test_the_shorter_of_the_namenodes_interval_and_its_own():
    assert beat_interval(3.0, 1.0) == 1.0    # the namenode counts silence in its 1 s beats
    assert beat_interval(0.5, 3.0) == 0.5    # faster than asked costs only RPCs
    assert beat_interval(3.0, 3.0) == 3.0
    assert beat_interval(3.0, 0.0) == 3.0    # a namenode that does not say: its own
