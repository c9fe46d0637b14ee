"""The mount when things go wrong: other processes closing our files, unmount refusals,
a dead cluster, repeated signals, something other than a namenode at the address."""

from __future__ import annotations

import errno
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from dfs.testing import Cluster

pytestmark = pytest.mark.fuse


def dfs(namenode: str, *args: str, env: dict | None = None, timeout: float = 60):
    return subprocess.run(
        [sys.executable, "-m", "dfs", "--namenode", namenode, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def wait_for(pred, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


# -- 5. something else at the namenode's address ------------------------------------------


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_mount_against_an_http_server_or_a_silent_port_says_so(mount_root):
    mnt = os.path.join(mount_root, "not-a-namenode")
    os.makedirs(mnt, exist_ok=True)
    http_srv = http.server.ThreadingHTTPServer(("127.0.0.5", 0), _Quiet)
    threading.Thread(target=http_srv.serve_forever, daemon=True).start()
    silent = socket.socket()
    silent.bind(("127.0.0.6", 0))
    silent.listen(8)   # accepts, never answers
    try:
        web = f"127.0.0.5:{http_srv.server_address[1]}"
        t = time.monotonic()
        r = dfs(web, "mount", mnt)
        assert r.returncode == 1
        assert one_line(r.stderr) == f"dfs: mount: {mnt}: {web} is not a dfs namenode (something else answers there)"
        assert time.monotonic() - t < 10   # not retried as if it were down
        assert not os.path.ismount(mnt)
        # the CLI shares the path
        r = dfs(web, "ls", "/")
        assert r.returncode == 1 and "is not a dfs namenode" in one_line(r.stderr)

        quiet = f"127.0.0.6:{silent.getsockname()[1]}"
        t = time.monotonic()
        r = dfs(quiet, "mount", mnt, env={"DFS_RETRY_SECONDS": "1"})
        assert r.returncode == 1
        assert one_line(r.stderr) == f"dfs: mount: {mnt}: cannot reach namenode {quiet}"
        assert time.monotonic() - t < 15   # SPEC 3: an unreachable namenode fails within 15 s
        assert not os.path.ismount(mnt)
    finally:
        http_srv.shutdown()
        http_srv.server_close()
        silent.close()


# -- 3. no live datanode: EIO, not ENOSPC -----------------------------------------------------


def test_writing_with_no_live_datanode_is_eio_not_enospc(tmp_path, mount_root, fuse_mount):
    c = Cluster(str(tmp_path / "nodn"), datanodes=1, heartbeat=0.5, dead_timeout=3.0)
    c.start()
    mnt = os.path.join(mount_root, "nodn")
    try:
        fuse_mount(c, mnt)
        with open(os.path.join(mnt, "before"), "wb") as f:
            f.write(b"x")
        c.kill(c.datanodes[0])
        c.wait_for(lambda: not c.report()["live"], timeout=30, what="the datanode declared dead")
        path = os.path.join(mnt, "after")
        t = time.monotonic()
        with pytest.raises(OSError) as ei:
            with open(path, "wb") as f:
                f.write(b"y" * 1000)
        assert ei.value.errno == errno.EIO, ei.value
        # a hole (truncate up) is not "does not fit" when nothing is live to ask
        with pytest.raises(OSError) as ei:
            os.truncate(os.path.join(mnt, "before"), 10 << 20)
        assert ei.value.errno == errno.EIO, ei.value
        assert time.monotonic() - t < 60
    finally:
        fuse_mount.unmount(mnt)
        c.stop()
