"""A read asks the namenode for the locations of the blocks it reads, plus a few ahead
(AHEAD_BLOCKS), never for all the blocks of the file: a 4 KiB read of a file of
20,000 blocks was answered with megabytes, built under the namenode's lock.

One file of many small blocks; every GetBlockLocations reply the client gets is counted."""

from __future__ import annotations

import os

import pytest

from dfs import errors
from dfs.client.filesystem import DFSFileSystem
from dfs.client.reader import AHEAD_BLOCKS
from dfs_fuse.cache import BlockCache, Version

BS = 64 << 10
NBLOCKS = 120           # enough that "all of them" and "a window" differ plainly
PATH = "/window/big"


@pytest.fixture(scope="module")
def big(shared_cluster):
    data = os.urandom(BS * NBLOCKS - 1000)       # a short last block
    shared_cluster.client().write_bytes(PATH, data, block_size=BS)
    return data


class Replies:
    """The GetBlockLocations replies a client got: calls, and blocks in them."""

    def __init__(self, client):
        self.calls = self.blocks = 0
        real = client.nn.call

        def call(method, req, *a, **kw):
            r = real(method, req, *a, **kw)
            if method == "GetBlockLocations":
                self.calls += 1
                self.blocks += len(r.blocks)
            return r

        client.nn.call = call

    def reset(self) -> None:
        self.calls = self.blocks = 0


@pytest.fixture
def fs(shared_cluster):
    return DFSFileSystem(namenode=shared_cluster.namenode_address, skip_instance_cache=True)


@pytest.fixture
def replies(fs):
    return Replies(fs.client)


