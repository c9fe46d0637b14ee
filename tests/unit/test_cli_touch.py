"""touch racing another client's touch of the same new name, without a cluster."""

from __future__ import annotations

import os
from types import SimpleNamespace

from dfs import errors
from dfs.cli import fs as cli_fs
from dfs.client.filesystem import DFSFileSystem


class MadeMeanwhile:
    """A client that finds no file at stat, and another client's file at create."""

    def __init__(self):
        self.touched = []
        self.set_times_calls = 0

    def stat(self, path):
        raise errors.DfsFileNotFoundError(path=path)

    def create(self, path, **kw):
        raise errors.DfsFileExistsError(path=path)

    def set_times(self, path, mtime):
        self.set_times_calls += 1
        if self.set_times_calls == 1 and getattr(self, "first_missing", False):
            raise errors.DfsFileNotFoundError(path=path)
        self.touched.append(path)


def test_cli_touch_of_a_name_made_meanwhile_touches_it(monkeypatch):
    client = MadeMeanwhile()
    monkeypatch.setattr(cli_fs, "resolve", lambda args, p: (client, p))
    assert cli_fs.cmd_touch(SimpleNamespace(path="/t/x")) == 0
    assert client.touched == ["/t/x"]


def test_fsspec_touch_without_truncate_of_a_name_made_meanwhile_touches_it():
    fs = DFSFileSystem.__new__(DFSFileSystem)    # no cluster: only touch's own logic
    client = MadeMeanwhile()
    client.first_missing = True
    fs.__dict__.update(_client_pid=os.getpid(), _client_obj=client, _intrans=False)
    fs.touch("/t/x", truncate=False)
    assert client.touched == ["/t/x"]
