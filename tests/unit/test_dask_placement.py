"""Where dfs.dask places a split's task, without a cluster."""

from __future__ import annotations

from dfs.dask import _best_hosts, _ranked_hosts, _split

B = 100


def blocks(*holders):
    return [{"offset": i * B, "length": B, "hosts": list(h)} for i, h in enumerate(holders)]


def test_a_multi_block_split_is_placed_on_the_host_holding_most_of_it():
    # 10 blocks: .13 holds all, .14 six, .15 four. Placed by all three (a Dask
    # restriction is a set), it ran on .15 or .14, never on .13.
    bs = blocks(*[("h13", "h14")] * 6, *[("h13", "h15")] * 4)
    s = _split("/f.gz", bs, "gzip")
    assert s.hosts == ("h13", "h14", "h15") and s.best == ("h13",)
    assert (s.offset, s.length, s.compression) == (0, 10 * B, "gzip")


def test_hosts_holding_as_much_are_all_best():
    bs = blocks(("a", "b", "c"), ("b", "a", "c"))
    assert set(_best_hosts(bs, 0, 2 * B)) == {"a", "b", "c"}
    assert _best_hosts(bs, 0, B // 2) == _ranked_hosts(bs, 0, B // 2)
    assert _best_hosts([], 0, 0) == ()


class OneFile:
    """Enough of a DFSFileSystem for splits(): one 3-block file."""

    def _strip_protocol(self, p):
        return p

    def isdir(self, p):
        return False

    def get_block_locations_many(self, files):
        return {f: blocks(("a",), ("b",), ("c",)) for f in files}


def test_blocksize_takes_sizes_as_dask_does_and_refuses_nonsense():
    import pytest

    from dfs.dask import splits
    fs = OneFile()
    assert [s.length for s in splits(fs, "/f", "150B")] == [2 * B, B]
    assert [s.length for s in splits(fs, "/f", 50.0)] == [50] * 6
    for bad in (-1, 0, "lots", 1.5, True):
        with pytest.raises(ValueError):
            splits(fs, "/f", bad)


def test_an_ipv6_block_host_matches_the_worker_on_it():
    # Block locations name an IPv6 datanode's host "[::1]" (the host part of
    # "[::1]:9866"), the scheduler a worker's host "::1": resolving "[::1]" failed and
    # the two never compared equal, so no IPv6 block was ever placed on its host.
    from dfs.dask import _Placement
    place = _Placement({"tcp://[::1]:40001": {"host": "::1", "name": 0},
                        "tcp://127.0.0.3:40002": {"host": "127.0.0.3", "name": "dn3"}})
    assert place.hosts_for(["[::1]"]) == ["::1"]
    assert place.hosts_for(["[0:0::1]", "127.0.0.3"]) == ["::1", "127.0.0.3"]
    assert place.restrict(["[::1]"]) == {"workers": ["::1"], "allow_other_workers": True}
    assert place.hosts_for(["dn3"]) == ["127.0.0.3"]                    # by the worker's name
    assert place.hosts_for(["[::2]", "[fe80::1]"]) == [] and place.restrict(["[::2]"]) == {}


def test_a_worker_prefers_its_own_ipv6_replica():
    from dfs.client.reader import _put_first
    from dfs.rpc.v1 import common_pb2 as cpb
    block = cpb.LocatedBlock(locations=[cpb.DatanodeInfo(address=a) for a in
                                        ("127.0.0.2:9866", "[::2]:9866", "[::1]:9867")])
    _put_first(block, {"::1"})          # a Dask worker's host, as _worker_host gives it
    assert block.locations[0].address == "[::1]:9867"
