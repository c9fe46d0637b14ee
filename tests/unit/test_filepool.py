"""FilePool: deleted replica files are emptied and their inodes reused."""

from __future__ import annotations

import os
import threading
import time

import pytest

from dfs.datanode.filepool import FilePool, refill_count


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
    assert not os.path.exists(a)                  # out of its directory at once
    assert pool.settle(10) and len(pool) == 1
    (spare,) = os.listdir(tmp_path / "spare")
    assert os.path.getsize(tmp_path / "spare" / spare) == 0   # its blocks are freed
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
    assert pool.settle(10)
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
    assert pool.settle(10)
    assert len(pool) == 1 and os.path.getsize(d / "7") == 0
    a = str(tmp_path / "a")
    write(pool, a, b"x")
    b = str(tmp_path / "b")
    write(pool, b, b"y")
    pool.recycle(a)
    pool.recycle(b)
    assert pool.settle(10)
    assert sorted(os.listdir(d)) == ["8", "9", "junk"]


def test_refused_flags_leave_no_file_behind(tmp_path):
    pool = FilePool(str(tmp_path / "spare"))
    a = str(tmp_path / "a")
    write(pool, a, b"x")
    pool.recycle(a)
    assert pool.settle(10)
    with pytest.raises(OSError):
        pool.open_new(str(tmp_path / "a2"), os.O_WRONLY | os.O_DIRECTORY)
    assert not os.path.exists(tmp_path / "a2")
    write(pool, str(tmp_path / "a2"), b"ok")     # the ordinary way still works


def test_recycle_leaves_the_emptying_to_the_keeper(tmp_path, monkeypatch):
    """A big replica's truncation can wait seconds for its writeback; the caller
    (the datanode's heartbeat thread) must not: it only renames."""
    pool = FilePool(str(tmp_path / "spare"))
    a = str(tmp_path / "a")
    write(pool, a, b"x" * 100_000)
    release = threading.Event()
    real_truncate = os.truncate
    def slow_truncate(path, length):
        assert threading.current_thread().name == "spare-keeper"
        release.wait(10)
        real_truncate(path, length)
    monkeypatch.setattr(os, "truncate", slow_truncate)
    t = time.monotonic()
    pool.recycle(a)
    assert time.monotonic() - t < 1.0 and not os.path.exists(a)
    assert not pool.settle(0.2) and len(pool) == 0    # not reusable until emptied
    release.set()
    assert pool.settle(10) and len(pool) == 1
    (spare,) = os.listdir(tmp_path / "spare")
    assert os.path.getsize(tmp_path / "spare" / spare) == 0
    pool.close()


# -- the stock of ready-made empty files ---------------------------------

def test_refill_rule():
    assert refill_count(0, 0) == 0              # no stock wanted: never
    assert refill_count(0, 8) == 8
    assert refill_count(3, 8) == 5              # below half: fill up
    assert refill_count(4, 8) == 0              # half left: not yet
    assert refill_count(9, 8) == 0              # recycled spares count as stock


def wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_stock_is_made_at_start_and_new_files_take_it(tmp_path):
    d = tmp_path / "spare"
    pool = FilePool(str(d), stock=8)
    try:
        wait_for(lambda: len(pool) == 8)
        assert all(os.path.getsize(d / n) == 0 for n in os.listdir(d))
        stocked = {os.stat(d / n).st_ino for n in os.listdir(d)}
        a = str(tmp_path / "a")
        assert write(pool, a, b"x") in stocked         # no new inode on the write's path
        assert len(os.listdir(d)) == 7
    finally:
        pool.close()


def test_stock_refills_below_half_only(tmp_path):
    d = tmp_path / "spare"
    pool = FilePool(str(d), stock=8)
    try:
        wait_for(lambda: len(pool) == 8)
        for i in range(4):
            write(pool, str(tmp_path / f"f{i}"), b"x")
        time.sleep(0.2)
        assert len(pool) == 4 and pool.made == 8      # half left: nothing made
        write(pool, str(tmp_path / "f4"), b"x")
        wait_for(lambda: len(pool) == 8)             # below half: filled up again
        assert pool.made == 8 + 5 and len(os.listdir(d)) == 8
    finally:
        pool.close()


def test_stock_counts_recycled_and_restart_takes_it(tmp_path):
    d = tmp_path / "spare"
    pool = FilePool(str(d), stock=4)
    wait_for(lambda: len(pool) == 4)
    pool.close()
    again = FilePool(str(d), stock=4)   # a restart: the stock on disk is the stock
    try:
        time.sleep(0.2)
        assert len(again) == 4 and again.made == 0
        names = set(os.listdir(d))
        write(again, str(tmp_path / "a"), b"x")
        assert set(os.listdir(d)) < names
    finally:
        again.close()


def test_fill_is_synchronous_and_stock_bounded_by_limit(tmp_path):
    capped = FilePool(str(tmp_path / "capped"), limit=3, stock=10)
    capped.close()
    assert capped.stock == 3
    pool = FilePool(str(tmp_path / "spare"))    # stock 0: no keeper thread
    assert pool.fill() == 0 and len(pool) == 0
    pool.stock = 40
    assert pool.fill() == 40                    # several batches, up to the stock
    assert len(pool) == 40 and pool.fill() == 0
