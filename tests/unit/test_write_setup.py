"""The writer's deadline for a pipeline head's setup reply (FileWriter._await_ready,
docs/transport.md), on a socketpair standing in for the head: a head that never
answers is given up at its deadline, not at the data timeout; one that answered in
time is never blamed for the writer's own lateness."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from dfs.client import writer as writer_mod
from dfs.rpc import frames
from dfs.rpc.v1 import common_pb2 as cpb
from dfs.rpc.v1 import datatransfer_pb2 as dpb


def _block(ready_in: float) -> writer_mod._Block:
    b = writer_mod._Block(cpb.LocatedBlock(block=cpb.Block(block_id=7),
                                           locations=[cpb.DatanodeInfo(address="10.0.0.1:1")]))
    b.ready_by = time.monotonic() + ready_in
    return b


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.settimeout(frames.DATA_TIMEOUT)
    yield a, b
    a.close()
    b.close()


def test_a_silent_head_is_given_up_at_its_setup_deadline(pair):
    writer, head = pair
    block = _block(0.3)
    w = object.__new__(writer_mod.FileWriter)
    writer_mod.FileWriter._await_ready(w, block, writer, wait=False)   # not yet: no error
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        writer_mod.FileWriter._await_ready(w, block, writer)
    assert 0.2 < time.monotonic() - t0 < 2 and not block.ready
    with pytest.raises(TimeoutError):                                   # past it, even polling
        writer_mod.FileWriter._await_ready(w, block, writer, wait=False)


def test_a_head_that_answered_is_ready_however_late_the_writer_looks(pair):
    writer, head = pair
    block = _block(0.05)
    frames.send_msg(head, dpb.WriteAck(ready=True))
    time.sleep(0.2)                       # the writer itself was slow: past the deadline
    w = object.__new__(writer_mod.FileWriter)
    writer_mod.FileWriter._await_ready(w, block, writer, wait=False)
    assert block.ready and writer.gettimeout() == frames.DATA_TIMEOUT
    frames.send_msg(head, dpb.WriteAck(stored=["10.0.0.1:1"]))         # the ack follows
    writer_mod.FileWriter._await_ready(w, block, writer)                # ready: reads nothing
    assert list(frames.recv_msg(writer, dpb.WriteAck).stored) == ["10.0.0.1:1"]


def test_a_reply_that_is_not_the_setup_reply_is_a_failed_head_running_an_older_dfs(pair):
    # A datanode from before ready_reply ignores it: its first answer is the block's final
    # acknowledgement. It was "sent no pipeline setup reply", which sent a rolling upgrade's
    # operator after a failing node (dfs/rpc/protocol.py).
    writer, head = pair
    block = _block(5)
    frames.send_msg(head, dpb.WriteAck(error="disk full", failed=["10.0.0.1:1"]))
    w = object.__new__(writer_mod.FileWriter)
    with pytest.raises(frames.OlderDatanodeError,
                       match=r"datanode 10\.0\.0\.1:1 runs an older dfs: .* \(upgrade it\); it said: disk full"):
        writer_mod.FileWriter._await_ready(w, block, writer)


def test_the_setup_deadline_is_an_env_tunable_shorter_than_the_ack_timeout():
    assert 0 < writer_mod.SETUP_TIMEOUT < frames.ack_timeout(1)
    out = subprocess.run([sys.executable, "-c", "from dfs.client import writer; print(writer.SETUP_TIMEOUT)"],
                         env={**os.environ, "DFS_WRITE_SETUP_SECONDS": "2.5"}, capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.strip() == "2.5", out.stderr


def test_a_datanode_gives_up_a_silent_downstream_node_at_its_due_time(pair):
    # TransferServer._await_ready: the node before a frozen one stores on without it.
    from dfs.datanode.transfer import TransferServer
    up, down = pair
    waiting = {"10.0.0.2:1": time.monotonic() + 0.3}
    TransferServer._await_ready("10.0.0.2:1", up, waiting, wait=False)     # not due yet
    with pytest.raises(TimeoutError):
        TransferServer._await_ready("10.0.0.2:1", up, waiting, wait=True)
    assert "10.0.0.2:1" in waiting
    # One that answered, however late it is read, is ready: nothing more is awaited.
    waiting = {"10.0.0.2:1": time.monotonic() + 0.05}
    frames.send_msg(down, dpb.WriteAck(ready=True))
    time.sleep(0.2)
    TransferServer._await_ready("10.0.0.2:1", up, waiting, wait=False)
    assert waiting == {} and up.gettimeout() == frames.DATA_TIMEOUT
