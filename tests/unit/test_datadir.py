"""The data dir rules (dfs/datadir.py): whose directory it is, one process at a time."""

from __future__ import annotations

import os

import pytest

from dfs import datadir

ID = ("datanode.json", "datanode.json.tmp")


def test_strangers_make_a_directory_somebody_elses():
    assert datadir.strangers([], ID) == []
    assert datadir.strangers(["lost+found", "in_use.lock"], ID) == []         # a fresh file system
    assert datadir.strangers(["datanode.json", "current", "notes"], ID) == []  # ours, whatever else
    assert datadir.strangers(["datanode.json.tmp"], ID) == []                  # we crashed making it
    assert datadir.strangers(["tmp", "current", "lost+found"], ID) == ["current", "tmp"]


def test_foreign_cluster():
    assert datadir.foreign_cluster("CID-a", "") == ""            # a new data dir joins
    assert datadir.foreign_cluster("CID-a", "CID-a") == ""
    assert "belongs to cluster CID-b" in datadir.foreign_cluster("CID-a", "CID-b")


def test_check_and_lock(tmp_path):
    d = tmp_path / "new" / "dir"
    fd = datadir.open_data_dir(str(d), "datanode", ID)             # created, locked
    with pytest.raises(datadir.DataDirError, match="in use by another datanode"):
        datadir.lock(str(d), "datanode")
    (tmp_path / "f").write_text("x")
    with pytest.raises(datadir.DataDirError, match="not a directory"):
        datadir.check(str(tmp_path / "f"), "datanode", ID)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a").write_text("x")
    with pytest.raises(datadir.DataDirError, match=r"not empty \(a\)"):
        datadir.check(str(tmp_path / "junk"), "datanode", ID)
    os.close(fd)
    datadir.lock(str(d), "datanode")                                 # released with its fd
