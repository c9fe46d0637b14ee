"""FilePool: deleted replica files are emptied and their inodes reused."""

from __future__ import annotations

import os

import pytest

from dfs.datanode.filepool import FilePool


def write(pool: FilePool, path: str, data: bytes) -> int:
    fd = pool.open_new(path, os.O_WRONLY)
    try:
        os.write(fd, data)
        return os.fstat(fd).st_ino
    finally:
        os.close(fd)


def test_recycled_inode_is_reused_empty(tmp_path):
    pool = FilePool(str(tmp_path / "spare"))
    a = str(tmp_path / "a")
    ino = write(pool, a, b"x" * 10000)
    pool.recycle(a)
    assert not os.path.exists(a) and len(pool) == 1
    (spare,) = os.listdir(tmp_path / "spare")
    assert os.path.getsize(tmp_path / "spare" / spare) == 0   # its blocks are freed at once
    b = str(tmp_path / "b")
    assert write(pool, b, b"new") == ino
    with open(b, "rb") as f:
        assert f.read() == b"new"
    assert len(pool) == 0


def test_new_file_when_pool_is_empty_and_exclusive(tmp_path):
    pool = FilePool(str(tmp_path / "spare"))
    a = str(tmp_path / "a")
    write(pool, a, b"1")
    with pytest.raises(FileExistsError):
        pool.open_new(a, os.O_WRONLY)


def test_limit_unlinks_beyond_it(tmp_path):
    pool = FilePool(str(tmp_path / "spare"), limit=2)
    paths = [str(tmp_path / f"f{i}") for i in range(4)]
    for p in paths:
        write(pool, p, b"data")
    for p in paths:
        pool.recycle(p)
    assert not any(os.path.exists(p) for p in paths)
    assert len(pool) == 2 and len(os.listdir(tmp_path / "spare")) == 2


def test_recycle_missing_file_raises(tmp_path):
    pool = FilePool(str(tmp_path / "spare"))
    with pytest.raises(FileNotFoundError):
        pool.recycle(str(tmp_path / "nothing"))


def test_restart_empties_what_a_crash_left_and_keeps_numbering(tmp_path):
    d = tmp_path / "spare"
    d.mkdir()
    (d / "7").write_bytes(b"left by a crash between rename and truncate")
    (d / "junk").write_bytes(b"")      # not one of ours: ignored
    pool = FilePool(str(d))
    assert len(pool) == 1 and os.path.getsize(d / "7") == 0
    a = str(tmp_path / "a")
    write(pool, a, b"x")
    b = str(tmp_path / "b")
    write(pool, b, b"y")
    pool.recycle(a)
    pool.recycle(b)
    assert sorted(os.listdir(d)) == ["8", "9", "junk"]


def test_refused_flags_leave_no_file_behind(tmp_path):
    pool = FilePool(str(tmp_path / "spare"))
    a = str(tmp_path / "a")
    write(pool, a, b"x")
    pool.recycle(a)
    with pytest.raises(OSError):
        pool.open_new(str(tmp_path / "a2"), os.O_WRONLY | os.O_DIRECTORY)
    assert not os.path.exists(tmp_path / "a2")
    write(pool, str(tmp_path / "a2"), b"ok")     # the ordinary way still works
