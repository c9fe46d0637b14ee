"""Life of data and of a local cluster: deletes reach the disks, scripts/run works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from dfs.testing.cluster import read_until

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_deleted_files_leave_the_datanodes(cluster, tmp_path):
    (tmp_path / "f").write_bytes(os.urandom(3 * 1024 * 1024))
    assert cluster.cli("put", str(tmp_path / "f"), "/f").returncode == 0
    blocks = [b["block_id"] for b in json.loads(cluster.cli("locate", "--json", "/f").stdout)]
    assert all(len(cluster.replica_files(b)) == 3 for b in blocks)
    assert cluster.cli("rm", "/f").returncode == 0
    # Invalidations ride the next heartbeat replies.
    cluster.wait_for(lambda: all(not cluster.replica_files(b) for b in blocks), 15, "replicas deleted")
    # Overwriting a file drops the old version's blocks too.
    assert cluster.cli("put", str(tmp_path / "f"), "/f").returncode == 0
    old = [b["block_id"] for b in json.loads(cluster.cli("locate", "--json", "/f").stdout)]
    assert cluster.cli("put", "-f", str(tmp_path / "f"), "/f").returncode == 0
    cluster.wait_for(lambda: all(not cluster.replica_files(b) for b in old), 15, "old version deleted")
    assert cluster.cli("cat", "/f").stdout == (tmp_path / "f").read_bytes()


def test_scripts_run_starts_and_stops_a_cluster(tmp_path):
    port = 17000 + os.getpid() % 1000
    p = subprocess.Popen([os.path.join(REPO, "scripts", "run"), "--base-dir", str(tmp_path / "local"),
                          "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        out = read_until(p, b"Ctrl-C", 120)
        assert f"127.0.0.1:{port}".encode() in out and b"dfs put" in out, out
        env = {**os.environ, "DFS_NAMENODE": f"127.0.0.1:{port}"}
        r = subprocess.run([sys.executable, "-m", "dfs", "put", "-", "/x"], input=b"hi", env=env,
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        rep = json.loads(subprocess.run([sys.executable, "-m", "dfs", "admin", "report", "--json"], env=env,
                                        capture_output=True, timeout=60).stdout)
        assert len(rep["live"]) == 3
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
