"""A malformed namenode in a dfs:// URL or namenode= is a ValueError at once."""

from __future__ import annotations

import time

import fsspec
import pytest

from dfs.client.filesystem import DFSFileSystem


@pytest.mark.parametrize("bad", ["127.0.96.200:abc", "127.0.96.200:0", "127.0.96.200:70000", ":8020",
                                 "host:80:90", "[::1", "a b:8020"])
def test_a_malformed_namenode_is_a_value_error_before_any_connection(bad):
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="namenode"):
        fsspec.core.url_to_fs(f"dfs://{bad}/x.csv")
    with pytest.raises(ValueError, match="namenode"):
        DFSFileSystem(namenode=bad, skip_instance_cache=True)
    assert time.monotonic() - t0 < 1     # not the client's retries (7.5 s)


@pytest.mark.parametrize("given,canonical", [("nn1:9000", "nn1:9000"), ("nn1", "nn1:8020"),
                                             ("dfs://nn1:9000/", "nn1:9000"), ("[::1]:9000", "[::1]:9000"),
                                             ("nn1:9000/", "nn1:9000")])
def test_good_namenodes_are_canonical(given, canonical):
    assert DFSFileSystem(namenode=given, skip_instance_cache=True).namenode == canonical