MID = (NBLOCKS // 2) * BS + 1000     # 4 KiB in the middle of a block in the middle of the file


def test_a_small_ranged_read_loads_a_few_blocks_not_all(fs, replies, big):
    assert fs.cat_file(PATH, MID, MID + 4096) == big[MID:MID + 4096]
    assert replies.blocks == 1, "cat_file of a range knows it: just the block it reads"

    replies.reset()
    with fs.open(PATH, "rb") as f:
        f.seek(MID)
        assert f.read(4096) == big[MID:MID + 4096]
    # the open: the first block and those ahead of it; the read: its block and those ahead
    assert replies.blocks <= 2 * (1 + AHEAD_BLOCKS), replies.blocks

    replies.reset()
    client = fs.client
    assert client.read_bytes(PATH, MID, 4096) == big[MID:MID + 4096]
    assert client.open_read(PATH).read_range(MID, 4096) == big[MID:MID + 4096]
    assert b"".join(client.open_read(PATH).iter_range(MID, 4096)) == big[MID:MID + 4096]
    assert replies.blocks <= 1 + 2 * 2 * (1 + AHEAD_BLOCKS), replies.blocks

    # a range across blocks, and ranges of one file (one reader for all of them)
    replies.reset()
    lo, hi = MID - BS, MID + 2 * BS
    assert fs.cat_file(PATH, lo, hi) == big[lo:hi]
    assert replies.blocks == 4
    replies.reset()
    got = fs.cat_ranges([PATH] * 3, [MID, MID + 2 * BS, MID + BS], [MID + 10, MID + 2 * BS + 10, MID + BS + 10])
    assert got == [big[MID:MID + 10], big[MID + 2 * BS:MID + 2 * BS + 10], big[MID + BS:MID + BS + 10]]
    # one call for the file: the blocks from its first range to its last (fsspec_audit)
    assert replies.calls == 1 and replies.blocks == 3, replies.blocks
    # counted from the end: the size is not known before the first reply
    replies.reset()
    assert fs.cat_file(PATH, -5000) == big[-5000:]
    assert replies.blocks <= 2 * (1 + AHEAD_BLOCKS), replies.blocks


def test_reads_from_an_offset_to_the_end_ask_first_for_the_blocks_there(fs, replies, big):
    # They opened at offset 0 (its block and those ahead), then asked again for the offset.
    start = len(big) - 3 * BS
    assert fs.cat_file(PATH, start) == big[start:]
    assert replies.calls == 1
    replies.reset()
    assert fs.client.read_bytes(PATH, start) == big[start:]
    for offset, length in ((-5, None), (-5, 10), (5, -1)):   # a protobuf "Value out of range", or b""
        with pytest.raises(errors.InvalidArgumentError, match="offset and length must be >= 0"):
            fs.client.read_bytes(PATH, offset, length)
    assert replies.calls == 1


def test_the_mounts_block_cache_loads_a_few_blocks_for_a_read_in_the_middle(fs, replies, big):
    cache = BlockCache(64 << 20)
    try:
        v = Version(fs.client.open_read(PATH))
        assert cache.read(v, MID, 4096) == big[MID:MID + 4096]
        cache.prefetch(v, MID + 4096, MID + (1 << 20))   # the mount's read-ahead: 1 MiB on
        assert cache.read(v, MID + BS, BS) == big[MID + BS:MID + 2 * BS]
        assert replies.blocks <= 1 + AHEAD_BLOCKS + 1 + AHEAD_BLOCKS + 16 + AHEAD_BLOCKS, replies.blocks
    finally:
        cache.close()


def test_sequential_readers_load_the_blocks_a_window_at_a_time(fs, replies, big):
    with fs.open(PATH, "rb") as f:
        pieces = []
        while piece := f.read(100_000):
            pieces.append(piece)
            # never far ahead of the reader
            assert len(f._chunks.reader.blocks) <= f.tell() // BS + 2 + 2 * AHEAD_BLOCKS
        assert f.chunk_stats["max_fetches_per_chunk"] == 1
    assert b"".join(pieces) == big
    assert replies.blocks <= NBLOCKS + 2 * AHEAD_BLOCKS
    replies.reset()
    assert fs.cat_file(PATH) == big
    assert fs.client.read_bytes(PATH) == big
    assert replies.blocks <= 2 * (NBLOCKS + 2 * AHEAD_BLOCKS), replies.blocks


def test_a_reader_keeps_to_the_file_it_opened_in_blocks_it_loads_later(shared_cluster, fs, big):
    client = fs.client
    client.write_bytes("/window/replaced", big, block_size=BS)
    r = client.open_read("/window/replaced")
    assert r.read_range(0, 10) == big[:10]
    client.write_bytes("/window/replaced", bytes(len(big)), block_size=BS, overwrite=True)
    # Its blocks there were not loaded yet: the new file's are not read in their place.
    with pytest.raises(errors.DfsFileNotFoundError):
        r.read_range(MID, 4096)


def test_a_reader_follows_the_file_it_opened_through_renames(fs, big):
    # Later windows were asked for by path: after a rename of the file, or of a
    # directory above it, the next one said "not found".
    client = fs.client
    client.write_bytes("/ren/d/a", big, block_size=BS)
    r = client.open_read("/ren/d/a")
    assert r.read_range(0, 10) == big[:10]
    client.rename("/ren/d/a", "/ren/d/b")
    assert r.read_range(MID, 4096) == big[MID:MID + 4096]
    with fs.open("/ren/d/b", "rb") as f:
        assert f.read(10) == big[:10]
        fs.mv("/ren/d", "/ren/e", recursive=True)
        f.seek(MID)
        assert f.read(4096) == big[MID:MID + 4096]
    assert r.read_range(len(big) - 100, 100) == big[-100:]


def test_the_mounts_version_reads_on_after_libfuse_hides_its_file(fs, big):
    # libfuse "unlinks" an open file by renaming it to .fuse_hidden...: open, rm, read on.
    client = fs.client
    client.write_bytes("/ren/m/a", big, block_size=BS)
    cache = BlockCache(64 << 20)
    try:
        v = Version(client.open_read("/ren/m/a"))
        assert cache.read(v, 0, 10) == big[:10]
        client.rename("/ren/m/a", "/ren/m/.fuse_hidden0001")
        assert cache.read(v, MID, 4096) == big[MID:MID + 4096]
    finally:
        cache.close()


def test_a_reader_of_a_deleted_file_says_it_changed(fs, big):
    client = fs.client
    client.write_bytes("/ren/gone", big, block_size=BS)
    r = client.open_read("/ren/gone")
    assert r.read_range(0, 10) == big[:10]
    client.delete("/ren/gone")
    client.write_bytes("/ren/gone", bytes(len(big)), block_size=BS)     # another in its place
    with pytest.raises(errors.DfsFileNotFoundError, match="file changed while being read"):
        r.read_range(MID, 4096)


def test_locality_hints_still_list_the_range_asked_for(fs, big):
    assert len(fs.get_block_locations(PATH)) == NBLOCKS
    part = fs.get_block_locations(PATH, start=MID, length=2 * BS)
    assert [b["offset"] for b in part] == [(NBLOCKS // 2 + i) * BS for i in range(3)]
