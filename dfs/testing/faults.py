"""Fault-injection helpers for the healing and crash tests (real processes, real faults)."""

from __future__ import annotations

import fcntl
import glob
import json
import os
import subprocess
import sys
import time

from dfs.testing import Cluster
from dfs.testing.cluster import _host, free_port

MiB = 1 << 20

# Short intervals keep the tests fast: a node is stale after 0.6 s, dead after 3 s.
FAST = dict(heartbeat=0.3, dead_timeout=3.0)


def put_bytes(cluster: Cluster, path: str, data: bytes, **kw) -> None:
    client = cluster.client(retry_seconds=20)
    client.write_bytes(path, data, **kw)


def check_all(cluster: Cluster, files: dict[str, bytes]) -> None:
    """Every file reads back byte-identical (with a fresh client)."""
    client = cluster.client(retry_seconds=20)
    for path, data in files.items():
        got = client.read_bytes(path)
        assert len(got) == len(data) and got == data, f"{path} differs after the faults"


def locations(cluster: Cluster, path: str) -> list[dict]:
    r = cluster.cli("locate", "--json", path)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def all_blocks(cluster: Cluster, paths) -> list[dict]:
    return [b for p in paths for b in locations(cluster, p)]


def node_state(cluster: Cluster, address: str) -> str | None:
    r = cluster.report()
    for n in r["live"] + r["dead"]:
        if n["address"] == address:
            return n["state"]
    return None


def wait_state(cluster: Cluster, node, state: str, timeout: float = 30.0) -> None:
    cluster.wait_for(lambda: node_state(cluster, node.address) == state, timeout,
                     f"{node.name} to be {state}", interval=0.1)


def replica_files(node) -> list[str]:
    return glob.glob(os.path.join(node.data_dir, "current", "*", "blk_*.data"))


def block_ids_on(node) -> set[int]:
    return {int(os.path.basename(p).split("_")[1]) for p in replica_files(node)}


def replicas_on_disk(cluster: Cluster, block_id: int) -> int:
    return len(cluster.replica_files(block_id))


def exactly_n_on_disk(cluster: Cluster, block_ids, n: int) -> bool:
    return all(replicas_on_disk(cluster, b) == n for b in block_ids)


def busiest(cluster: Cluster, nodes=None):
    nodes = [d for d in (nodes or cluster.datanodes) if d.alive]
    return max(nodes, key=lambda d: len(replica_files(d)))


def start_put(cluster: Cluster, path: str, *, env: dict | None = None, args=()) -> subprocess.Popen:
    """`dfs put - PATH` in a subprocess, fed through its stdin by the test."""
    return subprocess.Popen([sys.executable, "-m", "dfs", "--namenode", cluster.namenode_address,
                             "put", *args, "-", path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**cluster.env, **(env or {})})


def tmp_files(node) -> list[str]:
    return [p for p in glob.glob(os.path.join(node.data_dir, "tmp", "*")) if os.path.isfile(p)]


def wait_for_tmp(cluster: Cluster, nodes, timeout: float = 20.0) -> None:
    cluster.wait_for(lambda: all(tmp_files(n) for n in nodes), timeout, "replicas being written", interval=0.02)


_EXT4_IOC_SHUTDOWN = 0x8004587D
_SHUTDOWN_NOLOGFLUSH = 2


def kill_disk(mountpoint: str) -> None:
    """The ext4 file system mounted there dies as a failing disk would: from now on every
    read and write of a file fails with EIO (stat, statfs and cached listings still work)."""
    fd = os.open(mountpoint, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, _EXT4_IOC_SHUTDOWN, _SHUTDOWN_NOLOGFLUSH.to_bytes(4, "little"))
    finally:
        os.close(fd)


def log_text(node) -> str:
    with open(node.log_path, errors="replace") as f:
        return f.read()


def until(pred, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def run_server(cluster: Cluster, *argv: str, timeout: float = 15.0) -> subprocess.CompletedProcess:
    """Run `dfs namenode|datanode ...` by hand and wait for it to exit (a server that
    should refuse to start); TimeoutExpired if it keeps running."""
    return subprocess.run([sys.executable, "-m", "dfs", *argv], capture_output=True, timeout=timeout,
                          env=cluster.env)


def run_datanode(cluster: Cluster, data_dir: str, timeout: float = 15.0) -> subprocess.CompletedProcess:
    host = _host()
    return run_server(cluster, "datanode", "--data-dir", data_dir, "--namenode", cluster.namenode_address,
                      "--listen", f"{host}:{free_port(host)}", "--heartbeat-interval", str(cluster.heartbeat),
                      timeout=timeout)


def error_lines(r: subprocess.CompletedProcess, command: str) -> list[str]:
    """The `dfs: COMMAND: ...` lines on stderr; asserts there is no traceback."""
    err = r.stderr.decode(errors="replace")
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.startswith(f"dfs: {command}:")]
