"""The repair progress `dfs admin report` shows (pending bytes, rate): the pure
RepairProgress, then through NameSystem with a fake clock and counters in heartbeats."""

from __future__ import annotations

import pytest

from dfs.namenode.repair_progress import MIN_RATE_SPAN, RATE_WINDOW, UNCONFIRMED_RESERVE, RepairProgress, copies_of
from tests.unit.test_namesystem import DEAD, ROOT, Clock, holders, make, register, write

MiB = 1 << 20


def test_a_copy_sent_in_full_stays_pending_until_its_target_confirms_it():
    p = RepairProgress(0.0)
    p.sent("a", 8 * MiB, 1.0, in_flight=8 * MiB)     # one 8 MiB block: every byte has left "a"
    assert p.pending(8 * MiB, [("a", 8 * MiB)]) == UNCONFIRMED_RESERVE
    p.landed("a", 8 * MiB, 1.5)
    assert p.pending(0, []) == 0


def test_blocks_of_one_record_are_pending_in_full_until_they_land():
    p = RepairProgress(0.0)
    copies = [("a", MiB)] * 4 + [("b", MiB)] * 4
    p.sent("a", 4 * MiB, 1.0, in_flight=4 * MiB)
    p.sent("b", 4 * MiB, 1.0, in_flight=4 * MiB)
    assert p.pending(11 * MiB, copies) == 11 * MiB      # was 3 MiB: the sent copies counted done


def test_a_copy_part_sent_is_credited_what_it_sent():
    p = RepairProgress(0.0)
    p.sent("a", 5 * MiB, 1.0, in_flight=16 * MiB)
    assert p.pending(20 * MiB, [("a", 8 * MiB), ("a", 8 * MiB)]) == 15 * MiB
    p.sent("b", 5 * MiB, 1.0, in_flight=8 * MiB)       # "b" has no copy of these blocks
    assert p.pending(20 * MiB, [("a", 8 * MiB), ("a", 8 * MiB)]) == 15 * MiB


@pytest.mark.parametrize("landing_first", [True, False])
def test_the_order_of_a_landing_and_the_counter_that_covers_it_does_not_matter(landing_first):
    p = RepairProgress(0.0)
    other = [("a", 8 * MiB)]                  # a second copy from "a", nothing of it sent yet
    if landing_first:
        p.landed("a", 8 * MiB, 1.0)
        p.sent("a", 8 * MiB, 1.1, in_flight=8 * MiB)
    else:
        p.sent("a", 8 * MiB, 1.0, in_flight=16 * MiB)
        p.landed("a", 8 * MiB, 1.1)
    assert p.pending(8 * MiB, other) == 8 * MiB


def test_bytes_of_a_copy_that_failed_are_not_credited_to_the_next():
    p = RepairProgress(0.0)
    p.sent("a", 3 * MiB, 1.0, in_flight=8 * MiB)       # then the copy failed
    p.sent("a", 0, 1.2, in_flight=0)                    # the counter arrives: nothing in flight
    assert p.pending(8 * MiB, [("a", 8 * MiB)]) == 8 * MiB
    p.sent("a", 2 * MiB, 2.0, in_flight=8 * MiB)       # its retry
    assert p.pending(8 * MiB, [("a", 8 * MiB)]) == 6 * MiB


def test_only_copies_toward_a_blocks_count_are_credited():
    # Block 1 lacks one replica; block 2 has enough (its copy only fixes its racks).
    assert copies_of({1: 1}, [(1, "a", MiB), (2, "b", MiB), (1, "c", MiB)]) == [("a", MiB)]


def test_the_rate_is_not_known_until_a_few_seconds_of_the_repair_have_passed():
    p = RepairProgress(100.0)
    p.sent("a", 4 * MiB, 100.2, in_flight=4 * MiB)     # a burst in the first beat
    assert p.rate(100.3) == 0.0                         # was 4 MiB / 0.3 s: 13 MiB/s
    now, seen = 100.2, {}
    while now < 118.0:                                  # then 3 MiB/s in beats of 0.3 s
        now += 0.3
        p.sent("a", int(0.9 * MiB), now, in_flight=4 * MiB)
        seen[round(now - 100.0, 1)] = p.rate(now)
    assert seen[MIN_RATE_SPAN - 0.1] == 0.0
    assert seen[MIN_RATE_SPAN + 0.2] == pytest.approx((4 * MiB + 10 * int(0.9 * MiB)) / (MIN_RATE_SPAN + 0.2))
    assert p.rate(now) == pytest.approx(3 * MiB, rel=0.05)      # over the last RATE_WINDOW s
    assert RATE_WINDOW == 10.0


def test_the_rate_falls_back_on_the_copies_landed_without_counters():
    p = RepairProgress(0.0)
    for i in range(1, 11):
        p.landed("a", MiB, float(i))
    assert p.rate(10.0) == pytest.approx(MiB)


# -- through NameSystem: a dead node's blocks, counters in heartbeats ----------------------


def _beat(ns, d, counter=None, received=()):
    rereg, cmds = ns.heartbeat(d.uuid, {"remaining": 10 << 30, "xceivers": 0}, list(received), [], [],
                               repair_bytes=counter)
    assert not rereg
    return cmds


