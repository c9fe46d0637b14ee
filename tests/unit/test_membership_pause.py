"""Membership: silence while the namenode itself was not running (SIGSTOP, a
stall) is not held against its datanodes (found by test_chaos: a namenode
paused 5 s with a 3 s dead timeout declared every datanode dead at once)."""

from __future__ import annotations

from dfs.model import DatanodeDescriptor
from dfs.namenode.membership import DEAD, LIVE, STALE, Membership


def dn(i: int) -> DatanodeDescriptor:
    return DatanodeDescriptor(uuid=f"u{i}", address=f"127.0.0.{i}:9866", remaining=1 << 30)


def running(m: Membership, start: float, end: float, beating=("u1", "u2"), step: float = 0.25) -> None:
    """The monitor ticks and the listed nodes heart-beat every ``step`` from start to end."""
    t = start
    while t <= end + 1e-9:
        for u in beating:
            m.heartbeat(u, t)
        m.witness(t)
        assert not {n.uuid for n in m.newly_dead(t)} & set(beating)
        t += step


def cluster() -> Membership:
    m = Membership(heartbeat_interval=0.5, dead_timeout=3.0, pause_allowance=2.0)
    m.register(dn(1), 0.0)
    m.register(dn(2), 0.0)
    return m


def test_namenode_pause_longer_than_dead_timeout_kills_nobody():
    m = cluster()
    running(m, 0.0, 10.0)
    # Paused from 10 to 15: no tick, no heartbeat. A client call served at once
    # after the pause, before the monitor ticks, does not see the nodes dead.
    assert m.state(m.nodes["u1"], 15.0) == STALE
    assert len(m.live(15.0)) == 2
    assert m.witness(15.0) == 5.0
    assert m.newly_dead(15.0) == []
    assert m.state(m.nodes["u1"], 15.0) == LIVE
    # The nodes resume beating: all live.
    running(m, 15.25, 20.0)
    assert {m.state(n, 20.0) for n in m.nodes.values()} == {LIVE}


def test_a_node_that_really_stopped_still_dies_after_the_pause():
    m = cluster()
    running(m, 0.0, 10.0)
    m.witness(15.0)                           # paused 10 -> 15
    running(m, 15.25, 17.5, beating=("u2",))  # u1 never comes back
    assert m.newly_dead(17.5) == []
    t = 17.5
    died = None
    while died is None and t < 30:
        t += 0.25
        m.heartbeat("u2", t)
        m.witness(t)
        if [n.uuid for n in m.newly_dead(t)] == ["u1"]:
            died = t
    # Silent 10 -> 15 (forgiven) then 15 -> death: the dead timeout of running time.
    assert died is not None and 18.0 <= died <= 18.5
    assert m.state(m.nodes["u2"], died) == LIVE


def test_silence_while_running_is_counted_as_before():
    m = cluster()
    running(m, 0.0, 5.0)
    running(m, 5.25, 9.0, beating=("u2",))
    assert "u1" in m.dead and m.state(m.nodes["u1"], 9.0) == DEAD
    assert "u2" not in m.dead


def test_off_by_default_a_fake_clock_may_jump():
    m = Membership(heartbeat_interval=0.5, dead_timeout=3.0)
    m.register(dn(1), 0.0)
    m.witness(0.0)
    assert m.witness(100.0) == 0.0
    assert [n.uuid for n in m.newly_dead(100.0)] == ["u1"]
