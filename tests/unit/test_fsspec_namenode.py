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


@pytest.mark.parametrize("host,port,canonical", [("::1", 9000, "[::1]:9000"), ("[::1]", 9000, "[::1]:9000"),
                                                 ("::1", None, "[::1]:8020"), ("nn1", 9000, "nn1:9000"),
                                                 ("nn1", None, "nn1:8020")])
def test_host_and_port_are_a_namenode_an_ipv6_host_in_brackets(host, port, canonical):
    # host="::1", port=8020 was "::1:8020": a ValueError.
    assert DFSFileSystem(host=host, port=port, skip_instance_cache=True).namenode == canonical


def test_an_ipv6_namenode_url_names_its_filesystem_and_path():
    # fsspec.url_to_fs cuts a URL at "::" (its chaining separator), so "[::1]" only
    # works through DFSFileSystem itself; a v6 address written out in full works both ways.
    url = "dfs://[::1]:9000/x/y.csv"
    fs = DFSFileSystem(**DFSFileSystem._get_kwargs_from_urls(url), skip_instance_cache=True)
    assert (fs.namenode, fs._strip_protocol(url)) == ("[::1]:9000", "/x/y.csv")
    fs, path = fsspec.core.url_to_fs("dfs://[2001:db8:0:0:0:0:0:1]:9000/x", skip_instance_cache=True)
    assert (fs.namenode, path) == ("[2001:db8:0:0:0:0:0:1]:9000", "/x")
