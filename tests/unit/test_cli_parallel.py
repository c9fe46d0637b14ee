"""The CLI's parallel copy runner (put -t / get -t), without a cluster."""

from __future__ import annotations

import threading

import pytest

from dfs.cli.fs import _in_parallel


class Bar:
    def __init__(self):
        self.closed = 0

    def close(self):
        self.closed += 1


def test_every_job_runs_once_at_most_n_at_a_time():
    lock = threading.Lock()
    running, peak, seen = [0], [0], []

    def job(i):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        threading.Event().wait(0.002)
        with lock:
            running[0] -= 1
            seen.append(i)

    bar = Bar()
    _in_parallel(job, [(i,) for i in range(50)], 3, bar)
    assert sorted(seen) == list(range(50)) and 1 < peak[0] <= 3 and bar.closed == 1


def test_the_first_failure_stops_new_jobs_and_is_raised():
    started = []
    gate = threading.Event()

    def job(i):
        started.append(i)
        if i == 0:
            raise FileExistsError("first")
        gate.wait(1.0)

    bar = Bar()
    with pytest.raises(FileExistsError, match="first"):
        threading.Timer(0.05, gate.set).start()
        _in_parallel(job, [(i,) for i in range(100)], 2, bar)
    assert len(started) <= 4          # what was queued (2 x threads) when it failed, no more
    assert bar.closed == 1            # the progress line is ended before the error is shown
