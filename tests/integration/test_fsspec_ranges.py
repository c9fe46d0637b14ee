"""cat_ranges: every range byte for byte as slicing the file, and each chunk fetched
from a datanode once per call however many ranges it holds (kerchunk and fsspec's
parquet precaching ask for hundreds of small ranges: each one fetched and decoded
its whole 1 MiB chunk again).

One file of small blocks (3 MiB: three chunks of 1 MiB; the last block and chunk short),
part random, part compressible (zstd chunks), so ranges cross chunk and block
boundaries of both kinds."""

from __future__ import annotations

import os
import random
from collections import Counter

import pytest

from dfs.client import ranges as ranges_mod
from dfs.client.filesystem import DFSFileSystem
from dfs.client.fsspec_file import _ChunkCache
from dfs.client.reader import FileReader

MIB = 1 << 20
BS = 3 * MIB
CS = MIB
PATH = "/ranges/f"


@pytest.fixture(scope="module")
def fs(shared_cluster):
    return DFSFileSystem(namenode=shared_cluster.namenode_address, skip_instance_cache=True)


@pytest.fixture(scope="module")
def data(fs):
    rng = random.Random(7)
    d = (os.urandom(3 * MIB) + bytes(rng.randrange(4) for _ in range(3 * MIB))
         + os.urandom(2 * MIB + 12345))
    fs.pipe_file(PATH, d, dfs_block_size=BS)
    fs.pipe_file("/ranges/small", b"0123456789")
    assert fs.client.open_read(PATH).chunk_size == CS
    return d


@pytest.fixture
def chunk_requests(monkeypatch):
    """Every (block_id, chunk) asked of a datanode by this process."""
    asked: list[tuple[int, int]] = []
    real = FileReader._send_request

    def spy(s, block, first, last):
        asked.extend((block.block.block_id, c) for c in range(first, last + 1))
        return real(s, block, first, last)

    monkeypatch.setattr(FileReader, "_send_request", staticmethod(spy))
    return asked


def boundaries(size: int) -> list[int]:
    """Every chunk and block boundary of the file."""
    out = set()
    for b in range(0, size, BS):
        out.update(range(b, min(size, b + BS), CS))
        out.add(min(size, b + BS))
    return sorted(out)


def shapes(size: int) -> list[tuple]:
    rng = random.Random(11)
    out: list[tuple] = [(None, None), (0, None), (None, 10), (-100, None), (-3 * MIB, -5), (5, -5),
                        (size - 10, size + 1000), (size + 5, size + 10), (size, None), (100, 100),
                        (200, 100), (-(size + 100), 10), (-5, -10), (0, size), (-1, None)]
    for b in boundaries(size):
        out += [(b - 1, b + 1), (b, b + 1), (b - 1, b), (b - 5000, b + 5000), (b, b + CS),
                (b - CS // 2, b + BS)]
    for _ in range(300):
        s = rng.randrange(size)
        out.append((s, s + rng.choice([1, 1000, 4096, 70_000, CS, 3 * CS])))
    out += out[:40]                                          # duplicates
    rng.shuffle(out)                                         # in no order
    return out


def test_every_range_shape_matches_slicing_the_file(fs, data):
    cases = shapes(len(data))
    got = fs.cat_ranges([PATH] * len(cases), [s for s, _ in cases], [e for _, e in cases])
    for (s, e), g in zip(cases, got, strict=True):
        assert g == data[s:e], (s, e)


def test_files_interleaved_and_errors_per_range(fs, data):
    paths = [PATH, "/ranges/small", "/ranges/nope", PATH, "/ranges/small", PATH]
    starts = [CS - 3, 2, 0, 5, -4, BS - 1]
    ends = [CS + 3, 6, 1, 9, None, BS + 1]
    got = fs.cat_ranges(paths, starts, ends)
    assert isinstance(got[2], FileNotFoundError)
    assert [g for i, g in enumerate(got) if i != 2] == [
        data[CS - 3:CS + 3], b"2345", data[5:9], b"6789", data[BS - 1:BS + 1]]
    with pytest.raises(FileNotFoundError):
        fs.cat_ranges(paths, starts, ends, on_error="raise")


def test_each_chunk_is_fetched_once_per_call(fs, data, chunk_requests):
    # 1,000 ranges of 1,000 bytes in the first chunk: one fetch, where it was 1,000.
    starts = [i * 1000 for i in range(1000)]
    got = fs.cat_ranges([PATH] * 1000, starts, [s + 1000 for s in starts])
    assert got == [data[s:s + 1000] for s in starts]
    assert len(chunk_requests) == 1

    chunk_requests.clear()
    cases = shapes(len(data))
    fs.cat_ranges([PATH] * len(cases), [s for s, _ in cases], [e for _, e in cases])
    fetched = Counter(chunk_requests)
    assert max(fetched.values()) == 1, fetched.most_common(3)
    n_chunks = sum(-(-min(BS, len(data) - b) // CS) for b in range(0, len(data), BS))
    assert len(fetched) == n_chunks          # the whole file is asked for: every chunk, once


def test_only_the_chunks_of_the_ranges_are_fetched(fs, data, chunk_requests):
    rng = random.Random(5)
    starts = sorted(rng.sample(range(len(data) - 4096), 6), reverse=True)
    got = fs.cat_ranges([PATH] * 6, starts, [s + 4096 for s in starts])
    assert got == [data[s:s + 4096] for s in starts]
    needed = {(s // BS, (s % BS) // CS) for a in starts for s in (a, a + 4095)}
    assert len(set(chunk_requests)) == len(chunk_requests) == len(needed)


def test_chunks_are_held_only_near_the_range_being_cut(fs, data, monkeypatch):
    # Many ranges over the whole file: a few chunks are held at a time, not the file.
    monkeypatch.setattr(ranges_mod, "AHEAD_BYTES", 2 * MIB)
    peak = [0]
    real = _ChunkCache._fetch_run

    def fetch_run(self, *a):
        real(self, *a)
        peak[0] = max(peak[0], self.cached_bytes)

    monkeypatch.setattr(_ChunkCache, "_fetch_run", fetch_run)
    starts = list(range(0, len(data) - 4096, 20_000))
    got = fs.cat_ranges([PATH] * len(starts), starts, [s + 4096 for s in starts])
    assert got == [data[s:s + 4096] for s in starts]
    assert 0 < peak[0] <= 4 * MIB, peak[0]


def test_a_block_that_cannot_be_read_fails_only_its_ranges(fs, data, monkeypatch):
    second = fs.client.open_read(PATH).block_at(BS).block.block_id
    real = FileReader._send_request

    def send(s, block, first, last):
        if block.block.block_id == second:
            raise ConnectionResetError("replica gone")
        return real(s, block, first, last)

    monkeypatch.setattr(FileReader, "_send_request", staticmethod(send))
    starts = [BS + 10, 10, BS - 5, 2 * BS + 10, BS + 20]
    ends = [BS + 20, 20, BS + 5, 2 * BS + 20, BS + 30]
    got = fs.cat_ranges([PATH] * 5, starts, ends)
    assert [type(g) for g in got] == [type(got[0]), bytes, type(got[0]), bytes, type(got[0])]
    assert isinstance(got[0], OSError)
    assert got[1] == data[10:20] and got[3] == data[2 * BS + 10:2 * BS + 20]
    with pytest.raises(OSError):
        fs.cat_ranges([PATH] * 5, starts, ends, on_error="raise")
