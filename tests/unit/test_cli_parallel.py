"""The CLI's parallel copy runner (put -t / get -t), without a cluster."""

from __future__ import annotations

import threading

import pytest

from dfs import errors
from dfs.cli.transfer import _in_parallel


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


def test_a_failed_job_does_not_stop_the_others_and_is_returned_in_order():
    """As cp and `hdfs dfs -put`: every copy that can be made is made."""
    done = []
    lock = threading.Lock()

    def job(i):
        threading.Event().wait(0.001 * (i % 3))
        if i % 7 == 3:
            raise FileExistsError(17, "File exists", f"/t/{i}")
        if i == 20:
            raise errors.DfsFileExistsError(path=f"/t/{i}")
        with lock:
            done.append(i)

    bar = Bar()
    failed = _in_parallel(job, [(i,) for i in range(40)], 3, bar)
    bad = [i for i in range(40) if i % 7 == 3 or i == 20]
    assert [job for job, _ in failed] == [(i,) for i in bad]
    assert isinstance(failed[0][1], FileExistsError) and "/t/3" in str(failed[0][1])
    assert sorted(done) == [i for i in range(40) if i not in bad]
    assert bar.closed == 1


def test_a_failure_that_fails_every_job_stops_new_jobs_and_is_raised():
    for fatal in (errors.NamenodeUnreachableError("127.0.0.9:1"), RuntimeError("bug")):
        started = []
        gate = threading.Event()

        def job(i, started=started, fatal=fatal, gate=gate):
            started.append(i)
            if i == 0:
                raise fatal
            gate.wait(1.0)

        bar = Bar()
        with pytest.raises(type(fatal)):
            threading.Timer(0.05, gate.set).start()
            _in_parallel(job, [(i,) for i in range(100)], 2, bar)
        assert len(started) <= 4      # what was queued (2 x threads) when it failed, no more
        assert bar.closed == 1        # the progress line is ended before the error is shown
