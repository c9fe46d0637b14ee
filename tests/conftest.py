"""Shared fixtures: real clusters of dfs processes on loopback addresses."""

from __future__ import annotations

import os
import subprocess

import pytest

from dfs.testing import Cluster
from dfs.testing.faults import FAST


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _dump_on_failure(request, cluster: Cluster) -> None:
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(cluster.dump_logs())


@pytest.fixture
def cluster(tmp_path, request):
    """A fresh 1 namenode + 3 datanode cluster (1 MiB blocks), per test."""
    c = Cluster(str(tmp_path / "cluster"), datanodes=3)
    c.start()
    yield c
    _dump_on_failure(request, c)
    c.stop()


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory):
    """One cluster for a whole module, for tests that do not break it."""
    c = Cluster(str(tmp_path_factory.mktemp("shared")), datanodes=3)
    c.start()
    yield c
    c.stop()


@pytest.fixture
def make_cluster(tmp_path, request):
    """A factory of fast-failing clusters (short heartbeats and dead timeout);
    make_cluster(datanodes=4, start=False, env={...}). All stopped at teardown."""
    made: list[Cluster] = []

    def make(start: bool = True, **kw) -> Cluster:
        opts = {**FAST, "datanodes": 3, **kw}
        c = Cluster(str(tmp_path / f"cluster{len(made)}"), **opts)
        made.append(c)
        if start:
            c.start()
        return c

    yield make
    for c in made:
        _dump_on_failure(request, c)
        c.stop()


@pytest.fixture
def tmpfs():
    """tmpfs(path, size="2m"): mount a small tmpfs there (a disk that fills up),
    unmounted lazily at teardown (processes may still hold it)."""
    mounts: list[str] = []

    def mount(path: str, size: str = "2m") -> str:
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], check=True)
        mounts.append(path)
        return path

    yield mount
    for m in mounts:
        subprocess.run(["umount", "-l", m], check=False)


@pytest.fixture
def ext4(tmp_path):
    """ext4(path, size="64M"): mount a fresh ext4 image there (loop), a disk that can be
    made to die (``dfs.testing.faults.kill_disk``); unmounted lazily at teardown."""
    mounts: list[str] = []

    def mount(path: str, size: str = "64M") -> str:
        image = str(tmp_path / f"disk{len(mounts)}.img")
        subprocess.run(["truncate", "-s", size, image], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", image], check=True)
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "-o", "loop", image, path], check=True)
        mounts.append(path)
        return image

    yield mount
    for m in mounts:
        subprocess.run(["umount", "-l", m], check=False)
