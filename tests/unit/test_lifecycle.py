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