def test_the_report_keeps_copies_pending_until_they_land_and_its_rate_waits_for_a_span():
    clock = Clock()
    ns = make(clock=clock)
    nodes = register(ns, 4)
    lengths = [60_000] * 8
    _, blocks, _ = write(ns, "/f", lengths)
    counters = {d.uuid: 0 for d in nodes}
    victim = max(nodes, key=lambda d: sum(d.uuid in holders(ns, b) for b, _ in blocks))
    others = [d for d in nodes if d is not victim]
    lost = sum(victim.uuid in holders(ns, b) for b, _ in blocks)
    for d in others:
        _beat(ns, d, 0)
    clock.advance(DEAD + 1)
    for d in others:
        _beat(ns, d, 0)
    ns.tick()
    transfers = {d.uuid: list(_beat(ns, d, 0).transfers) for d in others}
    assert sum(map(len, transfers.values())) == lost > 1
    # Every source sends its copies in full and says so before any target reports one.
    clock.advance(0.3)
    for d in others:
        counters[d.uuid] += sum(length * len(t) for _, _, length, t in transfers[d.uuid])
        _beat(ns, d, counters[d.uuid])
    rep = ns.report()
    assert rep["under_replicated"] == lost
    assert rep["pending_repair_bytes"] == lost * 60_000        # was 0: sent counted as copied
    assert rep["repair_rate"] == 0.0                          # 0.3 s into the repair: not known yet
    clock.advance(MIN_RATE_SPAN)
    assert ns.report()["repair_rate"] == pytest.approx(lost * 60_000 / (MIN_RATE_SPAN + 0.3))
    by_addr = {d.address: d for d in others}
    received: dict[str, list] = {}
    for copies in transfers.values():
        for bid, gs, length, targets in copies:
            for t in targets:
                received.setdefault(by_addr[t].uuid, []).append((bid, gs, length))
    for d in others:
        _beat(ns, d, counters[d.uuid], received.get(d.uuid, ()))
    rep = ns.report()
    assert rep["under_replicated"] == 0 and rep["pending_repair_bytes"] == 0


def test_a_datanode_whose_counter_restarts_from_zero_is_credited_from_its_first_beat():
    ns = make(clock=Clock())
    m = ns.monitor
    m.repair = RepairProgress(0.0)
    m.repair_progress("a", 900 * MiB, 1.0)         # its counter from earlier repairs
    m.repair_progress("a", 901 * MiB, 2.0)
    # Restarted: its counter starts again from 0 and has reached 1 MiB at its first beat.
    for t in range(3, 13):
        m.repair_progress("a", (t - 2) * MiB, float(t))
    assert m.repair_rate(12.0) == pytest.approx(10 * MiB / RATE_WINDOW)   # was 9 MiB: the first beat lost


def test_copies_cancelled_by_a_setrep_down_leave_the_next_repairs_rate_right():
    clock = Clock()
    ns = make(clock=clock)
    nodes = register(ns, 3)
    _, blocks, _ = write(ns, "/f", [60_000] * 12, replication=1)
    counters = {d.uuid: 0 for d in nodes}
    by_addr = {d.address: d for d in nodes}

    def copy_all(transfers):
        received: dict[str, list] = {}
        for uuid, copies in transfers.items():
            for bid, gs, length, targets in copies:
                counters[uuid] += length * len(targets)
                for t in targets:
                    received.setdefault(by_addr[t].uuid, []).append((bid, gs, length))
        return received

    ns.set_replication(ROOT, "/f", 3)
    ns.tick()
    cancelled = {d.uuid: list(_beat(ns, d, 0).transfers) for d in nodes}
    assert sum(map(len, cancelled.values())) == 12
    ns.set_replication(ROOT, "/f", 1)               # cancelled while the copies run
    ns.tick()
    clock.advance(1.0)
    received = copy_all(cancelled)
    for d in nodes:
        _beat(ns, d, counters[d.uuid], received.get(d.uuid, ()))
    ns.tick()
    for d in nodes:                                  # the surplus goes
        _beat(ns, d, counters[d.uuid])
    assert ns.report()["pending_repair_bytes"] == 0
    clock.advance(30.0)
    ns.set_replication(ROOT, "/f", 3)
    ns.tick()
    checked = False
    done, queued = 0, {d.uuid: [] for d in nodes}
    while ns.report()["under_replicated"]:
        clock.advance(0.5)
        for d in nodes:
            queued[d.uuid] += _beat(ns, d, counters[d.uuid]).transfers
        now = {u: q[:1] for u, q in queued.items()}       # one copy per node and beat
        queued = {u: q[1:] for u, q in queued.items()}
        received = copy_all(now)
        done += sum(length * len(t) for c in now.values() for _, _, length, t in c)
        for d in nodes:
            _beat(ns, d, counters[d.uuid], received.get(d.uuid, ()))
        span = min(RATE_WINDOW, clock() - ns.monitor.repair.started) if ns.monitor.repair else 0.0
        if span >= MIN_RATE_SPAN:
            assert ns.report()["repair_rate"] == pytest.approx(done / span, rel=0.2)
            checked = True
        ns.tick()
    assert checked
