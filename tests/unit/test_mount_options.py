"""`-o` options of `dfs mount` / `python -m dfs_fuse` (fuse/dfs_fuse/mount.py): pure, no mount."""

from __future__ import annotations

import pytest

from dfs.cli.args import UsageError
from dfs_fuse.mount import MountOptions, parse_option_strings


def parse(*groups: str) -> MountOptions:
    return MountOptions.parse(parse_option_strings(list(groups)))


def test_values_and_flags():
    o = parse("ro,cache_size=64MiB,readahead=1M", "write_buffer=0,direct_read=2G,read_ahead_kb=0",
              "attr_timeout=2.5,entry_timeout=0,cache_dir=/var/tmp/x,nostream,writeback,debug,max_read=4096")
    assert o.readonly and not o.streaming and o.writeback and o.debug
    assert (o.cache_size, o.readahead, o.write_buffer, o.direct_read) == (64 << 20, 1 << 20, 0, 2 << 30)
    assert (o.read_ahead_kb, o.attr_timeout, o.entry_timeout, o.cache_dir) == (0, 2.5, 0.0, "/var/tmp/x")
    assert o.fuse == {"max_read": "4096"}           # unknown options go to libfuse as they are
    assert parse("strict").attr_timeout == 0.0 and parse("page_cache").direct_read == 0
    assert parse().cache_dir                        # a default spill directory


@pytest.mark.parametrize("opt, words", [
    ("cache_size=abc", "invalid mount option cache_size=abc"),
    ("cache_size=-1", "invalid mount option cache_size=-1"),
    ("readahead=1.5M", "invalid mount option readahead=1.5M"),
    ("write_buffer=12XB", "invalid mount option write_buffer"),
    ("direct_read=", "mount option direct_read needs a value"),
    ("cache_size", "mount option cache_size needs a value"),
    ("read_ahead_kb=-4", "invalid mount option read_ahead_kb=-4"),
    ("read_ahead_kb=lots", "invalid mount option read_ahead_kb"),
    ("attr_timeout=-1", "invalid mount option attr_timeout=-1"),
    ("entry_timeout=nan", "invalid mount option entry_timeout=nan"),
    ("attr_timeout=inf", "invalid mount option attr_timeout=inf"),
    ("cache_dir=", "mount option cache_dir needs a value"),
    ("ro=1", "mount option ro takes no value"),
    ("debug=yes", "mount option debug takes no value"),
    ("=5", "empty mount option name"),
])
def test_bad_values_are_usage_errors(opt, words):
    with pytest.raises(UsageError, match=words) as e:
        parse(opt)
    assert "\n" not in str(e.value)


def test_a_cache_dir_that_is_a_file_or_under_one_is_a_usage_error(tmp_path):
    """`dfs mount` said only "<path>: File exists" (exit 1), from os.makedirs."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    for bad in (afile, afile / "sub"):
        with pytest.raises(UsageError, match=rf"invalid mount option cache_dir={bad} \(not a directory\)"):
            parse(f"cache_dir={bad}")
    for good in (tmp_path, tmp_path / "new" / "sub"):
        assert parse(f"cache_dir={good}").cache_dir == str(good)
