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
