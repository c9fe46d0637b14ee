"""Ceiling helper: a 3-hop socket chain, each hop storing its copy and fsyncing.

Run as a child process by bench.py: `python bench_chain.py node LISTEN_PORT NEXT_PORT|- OUTFILE MODE`.
MODE is "buffered" (write + fsync, the plain way) or "direct" (O_DIRECT, as dfs's datanodes do).
"""

from __future__ import annotations

import mmap
import os
import socket
import sys

PIECE = 1 << 20


def node(port: int, next_port: int | None, out: str, mode: str) -> None:
    srv = socket.create_server(("127.0.0.1", port))
    print("ready", flush=True)
    conn, _ = srv.accept()
    down = socket.create_connection(("127.0.0.1", next_port)) if next_port else None
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (os.O_DIRECT if mode == "direct" else 0)
    fd = os.open(out, flags, 0o600)
    buf = mmap.mmap(-1, PIECE)
    view = memoryview(buf)
    total = 0
    while True:
        got = 0
        while got < PIECE:
            n = conn.recv_into(view[got:], PIECE - got)
            if n == 0:
                break
            got += n
        if got == 0:
            break
        if down:
            down.sendall(view[:got])
        os.write(fd, view[:got] if mode != "direct" or got == PIECE else view[:PIECE])
        total += got
        if got < PIECE:
            break
    if mode == "direct":
        os.ftruncate(fd, total)
    os.fsync(fd)
    os.close(fd)
    if down:
        down.shutdown(socket.SHUT_WR)
        down.recv(1)      # wait for the next hop's ack
    conn.sendall(b"k")
    conn.close()


if __name__ == "__main__":
    _, role, port, nxt, out, mode = sys.argv
    node(int(port), None if nxt == "-" else int(nxt), out, mode)
