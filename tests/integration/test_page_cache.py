"""Datanode page-cache behaviour: scans drop behind, ranged reads stay cached.

Measured with fincore(1) on the replica files of real datanodes."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from dfs.datanode.transfer import DROP_BEHIND_MIN

MiB = 1 << 20


def cached_bytes(paths: list[str]) -> int:
    r = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", *paths],
                       capture_output=True, text=True, check=True)
    return sum(int(x) for x in r.stdout.split())


@pytest.fixture
def big_block_cluster(make_cluster):
    if shutil.which("fincore") is None:
        raise RuntimeError("fincore (util-linux) is needed by this test")
    return make_cluster(block_size="64MiB")


def test_scan_drops_behind_ranged_read_stays_cached(big_block_cluster):
    c = big_block_cluster
    client = c.client()
    data = os.urandom(64 * MiB)
    client.write_bytes("/scan.bin", data)
    (block,) = client.open_read("/scan.bin").blocks
    files = [p for _, p in c.replica_files(block.block.block_id)]
    assert len(files) == 3
    subprocess.run(["sync"], check=True)
    for p in files:   # start from nothing cached (the put wrote with O_DIRECT, but its tail was buffered)
        fd = os.open(p, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    assert cached_bytes(files) < MiB

    # A ranged read (what a Parquet reader does) keeps its pages for the next reader.
    assert client.open_read("/scan.bin").read_range(8 * MiB, 4 * MiB) == data[8 * MiB:12 * MiB]
    ranged = cached_bytes(files)
    assert ranged >= 4 * MiB

    # A full scan asks for DROP_BEHIND_MIN bytes or more at a time: what it read leaves
    # the cache, the tail (still in a socket buffer, or read ahead) about a second later.
    assert DROP_BEHIND_MIN <= 32 * MiB
    got = b"".join(bytes(p) for p in client.open_read("/scan.bin").iter_range())
    assert got == data
    deadline = time.monotonic() + 10
    while cached_bytes(files) > ranged + MiB and time.monotonic() < deadline:
        time.sleep(0.2)
    # The ranged read's pages stay unless the scan went through that same replica.
    assert cached_bytes(files) <= ranged + MiB, "the scan read 64 MiB; without drop-behind it stays cached"
