"""TransferServer's connection threads: reused, not starved by a slow client, bounded when idle."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from dfs.datanode import transfer
from dfs.datanode.blockstore import BlockStore
from dfs.datanode.transfer import TransferServer
from dfs.rpc import frames
from dfs.rpc.v1 import datatransfer_pb2 as pb


@pytest.fixture
def server(tmp_path):
    store = BlockStore(str(tmp_path / "dn"))
    srv = TransferServer(store, "127.0.0.1:0", "127.0.0.1:0", lambda rep: None)
    handled: list[threading.Thread] = []
    inner = srv._handle

    def handle(conn):
        handled.append(threading.current_thread())
        inner(conn)

    srv._handle = handle
    srv.handled = handled
    threading.Thread(target=srv.serve_forever, daemon=True, name="transfer").start()
    yield srv
    srv.close()
    srv.store.pool.close()


def read_missing(srv: TransferServer) -> str:
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        frames.send_msg(s, pb.OpHeader(op=pb.OpHeader.READ_BLOCK, block_id=12345))
        return frames.recv_msg(s, pb.ReadReply).error


def xceivers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "xceiver"]


def test_sequential_connections_reuse_threads(server):
    for _ in range(20):
        assert read_missing(server) == "no such replica"
        deadline = time.monotonic() + 2    # let the thread get back to accept before the next one
        while getattr(server, "_accepting", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.001)
    assert len(server.handled) == 20
    assert len(set(server.handled)) <= 2   # not a new thread per connection


def test_stalled_clients_do_not_starve_others(server):
    stalled = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
    try:
        time.sleep(0.2)                             # each holds a thread, waiting for a header
        t0 = time.monotonic()
        assert read_missing(server) == "no such replica"
        assert time.monotonic() - t0 < 2
    finally:
        for s in stalled:
            s.close()


def test_idle_threads_are_bounded(server, monkeypatch):
    monkeypatch.setattr(transfer, "IDLE_THREADS", 3)
    stalled = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(10)]
    deadline = time.monotonic() + 5
    while len(server.handled) < 10:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert len(xceivers()) >= 10                    # grew on demand: one per stalled client
    for s in stalled:
        s.close()                                   # their handlers see EOF and finish
    deadline = time.monotonic() + 5
    while len(xceivers()) > 3:
        assert time.monotonic() < deadline, len(xceivers())
        time.sleep(0.01)
    assert read_missing(server) == "no such replica"   # and still serves


def test_a_connection_thread_that_cannot_start_does_not_wedge_the_port(server, monkeypatch):
    """Out of threads or memory when the last thread waiting in accept hands over: that
    connection is turned away and the port keeps answering. The failed start killed the
    acceptor with the count saying one was waiting: nothing accepted again, for good."""
    start = threading.Thread.start
    failed = []

    def start_once_failing(self):
        if self.name == "xceiver" and not failed:
            failed.append(self)
            raise RuntimeError("can't start new thread")
        return start(self)

    monkeypatch.setattr(threading.Thread, "start", start_once_failing)
    with pytest.raises(OSError):   # turned away: closed before any reply
        read_missing(server)
    assert failed
    assert read_missing(server) == "no such replica"
    assert read_missing(server) == "no such replica"


def test_connections_beyond_the_limit_are_turned_away_at_once(server, monkeypatch):
    """As HDFS's dfs.datanode.max.transfer.threads: past the limit a connection is closed
    unanswered (the client goes elsewhere) instead of one more thread each, without end."""
    monkeypatch.setattr(transfer, "MAX_TRANSFER_THREADS", 2)
    held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
    try:
        deadline = time.monotonic() + 5
        while server.xceivers < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.xceivers == 2
        t = time.monotonic()
        with pytest.raises(OSError):
            read_missing(server)
        assert time.monotonic() - t < 2
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 5
    while server.xceivers and time.monotonic() < deadline:
        time.sleep(0.01)
    assert read_missing(server) == "no such replica"
