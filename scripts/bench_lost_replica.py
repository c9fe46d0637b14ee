#!/usr/bin/env python3
"""How fast is a damaged replica noticed and replaced? (docs/healing.md)

A fresh cluster (1 namenode + 4 datanodes, replication 3, 1 MiB blocks) gets a
2 MiB file; then one replica of its second block is damaged behind the
datanode's back and we time, from the damage:

  noticed  -- the block's locations no longer name that replica, or the
              datanode logged it gone (it may get a fresh copy before the next poll)
  healed   -- fsck HEALTHY, 3 live replicas listed and 3 replica files on disk

Cases (--cases):
  rm        rm of the replica's data file; nobody reads it (the presence check)
  rm-read   the same, then one read of the file per 0.2 s (the read path)
  flip      16 bytes flipped in the data file, one read per 0.2 s (reader's report)

Settings (--settings): "test" = heartbeat 0.3 s, dead 3 s, presence check
0.5 s (what tests/integration/test_lost_replicas.py uses); "default" = the
shipped defaults (heartbeat 3 s, dead 30 s, check 60 s). The checksum scanner
stays at its 6 h default throughout, so it never takes part.

    scripts/bench_lost_replica.py --settings test default --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from dfs.testing import Cluster  # noqa: E402

SETTINGS = {
    "test": dict(heartbeat=0.3, dead_timeout=3.0, replica_check_interval=0.5),
    "default": dict(heartbeat=3.0, dead_timeout=30.0, replica_check_interval=None),   # 60 s
}
POLL = 0.05


def one_run(base: str, settings: str, case: str) -> tuple[float, float]:
    with Cluster(base, datanodes=4, **SETTINGS[settings]) as c:
        client = c.client(retry_seconds=20)
        data = os.urandom(2 << 20)
        client.write_bytes("/f", data)
        c.wait_for_status("HEALTHY", timeout=60)
        loc = client.block_locations("/f")[1]
        bid, address = loc.block_id, loc.names[0]
        victim = next(d for d in c.datanodes if d.address == address)
        (_, path), = [(d, p) for d, p in c.replica_files(bid) if d is victim]
        stop = threading.Event()
        t0 = time.monotonic()
        if case == "flip":
            c.corrupt_replica(bid, victim)
        else:
            os.unlink(path)
        if case != "rm":
            def reads():
                reader = c.client(retry_seconds=20)
                while not stop.is_set():
                    assert reader.read_bytes("/f") == data, "a read returned wrong bytes"
                    stop.wait(0.2)
            threading.Thread(target=reads, daemon=True).start()
        noticed = healed = None
        try:
            while healed is None and time.monotonic() - t0 < 300:
                names = client.block_locations("/f")[1].names
                now = time.monotonic() - t0
                if noticed is None and (address not in names or _gone_logged(victim)):
                    noticed = now
                if (noticed is not None and len(names) == 3 and len(c.replica_files(bid)) == 3
                        and client.fsck("/").status == "HEALTHY"):
                    healed = now
                time.sleep(POLL)
        finally:
            stop.set()
        if healed is None:
            raise RuntimeError(f"{settings}/{case}: not healed within 300 s\n{c.dump_logs()}")
        return noticed, healed


def _gone_logged(node) -> bool:
    """The datanode dropped the replica (it may get a fresh copy before the next poll)."""
    with open(node.log_path, errors="replace") as f:
        return "gone from disk" in f.read()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", nargs="+", default=["test", "default"], choices=sorted(SETTINGS))
    ap.add_argument("--cases", nargs="+", default=["rm", "rm-read", "flip"], choices=["rm", "rm-read", "flip"])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(f"{'settings':8} {'case':8} {'noticed s (runs)':32} {'healed s (runs)':32} healed median")
    for s in args.settings:
        for case in args.cases:
            got = []
            for _ in range(args.runs):
                with tempfile.TemporaryDirectory(prefix="dfs-lost-") as tmp:
                    got.append(one_run(os.path.join(tmp, "c"), s, case))
            noticed = " ".join(f"{n:.2f}" for n, _ in got)
            healed = " ".join(f"{h:.2f}" for _, h in got)
            print(f"{s:8} {case:8} {noticed:32} {healed:32} {statistics.median(h for _, h in got):.2f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
