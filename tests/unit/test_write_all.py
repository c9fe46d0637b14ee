"""A download's sink may take part of a write (a raw stdout under python -u)."""

from __future__ import annotations

import os
import threading

from dfs.client.client import write_all


class ShortWrites:
    """A raw file that takes at most 64 KiB per write, as a pipe did after SIGCONT."""

    def __init__(self):
        self.got = bytearray()

    def write(self, b) -> int:
        n = min(len(b), 64 << 10)
        self.got += bytes(b[:n])
        return n


def test_every_byte_of_a_short_writing_sink_is_written():
    data = os.urandom(3 << 20)
    sink = ShortWrites()
    for i in range(0, len(data), 1 << 20):
        write_all(sink, data[i:i + (1 << 20)])
    assert bytes(sink.got) == data


def test_a_full_non_blocking_pipe_is_waited_for_not_skipped():
    r, w = os.pipe()
    os.set_blocking(w, False)
    data = os.urandom(1 << 20)        # far more than a pipe holds (64 KiB)
    got = bytearray()

    def drain():
        while chunk := os.read(r, 1 << 16):
            got.extend(chunk)
    t = threading.Thread(target=drain)
    t.start()
    with open(w, "wb", buffering=0) as f:   # raw: write() returns None when the pipe is full
        write_all(f, data)
    t.join(10)
    os.close(r)
    assert bytes(got) == data
