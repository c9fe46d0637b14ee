"""Framing for the block data protocol (see proto/dfs/rpc/v1/datatransfer.proto).

A header frame is a u32 big-endian length followed by a serialized protobuf
message; raw chunk bytes follow some frames on the same socket. Every socket
used here has a timeout, so a stalled peer surfaces as an error, not a hang.
"""

from __future__ import annotations

import select
import socket
import struct
import time

from dfs.config import parse_address, setting
from dfs.rpc.v1 import datatransfer_pb2 as dpb

_LEN = struct.Struct(">I")
MAX_HEADER = 16 << 20
DATA_TIMEOUT = setting("DFS_DATA_TIMEOUT", 20.0)
# A write pipeline's acknowledgement is waited for longer the more nodes it answers for
# (HDFS's READ_TIMEOUT_EXTENSION, within DATA_TIMEOUT): the node right before a silent
# (frozen) one gives up first and names it in its ack. With one timeout everywhere every
# node gave up at once and each blamed its healthy next node: the frozen one was never
# named, and could be handed the block again.


def ack_timeout(nodes: int) -> float:
    """How long to wait for the acknowledgement of a pipeline of ``nodes`` more nodes:
    5/8 of DATA_TIMEOUT for one, 1/8 more per further node, all of it from four on."""
    return DATA_TIMEOUT * (0.5 + 0.125 * min(max(nodes, 1), 4))


class FrameError(ConnectionError):
    pass


class OlderDatanodeError(FrameError):
    """A pipeline node speaks a data-transfer protocol older than the one asked of it."""


def read_setup_reply(sock: socket.socket, due: float, wait: bool, node: str) -> bool:
    """Read the setup reply (a WriteAck with ``ready``) of pipeline node ``node``.
    -> True once read. Without ``wait``, when it has not come and ``due`` (monotonic)
    is still ahead: -> False, the socket's timeout set to end by ``due`` (a send
    blocked on a silent node ends then too). Past ``due`` without it: TimeoutError."""
    left = due - time.monotonic()
    if not wait and left > 0 and not select.select([sock], [], [], 0)[0]:
        sock.settimeout(left)
        return False
    sock.settimeout(max(left, 0.001))
    ack = recv_msg(sock, dpb.WriteAck)
    if not ack.ready:
        # Every datanode that knows ready_reply answers it before anything else: one that
        # answers with the block's final acknowledgement ignored it (dfs/rpc/protocol.py).
        raise OlderDatanodeError(
            f"datanode {node} runs an older dfs: it answered the pipeline setup with the block's final "
            f"acknowledgement, not a setup reply (upgrade it)" + (f"; it said: {ack.error}" if ack.error else ""))
    sock.settimeout(DATA_TIMEOUT)
    return True


def connect(address: str, timeout: float = DATA_TIMEOUT) -> socket.socket:
    host, port = parse_address(address)
    s = socket.create_connection((host, port), timeout=min(timeout, 5.0))
    s.settimeout(timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def send_msg(sock: socket.socket, msg, *payload) -> None:
    """Send a header frame and its payload buffers, all of it."""
    body = msg.SerializeToString()
    bufs = [memoryview(_LEN.pack(len(body))), memoryview(body), *(memoryview(p).cast("B") for p in payload)]
    while bufs:
        n = sock.sendmsg(bufs[:64])
        while n and bufs:
            if n >= len(bufs[0]):
                n -= len(bufs[0])
                bufs.pop(0)
            else:
                bufs[0] = bufs[0][n:]
                n = 0


def recv_into(sock: socket.socket, buf) -> None:
    """Fill ``buf`` (a writable memoryview) completely."""
    view = memoryview(buf)
    got, n = 0, len(view)
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise FrameError("connection closed mid-frame")
        got += k


def recv_exact(sock: socket.socket, n: int) -> bytearray:
    buf = bytearray(n)
    recv_into(sock, buf)
    return buf


def recv_msg(sock: socket.socket, cls):
    head = bytearray(4)
    recv_into(sock, head)
    (n,) = _LEN.unpack(head)
    if n > MAX_HEADER:
        raise FrameError(f"header frame of {n} bytes is too large")
    msg = cls()
    msg.ParseFromString(bytes(recv_exact(sock, n)))
    return msg
