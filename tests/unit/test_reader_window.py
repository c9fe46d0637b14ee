"""FileReader loads block locations a window at a time (dfs/client/reader.py): what it
asks the namenode for, and how the windows it got are kept. A fake namenode; no data."""

from __future__ import annotations

import pytest

from dfs import errors
from dfs.client.reader import AHEAD_BLOCKS, FileReader
from dfs.rpc.v1 import common_pb2 as cpb
from dfs.rpc.v1 import namenode_pb2 as pb

BS = 100
N = 50


class FakeNamenode:
    """A file of N blocks of BS bytes; answers GetBlockLocations as the namenode does."""

    def __init__(self):
        self.inode = 7
        self.asked: list[tuple[int, int, int]] = []
        self.located = 0

    def call(self, method, req, **kw):
        assert method == "GetBlockLocations" and not req.all
        self.asked.append((req.offset, req.length, req.ahead))
        end, ahead, out = req.offset + req.length, req.ahead, []
        for i in range(N):
            off = i * BS
            if off >= end:
                if ahead == 0:
                    break
                ahead -= 1
            elif off + BS <= req.offset:
                continue
            out.append(cpb.LocatedBlock(block=cpb.Block(block_id=100 + i, length=BS), offset=off,
                                        locations=[cpb.DatanodeInfo(address=f"h{(i + k) % 3}:1") for k in range(3)]))
        self.located += len(out)
        return pb.GetBlockLocationsReply(status=cpb.FileStatus(inode_id=self.inode, length=N * BS),
                                         blocks=out, key=cpb.FileKey(chunk_size=BS))


def reader(**kw) -> tuple[FileReader, FakeNamenode]:
    nn = FakeNamenode()
    client = type("Client", (), {"nn": nn})()
    return FileReader(client, "/f", pool=None, **kw), nn


def ids(blocks) -> list[int]:
    return [b.block.block_id - 100 for b in blocks]


def test_an_open_loads_the_first_block_and_those_ahead_and_a_range_only_its_own():
    r, nn = reader()
    assert ids(r.blocks) == list(range(1 + AHEAD_BLOCKS))
    r, nn = reader(start=25 * BS + 3, length=2 * BS)
    assert ids(r.blocks) == [25, 26, 27] and nn.asked == [(25 * BS + 3, 2 * BS, 0)]


def test_reads_outside_the_loaded_blocks_load_theirs_and_those_ahead_once():
    r, nn = reader(start=0, length=1)
    assert ids(r.blocks_in(30 * BS, 31 * BS + 1)) == [30, 31]
    assert ids(r.blocks) == [0, *range(30, 32 + AHEAD_BLOCKS)]     # two runs
    assert ids(r.blocks_in(35 * BS, 36 * BS)) == [35]               # read ahead: no call
    assert len(nn.asked) == 2
    # a range across the gap asks for the gap only (the blocks after it are loaded)
    assert ids(r.blocks_in(BS - 1, 31 * BS)) == list(range(31))
    assert nn.asked[-1] == (BS, 30 * BS - BS, 0)
    assert ids(r.blocks) == list(range(32 + AHEAD_BLOCKS))
    assert r.block_at(N * BS - 1).block.block_id == 100 + N - 1
    assert nn.located < 2 * N
    assert r.loaded_until(10 * BS, 1000 * BS) == (32 + AHEAD_BLOCKS) * BS     # then a gap
    assert r.loaded_until(10 * BS, 20 * BS) == 20 * BS
    assert r.blocks_in(N * BS, N * BS + 5) == []


def test_a_refresh_replaces_the_blocks_it_reloads_and_keeps_to_the_file():
    r, nn = reader()
    old = r.blocks[3]
    fresh = r._refresh(old)
    assert fresh is not old and fresh.block.block_id == old.block.block_id
    assert r._find(old) is fresh and ids(r.blocks) == list(range(4 + AHEAD_BLOCKS))
    nn.inode = 8                          # replaced by another file
    with pytest.raises(errors.DfsFileNotFoundError):
        r.blocks_in(40 * BS, 41 * BS)


def test_preferred_hosts_come_first_in_blocks_loaded_later():
    r, _ = reader(start=0, length=1)
    r.prefer(["h2"])
    assert all(b.locations[0].address == "h2:1" for b in r.blocks_in(0, 10 * BS))


def test_cat_ranges_loads_one_span_per_file():
    from dfs.client.filesystem import _span
    to_end = 1 << 62
    assert _span([(10, 20), (500, 600), (100, 120)]) == (10, 590)
    assert _span([(None, 20)]) == (0, 20)
    assert _span([(30, None), (10, 20)]) == (10, to_end - 10)      # to the end
    assert _span([(30, -5)]) == (30, to_end - 30)
    assert _span([(-100, None), (30, 40)]) == (0, to_end)          # counted from the end
    assert _span([(-100, 50)]) == (0, 50)
    assert _span([(5, 3), (40, 50)]) == (40, 10)                  # empty ones do not count
    assert _span([(5, 3)]) == (0, 0)
