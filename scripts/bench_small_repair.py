#!/usr/bin/env python3
"""How fast are many small blocks repaired? An exploratory tester's repro (session 31).

A fresh cluster of 1 namenode + 3 datanodes (default 3 s heartbeats) gets N
blocks of 64 KiB of zeros at replication 1; then `setrep 3` and we poll
`dfs admin report` until nothing is under-replicated, printing blocks/s, the
namenode's CPU over the repair, and the latency of a client `stat` meanwhile.

    scripts/bench_small_repair.py 2000
    scripts/bench_small_repair.py 20480
    DFS_REPLICATION_STREAM_MB=0 scripts/bench_small_repair.py 2000   # stream counts only
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from dfs.testing import Cluster  # noqa: E402


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory(prefix="bench-small-repair-") as base, \
            Cluster(base, datanodes=3, replication=3, block_size="64KiB", heartbeat=3.0, dead_timeout=30.0) as c:
        c.cli("put", "--replication", "1", "--block-size", "64KiB", "-", "/z", input=bytes(n * 65536),
              check=True, timeout=1800)
        client = c.client()
        latencies: list[float] = []
        done = threading.Event()

        def stat_loop() -> None:
            while not done.is_set():
                t = time.perf_counter()
                client.stat("/z")
                latencies.append(time.perf_counter() - t)
                time.sleep(0.05)

        pid = c.namenode.proc.pid
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        c.cli("setrep", "3", "/z", check=True)
        threading.Thread(target=stat_loop, daemon=True).start()
        while c.report()["under_replicated"]:
            time.sleep(0.5)
        took, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
        done.set()
        latencies.sort()
        p99 = latencies[int(len(latencies) * 0.99)] if latencies else 0.0
        print(f"{n} blocks of 64 KiB: repaired in {took:.1f} s, {n / took:.0f} blocks/s; namenode CPU {cpu:.1f} s "
              f"({100 * cpu / took:.0f}% of a core); stat p99 {1000 * p99:.1f} ms, "
              f"max {1000 * (latencies[-1] if latencies else 0):.1f} ms")


if __name__ == "__main__":
    main()
