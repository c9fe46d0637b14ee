"""The FUSE mount's commit check (fuse/dfs_fuse/files.py): a commit built on a version
another client has replaced is refused (ESTALE), never written over it. Pure: a fake
client holds the versions, no cluster, no mount."""

from __future__ import annotations

import errno
import itertools

import pytest

from dfs import errors
from dfs.model import FileStatus
from dfs.rpc import convert
from dfs_fuse.cache import Version
from dfs_fuse.files import FileTable, MountContext, OpenFile
from dfs_fuse.staging import PageBudget

PATH = "/f"


class FakeNamenode:
    """The current version of each path: (status, content); every new version a new id."""

    def __init__(self):
        self.ids = itertools.count(100)
        self.files: dict[str, tuple[FileStatus, bytes]] = {}
        self.content: dict[int, bytes] = {}
        self.stats = 0

    def put(self, path: str, data: bytes) -> FileStatus:
        st = FileStatus(path=path, type="file", size=len(data), replication=1,
                        block_size=1 << 20, mode=0o644, owner="u", group="g",
                        mtime=float(next(self.ids)), inode_id=next(self.ids))
        self.files[path] = (st, data)
        self.content[st.inode_id] = data
        return st

    # -- the DfsClient calls OpenFile makes --
    def stat(self, path):
        self.stats += 1
        if path not in self.files:
            raise errors.DfsFileNotFoundError(path=path)
        return self.files[path][0]

    def open_read(self, path):
        st, data = self.files[path]
        return Reader(st, len(data))

    def create(self, path, **kw):
        return Writer(self, path, kw.get("replaces", 0))

    def check_replaces(self, path, replaces):
        """The namenode's compare-and-swap (Namespace.create/complete)."""
        if replaces and (path not in self.files or self.files[path][0].inode_id != replaces):
            raise errors.StaleVersionError(path=path)


class Reader:
    def __init__(self, st, size):
        self.status, self.size = convert.status_to_pb(st), size
        self.chunk_size, self.blocks = 1 << 20, []


class Writer:
    def __init__(self, nn, path, replaces=0):
        self.nn, self.path, self.data, self.opened = nn, path, b"", False
        self.replaces = replaces

    def open(self):
        self.nn.check_replaces(self.path, self.replaces)
        self.opened = True

    def write(self, data):
        self.data += bytes(data)

    def close(self):
        self.nn.check_replaces(self.path, self.replaces)
        return convert.status_to_pb(self.nn.put(self.path, self.data))

    def abort(self):
        self.data = None


class Cache:
    def __init__(self, nn):
        self.nn = nn

    def read(self, v, off, n):
        return self.nn.content[v.status.inode_id][off:off + n]


class Meta:
    def put(self, path, st):
        pass

    def touched(self, path, mtime):
        pass


@pytest.fixture
def nn():
    return FakeNamenode()


def open_file(nn, tmp_path) -> OpenFile:
    budget = PageBudget(1 << 24, str(tmp_path))
    ctx = MountContext(client=nn, meta=Meta(), cache=Cache(nn), budget=budget, ids=None,
                       streaming=False)
    v = Version(nn.open_read(PATH))
    return OpenFile(ctx, PATH, v.status, v)


def test_a_change_on_a_replaced_version_is_refused_and_the_other_version_stays(nn, tmp_path):
    nn.put(PATH, b"base\n")
    of = open_file(nn, tmp_path)
    of.write(of.size, b"mine\n")
    theirs = nn.put(PATH, b"base\ntheirs\n")           # another client commits meanwhile
    with pytest.raises(errors.StaleVersionError) as ei:
        of.commit()
    assert errors.errno_for(ei.value) == errno.ESTALE
    assert nn.files[PATH] == (theirs, b"base\ntheirs\n")


def test_an_append_to_an_empty_file_is_checked_too(nn, tmp_path):
    nn.put(PATH, b"")
    of = open_file(nn, tmp_path)
    of.write(0, b"mine\n")
    nn.put(PATH, b"theirs\n")
    with pytest.raises(errors.StaleVersionError):
        of.commit()
    assert nn.files[PATH][1] == b"theirs\n"


def test_a_file_removed_elsewhere_is_not_brought_back(nn, tmp_path):
    nn.put(PATH, b"base\n")
    of = open_file(nn, tmp_path)
    of.write(0, b"B")
    del nn.files[PATH]
    with pytest.raises(errors.StaleVersionError):
        of.commit()
    assert PATH not in nn.files


def test_unchanged_base_commits_and_the_next_change_starts_from_the_current_version(nn, tmp_path):
    nn.put(PATH, b"base\n")
    of = open_file(nn, tmp_path)
    of.write(of.size, b"one\n")
    of.commit()
    assert nn.files[PATH][1] == b"base\none\n"
    nn.put(PATH, b"base\none\ntwo\n")                  # after our commit, before our next change
    of.revalidate()
    of.append(b"three\n")
    of.commit()
    assert nn.files[PATH][1] == b"base\none\ntwo\nthree\n"


def test_truncated_to_zero_replaces_whatever_is_there_without_a_check(nn, tmp_path):
    nn.put(PATH, b"base\n")
    of = open_file(nn, tmp_path)
    of.truncate(0)                                      # O_TRUNC
    of.write(0, b"new\n")
    nn.put(PATH, b"theirs\n")
    stats = nn.stats
    of.commit()                                         # the last close wins, as on a local disk
    assert nn.files[PATH][1] == b"new\n" and nn.stats == stats


def test_a_new_open_after_a_failed_close_gets_a_fresh_file(nn, tmp_path):
    nn.put(PATH, b"base\n")
    table = FileTable()
    h1 = table.open(PATH, lambda: open_file(nn, tmp_path), writable=True, append=False)
    h1.of.write(0, b"X")
    nn.put(PATH, b"theirs\n")
    with pytest.raises(errors.StaleVersionError):
        h1.of.commit_at_close()
    with pytest.raises(errors.StaleVersionError):       # the descriptor open then stays failed
        h1.of.write(0, b"Y")
    h2 = table.open(PATH, lambda: open_file(nn, tmp_path), writable=True, append=False)
    assert h2.of is not h1.of and table.get(PATH) is h2.of
    h2.of.write(h2.of.size, b"more\n")
    table.release(h1.fh)                                # the kernel's late release of the old one
    assert table.get(PATH) is h2.of
    h2.of.commit_at_close()
    assert nn.files[PATH][1] == b"theirs\nmore\n"
