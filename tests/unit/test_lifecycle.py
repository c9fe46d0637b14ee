"""A server's stop is bounded: the watchdog armed when it begins ends a hung one."""

from __future__ import annotations

import subprocess
import sys
import time

HANG = """
import threading, time
from concurrent.futures import ThreadPoolExecutor
from dfs.lifecycle import exit_after
pool = ThreadPoolExecutor(1)
pool.submit(time.sleep, 60)          # interpreter exit joins this worker: a hung stop
exit_after(0.5)
"""


def test_a_hung_stop_exits_at_the_deadline():
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-c", HANG], capture_output=True, text=True, timeout=30)
    took = time.monotonic() - t
    assert r.returncode == 1, r.stderr
    assert took < 10, took
    assert "clean stop took over 0.5 s: exiting now" in r.stderr


def test_a_clean_stop_is_not_cut_short():
    r = subprocess.run([sys.executable, "-c", "from dfs.lifecycle import exit_after; exit_after(5)"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


WAITER = """
import sys, threading
from dfs.lifecycle import StopSignals
stop = StopSignals()
print("waiting", flush=True)
sys.exit(100 + stop.wait(threading.Event()))
"""


def test_a_signal_at_any_moment_of_the_wait_stops_it():
    # The handlers used to call Event.set(): a signal landing while the main thread
    # held that event's lock deadlocked the process (a namenode ignored SIGTERM for
    # good). Signals sent at once, then a burst, at varied moments: every waiter ends.
    import signal as sig
    for i in range(20):
        p = subprocess.Popen([sys.executable, "-c", WAITER], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline() == "waiting\n"
        time.sleep(i * 0.003)
        for _ in range(1 + i % 4):
            p.send_signal(sig.SIGTERM if i % 2 else sig.SIGINT)
        assert p.wait(timeout=10) == 100 + (sig.SIGTERM if i % 2 else sig.SIGINT)
