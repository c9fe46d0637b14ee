"""The first thing a newcomer does: put a file, list it, get it back."""

import os


def test_put_ls_get_round_trip(cluster, tmp_path):
    src = tmp_path / "data.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 123))
    assert cluster.cli("put", str(src), "/data.bin").returncode == 0
    ls = cluster.cli("ls", "/")
    assert b"/data.bin" in ls.stdout
    out = tmp_path / "back.bin"
    r = cluster.cli("get", "/data.bin", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == src.read_bytes()
