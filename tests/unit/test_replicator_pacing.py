"""A copy's bandwidth cap and its byte counter (the repair rate and pending bytes of
`dfs admin report` come from it): a record is counted once sent, after its wait; the
bucket does not let an idle node send seconds of copying at once."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from dfs.codec import checksum_of
from dfs.datanode.blockstore import BlockStore, ChunkEntry
from dfs.datanode.replicator import Replicator, Throttle
from dfs.rpc import frames
from dfs.rpc.v1 import datatransfer_pb2 as pb

MiB = 1 << 20
TARGET = "10.0.0.9:9866"


def _fake_target(sock: socket.socket) -> None:
    """Take a WRITE_BLOCK to its end and say it is stored."""
    frames.recv_msg(sock, pb.OpHeader)
    while not (f := frames.recv_msg(sock, pb.ChunkFrame)).end:
        frames.recv_exact(sock, f.meta.stored_length)
    frames.send_msg(sock, pb.WriteAck(stored=[TARGET]))


@pytest.fixture
def store(tmp_path):
    store = BlockStore(str(tmp_path / "dn"))
    w = store.writer(1, 1, 4096)
    for _ in range(3):
        rec = os.urandom(100)
        w.write(ChunkEntry(len(rec), 80, checksum_of(rec)), rec)
    w.finalize()
    return store


def test_a_record_is_counted_after_its_wait_for_bandwidth_and_in_block_bytes(store, monkeypatch):
    ours, theirs = socket.socketpair()
    monkeypatch.setattr(frames, "connect", lambda address, timeout=0: ours)
    target = threading.Thread(target=_fake_target, args=(theirs,), daemon=True)
    target.start()
    r = Replicator(store, bandwidth=MiB)
    counted_at_wait = []
    r.throttle.take = lambda n, stop=None: counted_at_wait.append((n, r.copied_bytes))
    try:
        assert r.push(store.get(1), [TARGET]) == ([TARGET], [], "")
    finally:
        r.shutdown()
        theirs.close()
    target.join(5)
    # Each record waits before it goes, and only then counts: before, a block of one
    # record counted as delivered, then waited a second for the bandwidth it had used.
    assert counted_at_wait == [(100, 0), (100, 80), (100, 160)]
    assert r.copied_bytes == 240          # block bytes, as the namenode counts copies (not stored ones)


def test_an_idle_bucket_lets_a_quarter_second_go_at_once_not_seconds():
    t = Throttle(4 * MiB)
    t0 = time.monotonic()
    t.take(2 * MiB)           # 1 MiB at once, then 0.25 s (it went at once: a 4 MiB burst)
    assert 0.2 < time.monotonic() - t0 < 1.0
