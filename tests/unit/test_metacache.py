"""MetaCache (the FUSE mount's attribute cache): which lookups cost namenode calls."""

from __future__ import annotations

import pytest

from dfs import errors
from dfs.model import FileStatus
from dfs_fuse import meta
from dfs_fuse.meta import MetaCache


def d(path: str, children: int = 0, subdirs: int = 0) -> FileStatus:
    return FileStatus(path=path, type="directory", size=0, replication=0, block_size=0, mode=0o755,
                      owner="u", group="g", mtime=1.0, children=children, subdirs=subdirs)


def f(path: str) -> FileStatus:
    return FileStatus(path=path, type="file", size=3, replication=3, block_size=1 << 20, mode=0o644,
                      owner="u", group="g", mtime=1.0)


class FakeClient:
    """A namespace of /big (too many entries to list), /dir with files f0..f4 and
    a subdirectory; counts the calls."""

    def __init__(self):
        self.tree = {"/dir": d("/dir", 6, 1), "/dir/sub": d("/dir/sub"),
                     "/big": d("/big", meta.PREFETCH_LIMIT + 1), "/big/x": f("/big/x")}
        self.tree.update({f"/dir/f{i}": f(f"/dir/f{i}") for i in range(5)})
        self.stats: list[str] = []
        self.lists: list[str] = []

    def stat(self, path):
        self.stats.append(path)
        if path not in self.tree:
            raise errors.DfsFileNotFoundError(path=path)
        return self.tree[path]

    def listdir(self, path):
        self.lists.append(path)
        return [st for p, st in self.tree.items() if p.rpartition("/")[0] == path]


def test_a_file_found_by_lookup_brings_its_siblings_in_one_listing():
    c = FakeClient()
    cache = MetaCache(c, ttl=60)
    assert cache.get("/dir").is_dir
    assert cache.get("/dir/f0").size == 3
    for i in range(1, 5):
        cache.get(f"/dir/f{i}")
    assert c.stats == ["/dir", "/dir/f0"] and c.lists == ["/dir"]
    cache.get("/dir/f0")   # still fresh: no second listing within ttl
    assert c.lists == ["/dir"]


def test_lookups_of_absent_names_never_list_the_directory():
    c = FakeClient()
    cache = MetaCache(c, ttl=60)
    cache.get("/dir")
    for i in range(20):   # a directory being filled: every new name is looked up first
        with pytest.raises(errors.DfsFileNotFoundError):
            cache.get(f"/dir/new{i}")
    assert c.lists == [] and len(c.stats) == 21


def test_big_directories_and_strict_mode_are_not_listed():
    c = FakeClient()
    cache = MetaCache(c, ttl=60)
    cache.get("/big")
    cache.get("/big/x")
    assert c.lists == []
    strict = MetaCache(FakeClient(), ttl=0)
    strict.get("/dir")
    strict.get("/dir/f0")
    assert strict.client.lists == []


def test_link_count_comes_from_the_namenodes_subdirectory_count():
    c = FakeClient()
    cache = MetaCache(c, ttl=60)
    assert MetaCache.nlink(cache.get("/dir")) == 3
    assert c.lists == []                               # no listing to count subdirectories
    assert MetaCache.nlink(cache.get("/dir/f0")) == 1
    cache.added("/dir/sub2", d("/dir/sub2"))          # our own mkdir patches the cached parent
    assert MetaCache.nlink(cache.get("/dir")) == 4
    cache.removed("/dir/sub2", is_dir=True)
    cache.put("/dir", c.tree["/dir"])
    assert MetaCache.nlink(cache.get("/dir")) == 3


@pytest.mark.parametrize("name, numeric", [
    ("0", True), ("1000", True), ("4294967294", True),
    ("4294967295", False), ("4294967296", False), ("18446744073709551616", False),   # wrapped to root
    ("00001", False), ("²", False), ("٣", False), ("-1", False), ("", False)])
def test_only_plain_ascii_numbers_below_minus_one_are_ids(name, numeric):
    ids = meta.Ids("root")
    got = ids.uid_of(name), ids.gid_of(name)   # '²' raised from int(): EIO on every call
    assert got == ((int(name), int(name)) if numeric else (ids.uid, ids.gid))
