"""A writer dropped without close() (an exception path without ``with``, a forgotten
handle) is abandoned, never published: collected like any object, its threads end,
its lease is no longer renewed and the namenode drops its file (dfs/client/writer.py).
It was kept alive for ever by the client's set of writers and its sender thread: the
lease renewed as long as the process lived, the path held against every other writer."""

from __future__ import annotations

import gc
import os
import threading
import time
import warnings
import weakref

import pytest

from dfs import errors
from dfs.client.filesystem import DFSFileSystem
from dfs.client.writer import SMALL_FILE
from dfs.testing.faults import MiB


def _alive(name: str) -> int:
    return sum(t.name == name and t.is_alive() for t in threading.enumerate())


def _renewing(client) -> bool:
    """Whether ``client``'s own lease renewer runs (another test's may be lingering)."""
    t = client._lease_thread
    return t is not None and t.is_alive()


def _until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.05)
    return predicate()


def _drop(make) -> tuple[weakref.ref, list]:
    """Make a writer with ``make()``, drop it unclosed -> (a weak reference to it, the
    warnings seen until it is collected)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        w = make()
        ref = weakref.ref(w)
        del w
        _until(lambda: ref() is None)
    return ref, seen


@pytest.mark.parametrize("size", [SMALL_FILE // 2, 3 * MiB + 5], ids=["small", "streamed"])
def test_a_writer_dropped_unclosed_is_abandoned(cluster, size):
    client = cluster.client()
    writers = _alive("dfs-writer")
    data = os.urandom(size)
    # Another writer of the same client stays open: the client's lease is renewed all
    # along, so the dropped file must be abandoned by the namenode, not just left to lapse.
    kept = client.create("/kept")
    kept.open()
    kept.write(b"k" * 100)

    def make():
        w = client.create("/dropped")
        w.open()   # the lease is taken now (as fsspec does), whatever the size
        w.write(data)
        if size > SMALL_FILE:
            assert _alive("dfs-writer") == writers + 1   # its sender thread runs
        return w

    ref, seen = _drop(make)
    assert ref() is None, "a writer dropped unclosed was kept alive"
    assert any(issubclass(w.category, ResourceWarning) and "/dropped" in str(w.message) for w in seen), \
        [str(w.message) for w in seen]
    assert _until(lambda: _alive("dfs-writer") == writers), "its sender thread goes on"

    # The namenode dropped it (AbandonFile): another client may write the path now, long
    # before a lease would lapse (60 s), while `kept` keeps this client's lease renewed.
    other = cluster.client()
    t0 = time.monotonic()
    while True:
        try:
            other.write_bytes("/dropped", b"new", overwrite=False)
            break
        except errors.LeaseError:
            assert time.monotonic() - t0 < 10, "the dropped writer's file is still under construction"
            time.sleep(0.1)
    assert other.read_bytes("/dropped") == b"new"

    assert client._lease_thread is not None and client._lease_thread.is_alive()   # kept's lease is renewed
    kept.close()
    assert client.read_bytes("/kept") == b"k" * 100
    assert _until(lambda: not _renewing(client)), "the lease thread outlived the last writer"


def test_an_fsspec_write_handle_dropped_unclosed_publishes_nothing(cluster):
    # fsspec's AbstractBufferedFile.__del__ closes, which publishes; DFSFile discards
    # instead (docs/fsspec.md: "a writer never closed ... discarded").
    fs = DFSFileSystem(namenode=cluster.namenode_address, skip_instance_cache=True)
    writers = _alive("dfs-writer")

    def make():
        f = fs.open("/fs-dropped", "wb")
        f.write(os.urandom(3 * MiB))
        f.flush()
        return f

    ref, seen = _drop(make)
    assert ref() is None
    assert any(issubclass(w.category, ResourceWarning) for w in seen)
    assert not fs.exists("/fs-dropped")
    assert _until(lambda: _alive("dfs-writer") == writers and not _renewing(fs.client))
    cluster.client().write_bytes("/fs-dropped", b"new", overwrite=False)   # no lease holds it
    assert fs.cat_file("/fs-dropped") == b"new"


def test_dropping_fsspec_write_handles_never_waits_on_the_namenode(cluster):
    """DFSFile.__del__ called abort(), an AbandonFile RPC retried through a namenode
    outage: 7.5 s per handle dropped, on whatever thread the collection ran (and under
    any lock it held). The lease thread does it now; the drop returns at once."""
    fs = DFSFileSystem(namenode=cluster.namenode_address, skip_instance_cache=True)
    files = []
    for i in range(3):
        f = fs.open(f"/gone{i}", "wb")
        f.write(os.urandom(2 * MiB))
        f.flush()
        files.append(f)
    del f
    cluster.pause(cluster.namenode)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            t = time.monotonic()
            while files:
                files.pop()
                gc.collect()
            took = time.monotonic() - t
    finally:
        cluster.resume(cluster.namenode)
    assert took < 1.0, took
    assert not any(fs.exists(f"/gone{i}") for i in range(3))


def test_a_writer_dropped_before_its_file_exists_warns_of_the_bytes_it_discards(cluster):
    # Under SMALL_FILE and never opened, nothing exists on the namenode yet: it is
    # collected like any object, but its bytes went silently (an unclosed file warns).
    client = cluster.client()

    def make():
        w = client.create("/small-dropped")
        w.write(b"x" * 1000)
        return w

    ref, seen = _drop(make)
    assert ref() is None
    assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)] == [
        "dfs: /small-dropped was being written and never closed: 1000 bytes discarded"]
    assert not client.exists("/small-dropped")
    with warnings.catch_warnings(record=True) as seen:      # closed or aborted: no warning
        warnings.simplefilter("always")
        for end in ("close", "abort"):
            w = client.create(f"/small-{end}")
            w.write(b"y" * 10)
            getattr(w, end)()
            del w
            gc.collect()
    assert not [w for w in seen if issubclass(w.category, ResourceWarning)], [str(w.message) for w in seen]
