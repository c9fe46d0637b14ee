"""A real cluster and real FUSE mounts of it, started with the real CLI.

One cluster (3 datanodes, 4 MiB blocks) serves every FUSE test of a session,
mounted twice: `mnt` with the default options and `strict_mnt` with
``-o strict`` (no attribute caching). Mounts are made by
``python -m dfs --namenode ADDR mount MOUNTPOINT`` and always removed with
``fusermount3 -u -z`` at teardown, failed tests included, so no stale mount
is left behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from dfs.testing import Cluster


def daemons(mnt: str) -> list[int]:
    """Pids of the processes serving ``mnt`` (`python -m dfs_fuse ... MNT`, `dfs mount ...`)."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if mnt.encode() in argv and any(b"dfs" in a for a in argv):
                out.append(int(pid))
    return out


def unmount(mnt: str, timeout: float = 60) -> None:
    """Detach the mount and wait for its process to finish (it commits what is pending first)."""
    pids = daemons(mnt)
    subprocess.run(["fusermount3", "-u", "-z", mnt], capture_output=True, timeout=30)
    deadline = time.monotonic() + timeout
    while (
        any(os.path.exists(f"/proc/{p}") and _alive(p) for p in pids)
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def mount(cluster: Cluster, mnt: str, *options: str, env: dict | None = None) -> None:
    os.makedirs(mnt, exist_ok=True)
    args = [sys.executable, "-m", "dfs", "--namenode", cluster.namenode_address, "mount"]
    for o in options:
        args += ["-o", o]
    r = subprocess.run(
        args + [mnt], capture_output=True, text=True, timeout=60, env={**cluster.env, **(env or {})}
    )
    assert r.returncode == 0, f"dfs mount failed: {r.stderr}"
    assert os.path.ismount(mnt)


@pytest.fixture(scope="session")
def fuse_cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuse")
    # Heartbeats every second: at 0.5 s, a 2-core box busy with FUSE traffic lets
    # two in a row lapse, and the namenode then stops placing blocks on the nodes.
    c = Cluster(str(base / "cluster"), datanodes=3, block_size="4MiB", heartbeat=1.0)
    c.start()
    c.base_path = base
    yield c
    c.stop()


@pytest.fixture(scope="session")
def mount_root():
    """Mount points outside pytest's 0700 tmp tree, so tests can act as another user."""
    d = tempfile.mkdtemp(prefix="dfs-fuse-test-")
    os.chmod(d, 0o755)
    yield d
    for name in os.listdir(d):
        unmount(os.path.join(d, name))
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def mnt(fuse_cluster, mount_root):
    path = os.path.join(mount_root, "mnt")
    mount(fuse_cluster, path, f"cache_dir={fuse_cluster.base_path / 'cache'}")
    yield path
    unmount(path)


@pytest.fixture(scope="session")
def strict_mnt(fuse_cluster, mount_root):
    path = os.path.join(mount_root, "strict")
    mount(fuse_cluster, path, "strict", f"cache_dir={fuse_cluster.base_path / 'cache-strict'}")
    yield path
    unmount(path)


@pytest.fixture
def work(mnt, request):
    """A fresh directory inside the default mount, for one test."""
    d = os.path.join(mnt, request.node.name.replace("[", "_").replace("]", "_"))
    os.mkdir(d)
    return d


@pytest.fixture(scope="session")
def fuse_mount():
    """``fuse_mount(cluster, mnt, *options, env=None)`` mounts with the CLI;
    ``fuse_mount.unmount(mnt)`` removes a mount."""
    mount.unmount = unmount
    mount.daemons = daemons
    return mount
