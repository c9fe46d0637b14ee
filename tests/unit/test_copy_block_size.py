"""A file whose blocks are over today's limit (config.MAX_BLOCK_SIZE, 2 GiB; a namenode
took any block size before) can still be rewritten by the mount and copied by `dfs cp`
and fsspec: the new file asked for the source's block size, which DfsClient.create now
refuses, so every change or copy of it failed. Fakes only: no cluster, no 2 GiB."""

from __future__ import annotations

import dataclasses
import os

from dfs import config
from dfs.cli import transfer
from dfs.client.filesystem import DFSFileSystem
from dfs.model import FileStatus
from dfs.rpc import convert

HUGE = 4 << 30


def _status(path: str, size: int = 5) -> FileStatus:
    return FileStatus(path=path, type="file", size=size, replication=2, block_size=HUGE, mode=0o644,
                      owner="u", group="g", mtime=1.0, inode_id=9)


def _checked(kw: dict) -> int:
    """What DfsClient.create checks of a block size (0: the namenode's default)."""
    assert not kw.get("block_size") or not config.block_size_problem(kw["block_size"]), kw
    return kw.get("block_size", 0)


def test_the_block_size_of_a_copy_is_the_sources_up_to_the_limit():
    assert config.block_size_of_copy(HUGE) == config.MAX_BLOCK_SIZE
    assert config.block_size_of_copy(64 << 20) == 64 << 20 and config.block_size_of_copy(0) == 0


def test_the_mount_rewrites_such_a_file(tmp_path):
    from tests.unit.test_openfile_versions import PATH, FakeNamenode, open_file

    nn = FakeNamenode()
    st = nn.put(PATH, b"base\n")
    nn.files[PATH] = (dataclasses.replace(st, block_size=HUGE), b"base\n")
    create = nn.create
    nn.create = lambda path, **kw: (_checked(kw), create(path, **kw))[1]
    of = open_file(nn, tmp_path)
    of.write(of.size, b"more\n")
    of.commit()
    assert nn.files[PATH][1] == b"base\nmore\n"


class _Reader:
    def __init__(self, st):
        self.status = st

    def iter_range(self):
        yield b"hello"


class _Writer:
    def write(self, data):
        pass

    def close(self):
        return convert.status_to_pb(_status("/dst"))


class _Client:
    def __init__(self):
        self.made = []

    def open_read(self, path):
        return _Reader(_status(path))

    def write_pieces(self, pieces, path, **kw):
        self.made.append((path, _checked(kw)))
        for _ in pieces:
            pass

    def create(self, path, **kw):
        self.made.append((path, _checked(kw)))
        return _Writer()


def test_dfs_cp_copies_such_a_file():
    client = _Client()
    transfer._copy_file(client, client, "/src", "/dst", _status("/src"), force=False, progress=_NoProgress())
    assert client.made == [("/dst", config.MAX_BLOCK_SIZE)]


def test_fsspec_copies_such_a_file():
    fs = DFSFileSystem(namenode="127.0.0.1:1", skip_instance_cache=True)
    fs._client_pid, fs._client_obj = os.getpid(), _Client()
    fs.cp_file("/src", "/dst")
    assert fs._client_obj.made == [("/dst", config.MAX_BLOCK_SIZE)]


class _NoProgress:
    def update(self, n):
        pass

    def close(self):
        pass
