"""The FUSE mount's block cache (fuse/dfs_fuse/cache.py): a read-ahead run hands each
chunk to its waiters as soon as it is decoded, not when the whole run is in, and a
fetch that fails part-way fails only the chunks it did not deliver. Pure: a fake
reader yields chunks when the test lets it; no cluster, no mount."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from dfs import errors
from dfs.client.reader import AHEAD_BLOCKS, FileReader
from dfs.model import FileStatus
from dfs.rpc import convert
from dfs.rpc.v1 import common_pb2 as cpb
from dfs.rpc.v1 import namenode_pb2 as pb
from dfs_fuse.cache import BlockCache, Version

CHUNK = 1024
CHUNKS = 8


class GatedReader:
    """One block of CHUNKS chunks; chunk i is yielded once ``gates[i]`` is set."""

    def __init__(self, fail_at: int | None = None):
        self.path = "/f"
        self.size = CHUNK * CHUNKS
        self.chunk_size = CHUNK
        self.status = convert.status_to_pb(FileStatus(path="/f", type="file", size=self.size, replication=3,
                                                       block_size=self.size, mode=0o644, owner="u", group="g",
                                                       mtime=0.0))
        self.blocks = [SimpleNamespace(offset=0, block=SimpleNamespace(block_id=7, length=self.size))]
        self.gates = [threading.Event() for _ in range(CHUNKS)]
        self.fail_at = fail_at
        self.calls: list[tuple[int, int, int]] = []

    def block_at(self, offset):
        return self.blocks[0]

    def loaded_until(self, start, limit):
        return min(limit, self.size)

    def fetch_chunks(self, block_offset, first, last):
        self.calls.append((block_offset, first, last))
        for i in range(first, last + 1):
            assert self.gates[i].wait(10), "test never released the chunk"
            if i == self.fail_at:
                raise errors.BlockMissingError("no readable replica", "/f")
            yield bytes([i]) * CHUNK


def test_first_chunk_of_a_run_reaches_its_reader_before_the_run_ends():
    reader = GatedReader()
    cache = BlockCache(64 * CHUNK)
    try:
        v = Version(reader)
        cache.prefetch(v, 0, v.size)
        reader.gates[0].set()
        got = {}
        t = threading.Thread(target=lambda: got.update(data=cache.read(v, 0, CHUNK)))
        t.start()
        t.join(5)
        # Chunks 1.. are still held back: the reader of chunk 0 must not wait for them.
        assert not t.is_alive() and got["data"] == b"\0" * CHUNK
        for g in reader.gates:
            g.set()
        assert cache.read(v, 0, v.size) == b"".join(bytes([i]) * CHUNK for i in range(CHUNKS))
        assert reader.calls == [(0, 0, CHUNKS - 1)]     # one request for the run, none after
    finally:
        cache.close()


def test_a_fetch_failing_part_way_keeps_what_it_delivered_and_fails_the_rest():
    reader = GatedReader(fail_at=3)
    cache = BlockCache(64 * CHUNK)
    try:
        v = Version(reader)
        cache.prefetch(v, 0, v.size)
        for g in reader.gates:
            g.set()
        with pytest.raises(errors.BlockMissingError):
            cache.read(v, 3 * CHUNK, CHUNK)          # waited on the failed fetch: its error
        calls = len(reader.calls)
        assert cache.read(v, CHUNK, CHUNK) == b"\1" * CHUNK   # delivered before the failure: cached
        assert len(reader.calls) == calls
        reader.fail_at = None
        assert cache.read(v, 3 * CHUNK, CHUNK) == b"\3" * CHUNK   # nobody waits forever: fetched anew
    finally:
        cache.close()


class NamenodeDownAfterOpen:
    """A file of BLOCKS blocks of CHUNKS chunks; answers the open's GetBlockLocations (the
    first block and AHEAD_BLOCKS more), then is unreachable."""

    BLOCKS = 30

    def __init__(self):
        self.calls = 0

    def call(self, method, req, **kw):
        self.calls += 1
        if self.calls > 1:
            raise errors.DfsError("namenode unreachable")
        bs = CHUNK * CHUNKS
        n = min(self.BLOCKS, req.offset // bs + 1 + req.ahead)
        return pb.GetBlockLocationsReply(
            status=cpb.FileStatus(inode_id=7, length=self.BLOCKS * bs),
            blocks=[cpb.LocatedBlock(block=cpb.Block(block_id=100 + i, length=bs), offset=i * bs)
                    for i in range(req.offset // bs, n)],
            key=cpb.FileKey(chunk_size=CHUNK))


def test_read_ahead_goes_as_far_as_the_loaded_blocks_and_never_asks_the_namenode():
    # It asked for the locations of its whole window on the reading thread: a read whose
    # own blocks were loaded waited for that call, or failed with it.
    nn = NamenodeDownAfterOpen()
    r = FileReader(type("Client", (), {"nn": nn})(), "/f", pool=None)
    r.fetch_chunks = lambda boff, first, last: (bytes([boff // (CHUNK * CHUNKS)]) * CHUNK
                                                for _ in range(first, last + 1))
    loaded = (1 + AHEAD_BLOCKS) * CHUNK * CHUNKS
    cache = BlockCache(1 << 20)
    try:
        v = Version(r)
        assert cache.prefetch(v, CHUNK, v.size) == loaded
        assert cache.read(v, loaded - CHUNK, CHUNK) == bytes([AHEAD_BLOCKS]) * CHUNK
        assert nn.calls == 1
        assert cache.prefetch(v, loaded, v.size) == loaded      # nothing loaded there: nothing
        with pytest.raises(errors.DfsError):
            cache.read(v, loaded, CHUNK)          # a read of its own does ask (and fails)
    finally:
        cache.close()
