"""Binary line reading through DFSFile (readline, ``for line in f``, readlines,
readuntil) against a local file's, at the chunk and block boundaries where lines
are cut from one cached chunk and continued in the next."""

from __future__ import annotations

import random

import pytest

from dfs.client.filesystem import DFSFileSystem
from dfs.testing import Cluster

MiB = 1 << 20
CHUNK = MiB                  # the namenode's chunk size
BLOCK = 1552 << 10           # a 1 MiB chunk and a 528 KiB one per block: both kinds of boundary


@pytest.fixture(scope="module")
def fs(tmp_path_factory):
    c = Cluster(str(tmp_path_factory.mktemp("lines")), datanodes=1, block_size="1552KiB")
    c.start()
    yield DFSFileSystem(namenode=c.namenode_address, skip_instance_cache=True)
    c.stop()


def _random_lines(rnd: random.Random, until: int) -> bytes:
    """Lines of assorted lengths (empty ones too), ending in LF or CRLF, some holding a lone CR."""
    out = bytearray()
    while len(out) < until:
        n = rnd.choice([0, 0, 1, 2, 10, 80, 500, 5000, 200_000])
        out += b"a\rb" * (n // 3) + rnd.choice([b"\n", b"\r\n", b"\n\n"])
    return bytes(out)


def _text() -> bytes:
    rnd = random.Random(5)
    data = bytearray(_random_lines(rnd, 2 * BLOCK + CHUNK))
    data[CHUNK - 1] = ord("\n")                    # a line ends on a chunk's last byte
    data[BLOCK - 1:BLOCK + 1] = b"\r\n"            # a CRLF across the first block boundary
    data[BLOCK + CHUNK] = ord("\n")                # a line is one byte of the next chunk
    data[2 * BLOCK - 100:] = b"y" * (3 * MiB)      # over a block, a chunk and a block boundary
    data += b"\n" + _random_lines(rnd, 300_000) + b"\n\n\r\nthe last line has no newline"
    return bytes(data)


FILES = {"text": _text(), "empty": b"", "one newline": b"\n", "no newline": b"abc",
         "one long line": b"z" * (CHUNK + 5) + b"\n" + b"z" * (BLOCK - 3)}


def _put(fs, tmp_path, name: str) -> tuple[str, str]:
    path, local = f"/lines/{name}", tmp_path / name.replace(" ", "-")
    fs.pipe_file(path, FILES[name])
    local.write_bytes(FILES[name])
    return path, str(local)


def _after(data: bytes, sep: bytes) -> list[bytes]:
    """``data`` cut after each ``sep`` (what readuntil(sep) returns, call after call)."""
    out, i = [], 0
    while i < len(data):
        j = data.find(sep, i)
        j = len(data) if j < 0 else j + len(sep)
        out.append(data[i:j])
        i = j
    return out


@pytest.mark.parametrize("name", FILES)
def test_lines_are_a_local_files(fs, tmp_path, name):
    path, local = _put(fs, tmp_path, name)
    with open(local, "rb") as g:
        want = g.readlines()
    with fs.open(path, "rb") as f:
        assert list(f) == want
        assert f.tell() == len(FILES[name]) and f.readline() == b"" and f.readlines() == []
        f.seek(0)
        got = []
        while line := f.readline():
            got.append(line)
        assert got == want
        f.seek(0)
        assert f.readlines() == want
        f.seek(0)
        assert _after(FILES[name], b"\r\n") == list(iter(lambda: f.readuntil(b"\r\n"), b""))


def test_readline_size_and_hint_mixed_with_read_seek_tell(fs, tmp_path):
    path, local = _put(fs, tmp_path, "text")
    size = len(FILES["text"])
    boundaries = [CHUNK, BLOCK, BLOCK + CHUNK, 2 * BLOCK, 3 * BLOCK + CHUNK, size]
    rnd = random.Random(11)
    ops = []
    for _ in range(400):
        op = rnd.choice(["readline", "readline", "readline", "read", "seek", "tell", "next", "readlines"])
        if op == "readline":
            arg = rnd.choice([-1, None, 0, 1, 7, 1000, 300_000, 2 * MiB])
        elif op == "read":
            arg = rnd.choice([0, 1, 100, 70_000])
        elif op == "seek":
            arg = max(0, rnd.choice(boundaries) + rnd.randint(-3, 3)) if rnd.random() < 0.7 else \
                rnd.randrange(size + 10)
        elif op == "readlines":
            arg = rnd.choice([1, 50, 400_000])
        else:
            arg = None
        ops.append((op, arg))

    def script(f):
        out = []
        for op, arg in ops:
            if op == "tell":
                out.append(f.tell())
            elif op == "next":
                out.append(next(f, "end"))
            elif op == "readline" and arg == -1:
                out.append(f.readline())
            else:
                out.append(getattr(f, op)(arg))
        return out

    with fs.open(path, "rb") as f, open(local, "rb") as g:
        assert script(f) == script(g)


def test_line_iteration_copies_each_chunk_once(fs):
    # The bug: each line read (and joined) 4 MiB of cached chunks and seeked back,
    # ~400x slower than text mode. Counted, not timed: bytes served by the chunk cache.
    data = b"".join(b"%d some words on a line\n" % i for i in range(120_000))   # 3.3 MiB
    fs.pipe_file("/lines/many", data)
    with fs.open("/lines/many", "rb") as f:
        served = 0
        read = f._chunks.read

        def counting(start, end):
            nonlocal served
            got = read(start, end)
            served += len(got)
            return got

        f._chunks.read = counting
        lines = []
        for line in f:
            lines.append(line)
            assert served <= 2 * len(data), f"{served} bytes served for {len(lines)} lines"
        assert len(lines) == 120_000 and b"".join(lines) == data and served == len(data)
        assert f.chunk_stats["max_fetches_per_chunk"] == 1
        f.seek(0)
        served = 0
        while f.readline(100):
            assert served <= 2 * len(data)
        assert served == len(data)
