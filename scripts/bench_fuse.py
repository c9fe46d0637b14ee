#!/usr/bin/env python3
"""Benchmark the FUSE mount beside the Python client, in one run, on one local cluster.

Starts a cluster (3 datanodes, replication 3, 64 MiB blocks), mounts it with
`dfs mount` (and a second time with `-o writeback`), and measures:

  * sequential write of SIZE MiB: `dd bs=1M conv=fsync` into the mount vs
    `DfsClient.upload` of the same local file (4 MiB pieces);
  * sequential read: `dd bs=1M of=/dev/null` from the mount vs
    `FileReader.iter_range` (the page cache is not dropped);
  * FILES files of 4 KiB: create (open/write/close vs `write_bytes`), stat
    (`os.stat` vs `stat`, after the attribute caches have expired), `ls -l`
    vs `listdir`, delete (`os.unlink` vs `delete`); on the default mount and
    on the `-o writeback` mount (commits after close run in the background).

Sequential figures alternate client and mount runs (the mount first in odd
repetitions), small-file rounds run
client, mount, writeback mount in turn; with --repeat N every figure is the
median of N runs, and the ratio mount/client the median of the N runs' own
ratios (as in scripts/bench's core section). Prints MB/s or ops/s. Needs
root (or FUSE permissions), fusermount3 and dd. Usage:

    .venv/bin/python scripts/bench_fuse.py [--size 1024] [--files 5000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from dfs.testing import Cluster
from dfs.tuning import tune_malloc

MiB = 1 << 20


def timed(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr.strip()}")


def client_upload(client, src: str, path: str) -> None:
    with open(src, "rb") as f:
        client.upload(f, path)


def client_read(client, path: str) -> None:
    for _ in client.open_read(path).iter_range():
        pass


def dd(src: str, dst: str, *flags: str) -> None:
    run(["dd", f"if={src}", f"of={dst}", "bs=1M", "status=none", *flags])


def sequential(client, src: str, mnt: str, size: int, repeat: int) -> dict:
    mb = size * MiB / 1e6
    cw, cr, mw, mr = [], [], [], []
    for i in range(repeat):
        path, target = f"/seq-client-{i}", os.path.join(mnt, f"seq-mount-{i}")
        # Who goes first alternates: the first read after a write phase is the slow
        # one for either side (docs/benchmarks.md), so a fixed order favours one.
        writes = [lambda path=path: cw.append(mb / timed(client_upload, client, src, path)),
                  lambda target=target: mw.append(mb / timed(dd, src, target, "conv=fsync"))]
        reads = [lambda path=path: cr.append(mb / timed(client_read, client, path)),
                 lambda target=target: mr.append(mb / timed(dd, target, "/dev/null"))]
        for step in (writes + reads) if i % 2 == 0 else (writes[::-1] + reads[::-1]):
            step()
        client.delete(path)
        os.unlink(target)
    med = statistics.median
    # The ratio is the median of each run's mount/client ratio, as the core section's
    # are: the client's read swings 1.4-2.3 GB/s between runs on this machine, and a
    # ratio of two medians taken from different runs mixes two machine states.
    return {"sequential write": (med(cw), med(mw), "MB/s", None, med(m / c for c, m in zip(cw, mw, strict=True))),
            "sequential read": (med(cr), med(mr), "MB/s", None, med(m / c for c, m in zip(cr, mr, strict=True)))}


def client_small(client, n: int, data: bytes, run: int = 0) -> tuple[float, ...]:
    d = f"/small-client-{run}"
    client.mkdir(d)
    names = [f"{d}/f{i:05d}" for i in range(n)]
    create = n / timed(lambda: [client.write_bytes(p, data) for p in names])
    stat = n / timed(lambda: [client.stat(p) for p in names])
    ls = n / timed(client.listdir, d)
    delete = n / timed(lambda: [client.delete(p) for p in names])
    return create, stat, ls, delete


def write_files(paths: list[str], data: bytes) -> None:
    for p in paths:
        with open(p, "wb") as f:
            f.write(data)


def mount_small(root: str, name: str, n: int, data: bytes) -> tuple[float, ...]:
    d = os.path.join(root, name)
    os.mkdir(d)
    paths = [os.path.join(d, f"f{i:05d}") for i in range(n)]
    create = n / timed(write_files, paths, data)
    time.sleep(1.5)   # let the kernel's and the mount's 1 s attribute caches expire
    stat = n / timed(lambda: [os.stat(p) for p in paths])
    time.sleep(1.5)
    ls = n / timed(run, ["ls", "-l", d])
    delete = n / timed(lambda: [os.unlink(p) for p in paths])
    return create, stat, ls, delete


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=1024, help="MiB for the sequential figures (1024)")
    ap.add_argument("--files", type=int, default=5000, help="small files (5000)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of every figure; medians are shown (1)")
    ap.add_argument("--mount-options", default="", help="extra -o options for dfs mount")
    args = ap.parse_args()
    tune_malloc()

    base = tempfile.mkdtemp(prefix="dfs-bench-fuse-")
    src = os.path.join(base, "src.bin")
    with open(src, "wb") as f:
        for _ in range(args.size):
            f.write(os.urandom(MiB))
    mnt, wb_mnt = os.path.join(base, "mnt"), os.path.join(base, "wb")
    os.makedirs(mnt)
    os.makedirs(wb_mnt)
    # Heartbeats at the SPEC default (3 s): at 0.5 s a busy 2-core box lets them lapse.
    cluster = Cluster(os.path.join(base, "cluster"), datanodes=3, replication=3,
                      block_size="64MiB", heartbeat=3.0)
    cluster.start()
    try:
        client = cluster.client()
        mount = [sys.executable, "-m", "dfs", "--namenode", cluster.namenode_address, "mount"]
        extra = ["-o", args.mount_options] if args.mount_options else []
        run(mount + extra + [mnt])
        run(mount + extra + ["-o", "writeback", wb_mnt])
        try:
            results = sequential(client, src, mnt, args.size, args.repeat)
            data = os.urandom(4096)
            runs = [(client_small(client, args.files, data, r),
                     mount_small(mnt, f"small-mount-{r}", args.files, data),
                     mount_small(wb_mnt, f"small-writeback-{r}", args.files, data))
                    for r in range(args.repeat)]
            names = (f"create {args.files} x 4 KiB", "stat", "ls -l / listdir", "delete")
            units = ("files/s", "/s", "entries/s", "/s")
            med = statistics.median
            for i, name in enumerate(names):
                c, m, wb = (med(r[k][i] for r in runs) for k in range(3))
                results[name] = (c, m, units[i], wb, med(r[1][i] / r[0][i] for r in runs))
        except BaseException:
            # The cluster's directory goes with the run: show why it failed while we can.
            print(cluster.dump_logs(lines=60), file=sys.stderr)
            raise
        finally:
            for path in (mnt, wb_mnt):
                subprocess.run(["fusermount3", "-u", "-z", path], capture_output=True)
    finally:
        cluster.stop()
        subprocess.run(["rm", "-rf", base])

    print(f"\n{'figure':22} {'unit':10} {'client':>9} {'mount':>9}  mount/client  -o writeback")
    for name, (c, m, unit, wb, ratio) in results.items():
        extra = f"{wb:12.0f}" if wb is not None else ""
        print(f"{name:22} {unit:10} {c:9.0f} {m:9.0f}  {ratio:11.0%}   {extra}")
    print("(figures: medians of the runs; mount/client: the median of each run's own ratio)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
