"""The interval a datanode beats at (dfs/datanode/server.py beat_interval)."""

from __future__ import annotations

from dfs.datanode.server import beat_interval


def test_the_shorter_of_the_namenodes_interval_and_its_own():
    assert beat_interval(3.0, 1.0) == 1.0    # the namenode counts silence in its 1 s beats
    assert beat_interval(0.5, 3.0) == 0.5    # faster than asked costs only RPCs
    assert beat_interval(3.0, 3.0) == 3.0
    assert beat_interval(3.0, 0.0) == 3.0    # a namenode that does not say: its own


def test_beats_come_at_the_interval_not_the_news_gap():
    # After a plain interval the loop still slept out NEWS_GAP (0.5 s) before the next
    # beat: at a namenode interval of 0.2 s beats came 0.5 s apart, and a healthy node
    # showed stale (the namenode's threshold is 3 beats... of its 0.2 s).
    import threading
    import time
    import types

    from dfs.datanode import server

    beats = []
    dn = types.SimpleNamespace(
        _stop=threading.Event(), _wake=threading.Event(), _registered=True, _last_report=time.monotonic(),
        _next_beat=0, interval=0.2, replicator=types.SimpleNamespace(active=False))
    dn._heartbeat = lambda: beats.append(time.monotonic())
    t = threading.Thread(target=server.DatanodeServer._heartbeat_loop, args=(dn,), daemon=True)
    t.start()
    time.sleep(1.5)
    dn._stop.set()
    dn._wake.set()
    t.join(5)
    gaps = sorted(b - a for a, b in zip(beats, beats[1:], strict=False))
    assert len(gaps) >= 4 and gaps[len(gaps) // 2] < 0.35, gaps
