"""DirectFile: byte-exact output at unaligned sizes, with and without O_DIRECT."""

import os

import pytest

from dfs.directio import DirectFile


@pytest.mark.parametrize("pieces", [[0], [1], [4095, 1, 4097], [(8 << 20) + 3, 12345], [1 << 20] * 9])
@pytest.mark.parametrize("where", ["disk", "shm"])
def test_direct_file_writes_exact_bytes(tmp_path, pieces, where):
    base = tmp_path if where == "disk" else "/dev/shm"   # tmpfs refuses O_DIRECT: buffered fallback
    path = os.path.join(base, f"dfs-direct-test-{os.getpid()}")
    data = [os.urandom(n) for n in pieces]
    try:
        with DirectFile(path) as f:
            for d in data:
                assert f.write(memoryview(d)) == len(d)
        with open(path, "rb") as f:
            assert f.read() == b"".join(data)
    finally:
        os.unlink(path)


def _chunks(sizes):
    return [os.urandom(n) for n in sizes]


@pytest.mark.parametrize("sizes", [[4096] * 40, [65536] * 7 + [12345], [1000, 70000, 4096, 3]])
def test_reserved_room_is_written_in_order_through_small_double_buffers(tmp_path, sizes):
    """Room lent by reserve() and filled later (in any order) lands in file order,
    across many buffer hand-offs to the disk thread, with an unaligned tail."""
    path = str(tmp_path / "f")
    data = _chunks(sizes)
    with DirectFile(path, buffer_size=64 << 10, buffers=2) as f:
        assert f.direct
        batch = []
        for d in data:
            room = f.reserve(len(d))
            if room is None:                      # the buffer is full: commit what is lent
                for view, d2 in reversed(batch):  # filled out of order
                    view[:] = d2
                for _, d2 in batch:
                    f.commit(len(d2))
                batch = []
                room = f.reserve(len(d))
            if room is None:                      # bigger than a buffer: copied in
                f.write(d)
                continue
            batch.append((room, d))
        for view, d in batch:
            view[:] = d
            f.commit(len(d))
        assert f.size == sum(sizes)
    with open(path, "rb") as g:
        assert g.read() == b"".join(data)


def test_cancelled_room_is_never_written_and_write_waits_for_commits(tmp_path):
    path = str(tmp_path / "f")
    with DirectFile(path, buffer_size=8192, buffers=2) as f:
        a = f.reserve(4096)
        a[:] = b"a" * 4096
        f.commit(4096)
        b = f.reserve(3000)
        b[:] = b"b" * 3000
        with pytest.raises(ValueError):
            f.write(b"x")                         # not while room is lent
        f.cancel()                                # b is dropped
        c = f.reserve(5000)
        assert c is None                          # 4096 + 5000 > 8192
        f.write(b"c" * 5000)
        assert f.reserve(10000) is None
        with pytest.raises(ValueError):
            f.commit(1)
    with open(path, "rb") as g:
        assert g.read() == b"a" * 4096 + b"c" * 5000


def test_without_o_direct_nothing_is_lent(tmp_path, monkeypatch):
    monkeypatch.delattr(os, "O_DIRECT")           # as on a system without it: buffered writes
    path = str(tmp_path / "f")
    with DirectFile(path) as f:
        assert not f.direct and f.reserve(4096) is None
        f.write(b"abc")
    with open(path, "rb") as g:
        assert g.read() == b"abc"


def test_leaving_with_an_error_abandons_the_tail(tmp_path):
    path = str(tmp_path / "f")
    with pytest.raises(RuntimeError):
        with DirectFile(path, buffer_size=8192, buffers=2) as f:
            f.write(b"z" * 20000)                 # two buffers go to the disk, 3616 bytes wait
            raise RuntimeError("download failed")
    assert os.path.getsize(path) <= 16384 and os.path.getsize(path) % 4096 == 0


def test_a_disk_error_surfaces_on_write_or_close(tmp_path):
    path = str(tmp_path / "f")
    f = DirectFile(path, buffer_size=8192, buffers=2)
    ro = os.open(path, os.O_RDONLY)
    os.dup2(ro, f.fd)                # a read-only fd in its place: the disk thread's writes fail
    os.close(ro)
    with pytest.raises(OSError):
        for _ in range(10):
            f.write(b"y" * 8192)
        f.close()
    f.abort()


def test_room_lent_ahead_across_buffers_is_filled_by_threads(tmp_path):
    """Room is lent into the next buffers while earlier room is still unfilled;
    pool threads fill it in any order and commits put it in the file in order."""
    from concurrent.futures import ThreadPoolExecutor
    path = str(tmp_path / "f")
    data = [os.urandom(16384) for _ in range(13)] + [os.urandom(777)]
    with DirectFile(path, buffer_size=32768, buffers=4) as f, ThreadPoolExecutor(3) as pool:
        rooms, most = [], 0
        for d in data:
            room = f.reserve(len(d))
            if room is None:                      # no free buffer left: commit, then try again
                most = max(most, len(rooms))
                for fut, n in rooms:
                    fut.result()
                    f.commit(n)
                rooms = []
                room = f.reserve(len(d))
            rooms.append((pool.submit(room.__setitem__, slice(None), d), len(d)))
        assert most > 2 * 2                       # more than two buffers' worth lent at once
        for fut, n in rooms:
            fut.result()
            f.commit(n)
    with open(path, "rb") as g:
        assert g.read() == b"".join(data)
