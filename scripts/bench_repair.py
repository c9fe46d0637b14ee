#!/usr/bin/env python3
"""How fast does dfs heal? Re-replication after a datanode is SIGKILLed.

For each size N (GiB): a fresh cluster of 1 namenode + 4 datanodes
(replication 3, 64 MiB blocks, --heartbeat-interval 1 --dead-node-timeout 10
unless told otherwise) gets N GiB of incompressible data; then the datanode
holding the most bytes is SIGKILLed and we time

  (a) kill -> the namenode declares it dead (`admin report` shows it dead),
  (b) kill -> `fsck /` is HEALTHY again (every block back to 3 live replicas),

and print the repair rate (bytes the dead node held / (b - a)) beside a
disk-to-disk copy ceiling measured in the same run on the same file system:
a 256 MiB file copied between two directories and fsynced (best of 3), and a
socket copy (read file -> loopback TCP -> write file + fsync).

Then (largest size only) foreground `get` throughput is measured idle and
while a repair runs (the killed node restarted, left to rejoin, and another
one killed): it must stay above half of its idle value.

    scripts/bench_repair.py                  # sizes 0.25 0.5 1
    scripts/bench_repair.py --sizes 0.25     # a quick run
    scripts/bench_repair.py --no-foreground  # repair timings only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from dfs.testing import Cluster  # noqa: E402
from dfs.testing.faults import until as wait  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30


# -- ceilings ---------------------------------------------------------------
def evict(path: str) -> None:
    """Drop a file's pages from the page cache, so the next read comes from the disk
    (as a repair's does: replicas are written with O_DIRECT and are not cached)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _random_file(path: str, size: int) -> str:
    block = os.urandom(8 * MiB)
    with open(path, "wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    return path


def disk_copy_ceiling(base: str, size: int = 256 * MiB, runs: int = 3) -> float:
    """Best bytes/s of copying a file (not in the page cache) between two directories,
    fsync included."""
    a, b = os.path.join(base, "ceiling-a"), os.path.join(base, "ceiling-b")
    os.makedirs(a, exist_ok=True)
    os.makedirs(b, exist_ok=True)
    src = _random_file(os.path.join(a, "f"), size)
    best = 0.0
    try:
        for i in range(runs):
            dst = os.path.join(b, f"f{i}")
            evict(src)
            t = time.perf_counter()
            with open(src, "rb", buffering=0) as fi, open(dst, "wb", buffering=0) as fo:
                while True:
                    piece = fi.read(8 * MiB)
                    if not piece:
                        break
                    fo.write(piece)
                os.fsync(fo.fileno())
            best = max(best, size / (time.perf_counter() - t))
            os.unlink(dst)
    finally:
        shutil.rmtree(a, ignore_errors=True)
        shutil.rmtree(b, ignore_errors=True)
    return best


def socket_copy_ceiling(base: str, size: int = 256 * MiB, runs: int = 3) -> float:
    """Best bytes/s of file (not cached) -> loopback TCP (sendfile) -> file + fsync:
    one datanode-to-datanode copy with nothing else in the way."""
    d = os.path.join(base, "ceiling-s")
    os.makedirs(d, exist_ok=True)
    src = _random_file(os.path.join(d, "src"), size)
    best = 0.0
    try:
        for i in range(runs):
            srv = socket.create_server(("127.0.0.1", 0))
            port = srv.getsockname()[1]
            dst = os.path.join(d, f"dst{i}")

            def receive(srv=srv, dst=dst):
                conn, _ = srv.accept()
                buf = bytearray(8 * MiB)
                view = memoryview(buf)
                with conn, open(dst, "wb", buffering=0) as fo:
                    while True:
                        n = conn.recv_into(view)
                        if not n:
                            break
                        fo.write(view[:n])
                    os.fsync(fo.fileno())
            t = time.perf_counter()
            th = threading.Thread(target=receive)
            evict(src)
            th.start()
            with socket.create_connection(("127.0.0.1", port)) as s, open(src, "rb") as fi:
                s.sendfile(fi)
            th.join()
            best = max(best, size / (time.perf_counter() - t))
            srv.close()
            os.unlink(dst)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return best


# -- helpers ----------------------------------------------------------------
def write_data(client, path: str, size: int) -> str:
    """Write ``size`` incompressible bytes; returns their sha256."""
    h = hashlib.sha256()
    w = client.create(path, overwrite=True)
    try:
        left = size
        while left:
            piece = os.urandom(min(16 * MiB, left))
            h.update(piece)
            w.write(piece)
            left -= len(piece)
    except BaseException:
        w.abort()
        raise
    w.close()
    return h.hexdigest()


def read_hash(client, path: str) -> str:
    h = hashlib.sha256()
    for piece in client.open_read(path).iter_range():
        h.update(piece)
    return h.hexdigest()


def replicas_per_node(client, paths) -> dict[str, int]:
    """Live replicas each datanode holds of ``paths``, as the namenode sees them."""
    out: dict[str, int] = {}
    for p in paths:
        for b in client.block_locations(p):
            for n in b.names:
                out[n] = out.get(n, 0) + 1
    return out


def node_states(client) -> dict[str, dict]:
    r = client.report()
    return {d.address: {"state": d.state, "used": d.used, "blocks": d.blocks} for d in r.datanodes}


def exactly(client, paths, n: int) -> bool:
    """Every block of ``paths`` has exactly ``n`` live replicas (surplus trimmed)."""
    return all(len(b.names) == n for p in paths for b in client.block_locations(p))


def healthy(client) -> bool:
    return client.fsck("/").status == "HEALTHY"


def cpu_seconds(nodes) -> dict[str, float]:
    """user+system CPU seconds each live process has used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for n in nodes:
        if n.alive:
            with open(f"/proc/{n.proc.pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            out[n.name] = (int(fields[11]) + int(fields[12])) / tick
    return out


def kill_and_time(cluster: Cluster, client, victim, timeout: float = 300.0) -> dict:
    """SIGKILL ``victim``; seconds until it is declared dead and until fsck is HEALTHY."""
    held = node_states(client)[victim.address]["used"]
    t0 = time.monotonic()
    cluster.kill(victim, signal.SIGKILL)
    wait(lambda: node_states(client)[victim.address]["state"] == "dead", timeout, "the node to be declared dead")
    t_dead = time.monotonic()
    cpu0 = cpu_seconds([cluster.namenode, *cluster.datanodes])
    eta_seen = []

    def done():
        r = client.report()
        if r.repair_rate > 0 and r.pending_repair_bytes:
            eta_seen.append((time.monotonic(), r.pending_repair_bytes / r.repair_rate))
        return r.under_replicated == 0 and r.missing == 0 and healthy(client)
    wait(done, timeout, "fsck HEALTHY", interval=0.05)
    t_ok = time.monotonic()
    # the admin report's ETA, about half way through, against what it really took
    mid = [(t, eta) for t, eta in eta_seen if t >= t_dead + (t_ok - t_dead) / 2] or eta_seen
    eta = {"at": mid[0][0] - t_dead, "eta": mid[0][1], "actual": t_ok - mid[0][0]} if mid else None
    cpu1 = cpu_seconds([cluster.namenode, *cluster.datanodes])
    return {"cpu_during_repair": {k: round(cpu1[k] - cpu0[k], 2) for k in cpu1 if k in cpu0},
            "held_bytes": held, "dead_after": t_dead - t0, "healthy_after": t_ok - t0,
            "repair_seconds": t_ok - t_dead, "repair_rate": held / max(1e-9, t_ok - t_dead),
            "eta": eta}


def foreground(cluster: Cluster, client, path: str, victim, timeout: float = 300.0) -> dict:
    """get throughput idle, then while a repair runs."""
    def one_get() -> float:
        t = time.perf_counter()
        n = sum(len(p) for p in client.open_read(path).iter_range())
        return n / (time.perf_counter() - t)
    one_get()   # warm
    idle = sorted(one_get() for _ in range(3))[1]

    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            for piece in client.open_read(path).iter_range():
                samples.append((time.monotonic(), len(piece)))
                if stop.is_set():
                    return

    cluster.kill(victim, signal.SIGKILL)
    wait(lambda: node_states(client)[victim.address]["state"] == "dead", timeout, "the node to be declared dead")
    t_dead = time.monotonic()
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    wait(lambda: healthy(client), timeout, "fsck HEALTHY", interval=0.1)
    t_ok = time.monotonic()
    stop.set()
    th.join()
    got = sum(n for t, n in samples if t_dead <= t <= t_ok)
    during = got / max(1e-9, t_ok - t_dead)
    return {"idle": idle, "during": during, "repair_seconds": t_ok - t_dead}


def run_size(gib: float, args, base: str, with_foreground: bool) -> dict:
    d = tempfile.mkdtemp(prefix=f"repair-{gib}g-", dir=base)
    cluster = Cluster(d, datanodes=4, replication=3, block_size=args.block_size,
                      heartbeat=args.heartbeat, dead_timeout=args.dead_timeout)
    cluster.start()
    client = cluster.client(retry_seconds=30)
    try:
        size = int(gib * GiB)
        t = time.perf_counter()
        digests = {}
        per_file = 256 * MiB
        i = 0
        while size > 0:
            n = min(per_file, size)
            digests[f"/bench/f{i}"] = write_data(client, f"/bench/f{i}", n)
            size -= n
            i += 1
        wrote = time.perf_counter() - t
        wait(lambda: healthy(client), 120, "fsck HEALTHY after the write", interval=0.2)
        ceiling = disk_copy_ceiling(d)
        sock_ceiling = socket_copy_ceiling(d)
        held = replicas_per_node(client, digests)
        victim = max(cluster.datanodes, key=lambda n: held.get(n.address, 0))
        res = kill_and_time(cluster, client, victim)
        res.update(gib=gib, write_seconds=wrote, disk_ceiling=ceiling, socket_ceiling=sock_ceiling)
        for p, h in digests.items():
            if read_hash(client, p) != h:
                raise SystemExit(f"bench: {p} came back different after the repair")
        if with_foreground:
            cluster.restart(victim)
            # back to 4 live nodes, every block at exactly 3 (surplus trimmed)
            wait(lambda: sum(1 for s in node_states(client).values() if s["state"] == "live") == 4,
                 60, "the node to rejoin")
            wait(lambda: healthy(client) and exactly(client, digests, 3), 120,
                 "every block back to exactly 3 replicas after the rejoin", interval=0.2)
            held = replicas_per_node(client, digests)
            second = max((n for n in cluster.datanodes if n is not victim),
                         key=lambda n: held.get(n.address, 0))
            res["foreground"] = foreground(cluster, client, "/bench/f0", second)
            for p, h in digests.items():
                if read_hash(client, p) != h:
                    raise SystemExit(f"bench: {p} came back different after the second repair")
        return res
    except BaseException:
        print(cluster.dump_logs(30), file=sys.stderr)
        raise
    finally:
        cluster.stop()
        if not args.keep:
            shutil.rmtree(d, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="0.25,0.5,1", help="GiB written per run, comma-separated")
    p.add_argument("--block-size", default="64MiB")
    p.add_argument("--heartbeat", type=float, default=1.0)
    p.add_argument("--dead-timeout", type=float, default=10.0)
    p.add_argument("--base", default=None, help="directory for the clusters (default: a temp dir)")
    p.add_argument("--no-foreground", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the cluster directories")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = p.parse_args()
    sizes = [float(s) for s in args.sizes.split(",") if s]
    base = args.base or tempfile.mkdtemp(prefix="dfs-bench-repair-")
    results = []
    for i, g in enumerate(sizes):
        r = run_size(g, args, base, with_foreground=not args.no_foreground and i == len(sizes) - 1)
        results.append(r)
        print(f"{g:5.2f} GiB written in {r['write_seconds']:.1f}s; killed a node holding "
              f"{r['held_bytes'] / MiB:.0f} MiB: dead after {r['dead_after']:.1f}s, HEALTHY after "
              f"{r['healthy_after']:.1f}s (repair {r['repair_seconds']:.1f}s at "
              f"{r['repair_rate'] / MiB:.0f} MiB/s = {100 * r['repair_rate'] / r['disk_ceiling']:.0f}% of the "
              f"disk copy ceiling {r['disk_ceiling'] / MiB:.0f} MiB/s; socket copy ceiling "
              f"{r['socket_ceiling'] / MiB:.0f} MiB/s)", flush=True)
        if r.get("eta"):
            e = r["eta"]
            print(f"       admin report ETA {e['at']:.1f}s into the repair: {e['eta']:.1f}s "
                  f"(it took {e['actual']:.1f}s more)", flush=True)
        print("       CPU seconds used during the repair: " +
              ", ".join(f"{k} {v:.2f}" for k, v in r["cpu_during_repair"].items()), flush=True)
        if "foreground" in r:
            f = r["foreground"]
            print(f"       get throughput: idle {f['idle'] / MiB:.0f} MiB/s, during a repair "
                  f"({f['repair_seconds']:.1f}s) {f['during'] / MiB:.0f} MiB/s = "
                  f"{100 * f['during'] / f['idle']:.0f}% of idle", flush=True)
    per_gib = [r["repair_seconds"] / (r["held_bytes"] / GiB) for r in results]
    if len(results) > 1:
        print("repair seconds per GiB held: " + ", ".join(
            f"{r['gib']:g} GiB: {p:.2f} s" for r, p in zip(results, per_gib, strict=True)))
    # The targets of issue 3 (for the default --heartbeat 1 --dead-timeout 10).
    big = results[-1]
    checks = [(f"{big['gib']:g} GiB back to full replication < 30 s after the kill",
               big["healthy_after"] < 30),
              (f"repair rate >= 50% of the disk copy ceiling ({big['gib']:g} GiB)",
               big["repair_rate"] >= 0.5 * big["disk_ceiling"])]
    if len(results) > 1:
        checks.append(("repair time grows no worse than linearly", per_gib[-1] <= 1.2 * min(per_gib)))
    if "foreground" in big:
        checks.append(("get during a repair > half of idle",
                       big["foreground"]["during"] > 0.5 * big["foreground"]["idle"]))
    for what, ok in checks:
        print(f"  [{'ok' if ok else 'MISSED'}] {what}")
    if args.json:
        print(json.dumps(results, indent=1))
    if not args.base and not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
