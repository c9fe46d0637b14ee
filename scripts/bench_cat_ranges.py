#!/usr/bin/env python3
"""cat_ranges against the code before it cut ranges from a shared chunk cache.

A fresh cluster (3 datanodes, 64 MiB blocks) gets a 200 MiB random file; each
case is read five times by the old way (one ``_read_parallel`` per range on a
shared reader: every range fetched and decoded its whole chunk) and the new
(``DFSFileSystem.cat_ranges``), alternately, so machine load hits both alike.
Prints the median and best time and the chunks asked of the datanodes.

    scripts/bench_cat_ranges.py [WORK_DIR]
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time

from dfs.client.filesystem import DFSFileSystem, _span
from dfs.client.reader import FileReader
from dfs.testing import Cluster

asked: list[tuple[int, int]] = []
_send = FileReader._send_request


def _counting(s, block, first, last):
    asked.append((first, last))
    return _send(s, block, first, last)


FileReader._send_request = staticmethod(_counting)


def old(fs, path, starts, ends):
    first, length = _span(list(zip(starts, ends, strict=True)))
    reader = fs.client.open_read(path, start=first, length=length)
    return [fs._cat_reader(reader, s, e) for s, e in zip(starts, ends, strict=True)]


def new(fs, path, starts, ends):
    return fs.cat_ranges([path] * len(starts), starts, ends)


def cases(size: int) -> dict:
    rng = random.Random(1)
    out = {}
    s = [i * 1000 for i in range(1000)]
    out["1000 x 1000 B, all in chunk 0"] = (s, [a + 1000 for a in s])
    s = sorted(rng.randrange(size - 4096) for _ in range(1000))
    out["1000 random sorted 4 KiB"] = (s, [a + 4096 for a in s])
    s = s[:]
    rng.shuffle(s)
    out["1000 random unsorted 4 KiB"] = (s, [a + 4096 for a in s])
    s = sorted(rng.randrange(size - 4096) for _ in range(100))
    out["100 random sorted 4 KiB"] = (s, [a + 4096 for a in s])
    s = [i << 20 for i in range(size >> 20)]
    out["1 MiB chunk-aligned, all"] = (s, [a + (1 << 20) for a in s])
    s = [i * (size // 4) for i in range(4)]
    out["4 quarters"] = (s, [a + size // 4 for a in s])
    out["1 x whole file"] = ([0], [None])
    return out


def main() -> None:
    work = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="bench-cat-ranges-")
    c = Cluster(work, datanodes=3, block_size="64MiB")
    c.start()
    try:
        fs = DFSFileSystem(namenode=c.namenode_address, skip_instance_cache=True)
        data = os.urandom(200 << 20)
        fs.pipe_file("/rand200", data)
        for name, (starts, ends) in cases(len(data)).items():
            want = [data[a:b] for a, b in zip(starts, ends, strict=True)]
            runs: dict[str, list] = {"old": [], "new": []}
            for _ in range(5):
                for label, fn in (("old", old), ("new", new)):
                    asked.clear()
                    t = time.perf_counter()
                    got = fn(fs, "/rand200", starts, ends)
                    runs[label].append((time.perf_counter() - t, sum(b - a + 1 for a, b in asked)))
                    assert got == want
            line = f"{name:30s}"
            for label, got in runs.items():
                ts = [t for t, _ in got]
                line += (f" | {label}: median {statistics.median(ts):.3f} s, best {min(ts):.3f} s,"
                         f" chunks {got[0][1]}")
            print(line, flush=True)
    finally:
        c.stop()


if __name__ == "__main__":
    main()
