"""FileBlockIndex: a reader's window of a big file without reading its block list each time."""

from __future__ import annotations

import random

import pytest

from dfs.namenode.block_index import MANY_BLOCKS, FileBlockIndex


def rows(lengths):
    return [{"id": i + 1, "genstamp": 7, "length": n} for i, n in enumerate(lengths)]


def expected(lengths, offset, end, ahead):
    """The window as the namenode computed it before: a scan of every block."""
    out, off = [], 0
    for i, n in enumerate(lengths):
        if off >= end:
            if ahead <= 0:
                break
            ahead -= 1
            out.append((i + 1, 7, off, n))
        elif off + n > offset or (n == 0 and offset <= off):
            out.append((i + 1, 7, off, n))
        off += n
    return out


@pytest.mark.parametrize("nblocks", [1, 3, MANY_BLOCKS, 300])
def test_windows_match_a_scan_of_every_block(nblocks):
    rng = random.Random(nblocks)
    bs = 1000
    lengths = [bs] * (nblocks - 1) + [rng.randint(1, bs)]
    size = sum(lengths)
    index = FileBlockIndex()
    reads = []

    def read_blocks(inode):
        reads.append(inode)
        return rows(lengths)

    for _ in range(200):
        offset = rng.randint(0, size)
        end = rng.choice([offset, min(size, offset + rng.randint(1, 3 * bs)), size])
        ahead = rng.choice([0, 1, 10])
        assert index.window(5, read_blocks, offset, end, ahead) == expected(lengths, offset, end, ahead)
    # A file of many blocks is read from the store once; a small one each time (cheap).
    assert len(reads) == (1 if nblocks >= MANY_BLOCKS else 200)


def test_a_zero_length_last_block_and_an_empty_file():
    index = FileBlockIndex()
    lengths = [1000] * MANY_BLOCKS + [0]
    size = 1000 * MANY_BLOCKS
    assert index.window(1, lambda i: rows(lengths), size, size + 1, 0) == [(MANY_BLOCKS + 1, 7, size, 0)]
    assert index.window(2, lambda i: [], 0, 0, 10) == []


def test_kept_blocks_stay_within_the_limit_least_recently_used_first_out():
    index = FileBlockIndex(limit=3 * MANY_BLOCKS)
    reads = []

    def read_blocks(inode):
        reads.append(inode)
        return rows([10] * MANY_BLOCKS)

    for inode in (1, 2, 3, 1, 4, 1, 2):
        index.window(inode, read_blocks, 0, 10, 0)
    assert reads == [1, 2, 3, 4, 2]      # 4 pushed out 2 (1 was used since), 2 came back
    index.clear()
    index.window(1, read_blocks, 0, 10, 0)
    assert reads[-1] == 1
