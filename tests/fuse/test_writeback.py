"""`-o writeback`: close() returns before the commit; this mount sees its writes at once,
other clients once the background commit has run, and unmount waits for all of them."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.fuse


def test_writeback_mount(fuse_cluster, mount_root, fuse_mount):
    mnt = os.path.join(mount_root, "writeback")
    fuse_mount(fuse_cluster, mnt, "writeback")
    try:
        d = os.path.join(mnt, "wb")
        os.mkdir(d)
        blobs = {f"f{i}": os.urandom(1000 + i * 997) for i in range(60)}
        for name, data in blobs.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        # This mount sees every file at once, whether or not its commit has run.
        for name, data in blobs.items():
            assert os.stat(os.path.join(d, name)).st_size == len(data)
            with open(os.path.join(d, name), "rb") as f:
                assert f.read() == data
        # Renamed and removed right after close: the queued commit follows the name, or is dropped.
        with open(os.path.join(d, "a"), "wb") as f:
            f.write(b"renamed while queued")
        os.rename(os.path.join(d, "a"), os.path.join(d, "b"))
        with open(os.path.join(d, "gone"), "wb") as f:
            f.write(b"x" * 5000)
        os.unlink(os.path.join(d, "gone"))
        # fsync still means "in dfs now".
        with open(os.path.join(d, "synced"), "wb") as f:
            f.write(b"durable")
            f.flush()
            os.fsync(f.fileno())
            assert fuse_cluster.cli("cat", "/wb/synced").stdout == b"durable"
    finally:
        fuse_mount.unmount(mnt)  # waits for the queued commits
    assert fuse_cluster.cli("cat", "/wb/b").stdout == b"renamed while queued"
    assert fuse_cluster.cli("test", "-e", "/wb/a").returncode == 1
    assert fuse_cluster.cli("test", "-e", "/wb/gone").returncode == 1
    client = fuse_cluster.client()
    for name, data in blobs.items():
        assert client.read_bytes(f"/wb/{name}") == data, name
