"""The mount when things go wrong: other processes closing our files, unmount refusals,
a dead cluster, repeated signals, something other than a namenode at the address."""

from __future__ import annotations

import contextlib
import errno
import http.server
import itertools
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


NOT_NN = "is not a dfs namenode (something else answers there)"


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
        assert one_line(r.stderr) == f"dfs: mount: {mnt}: {web} {NOT_NN}"
        assert time.monotonic() - t < 10   # not retried as if it were down
        assert not os.path.ismount(mnt)
        # the CLI shares the path, and so does the mount process run by hand
        r = dfs(web, "ls", "/")
        assert r.returncode == 1 and "is not a dfs namenode" in one_line(r.stderr)
        r = subprocess.run([sys.executable, "-m", "dfs_fuse", "--namenode", web, mnt],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1
        assert one_line(r.stderr) == f"dfs_fuse: {mnt}: {web} {NOT_NN}"
        assert not os.path.ismount(mnt)

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


# -- 1. only the opener's close commits ---------------------------------------------------------


def test_a_close_by_another_process_does_not_commit_a_half_written_file(fuse_cluster, work):
    client = fuse_cluster.client()
    path = os.path.join(work, "half")
    dfs_path = "/" + os.path.relpath(path, os.path.dirname(work))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, b"first half;")
        pid = os.fork()
        if pid == 0:   # a forked child writes through the shared descriptor and exits
            try:
                os.write(fd, b"child;")
            finally:
                os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        # a shell command that inherited the descriptor closes its copy on exit
        r = subprocess.run(["bash", "-c", f"printf 'shell;' >&{fd}"], pass_fds=(fd,), timeout=30)
        assert r.returncode == 0
        assert client.read_bytes(dfs_path) == b"", "a close by another process committed it"
        os.write(fd, b"second half")
        # A close from another thread of the opener is the opener's: it commits, even
        # with a second descriptor still open (no release yet).
        fd2 = os.dup(fd)
        t = threading.Thread(target=os.close, args=(fd,))
        t.start()
        t.join(30)
        fd = fd2
        assert client.read_bytes(dfs_path) == b"first half;child;shell;second half"
        os.write(fd, b"!")
    finally:
        os.close(fd)
    assert client.read_bytes(dfs_path) == b"first half;child;shell;second half!"


def test_a_child_closing_last_still_commits(fuse_cluster, work):
    """Release (the last close, whoever's) commits: a file handed to a child that
    outlives the opener's descriptor is not lost."""
    client = fuse_cluster.client()
    path = os.path.join(work, "handed")
    dfs_path = "/" + os.path.relpath(path, os.path.dirname(work))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"parent;")
    child = subprocess.Popen(
        ["bash", "-c", f"read _; printf 'child' >&{fd}"], pass_fds=(fd,), stdin=subprocess.PIPE
    )
    os.close(fd)   # the opener's close commits what it wrote
    assert client.read_bytes(dfs_path) == b"parent;"
    child.communicate(b"go\n", timeout=30)
    assert child.returncode == 0
    wait_for(lambda: client.read_bytes(dfs_path) == b"parent;child", what="the release commit")


# -- 2. dfs umount ---------------------------------------------------------------------------


AS_OTHER_USER = """
import os, sys
os.geteuid = lambda: 65534   # nobody: only dfs's own check is fooled, fusermount still runs as root
from dfs.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_umount_of_another_users_mount_says_whose(fuse_cluster, mount_root, fuse_mount):
    """fusermount3 said "entry for M not found in /etc/mtab" of a mount that was there:
    it looks for the caller's own. (Faked: root's venv is not nobody's to run.)"""
    if os.geteuid() == 65534:
        pytest.skip("run as nobody: the faked other user is us")
    mnt = os.path.join(mount_root, "roots")
    fuse_mount(fuse_cluster, mnt)
    try:
        r = subprocess.run([sys.executable, "-c", AS_OTHER_USER, "umount", mnt],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1
        assert one_line(r.stderr) == (f"dfs: umount: {mnt}: mounted by another user (uid {os.geteuid()}); "
                                      "only they or root can unmount it")
        assert os.path.ismount(mnt)
    finally:
        fuse_mount.unmount(mnt)


def test_umount_refusals_are_one_clear_line(fuse_cluster, mount_root, tmp_path, fuse_mount):
    nn = fuse_cluster.namenode_address
    r = dfs(nn, "umount", str(tmp_path))
    assert r.returncode == 1 and one_line(r.stderr) == f"dfs: umount: {tmp_path}: not a mount point"
    r = dfs(nn, "umount", str(tmp_path / "missing"))
    assert r.returncode == 1
    assert one_line(r.stderr) == f"dfs: umount: {tmp_path / 'missing'}: No such file or directory"
    r = dfs(nn, "umount", "/proc")   # refused before any unmount tool is run
    assert r.returncode == 1
    assert one_line(r.stderr) == "dfs: umount: /proc: not a dfs mount (a proc file system)"
    assert os.path.ismount("/proc") and os.path.exists("/proc/self/mountinfo")
    assert dfs(nn, "umount").returncode == 2   # usage

    mnt = os.path.join(mount_root, "busy")
    fuse_mount(fuse_cluster, mnt)
    try:
        with open(os.path.join(mnt, "held"), "wb") as f:
            f.write(b"held open")
            f.flush()
            r = dfs(nn, "umount", mnt)
            assert r.returncode == 1
            line = one_line(r.stderr)
            assert line.startswith(f"dfs: umount: {mnt}: busy") and f"dfs umount -l {mnt}" in line
            assert os.path.ismount(mnt)
            r = dfs(nn, "umount", "--lazy", mnt)
            assert r.returncode == 0, r.stderr
            assert not os.path.ismount(mnt)
            f.write(b", then closed")   # the detached mount serves its open files until closed
        wait_for(lambda: not fuse_mount.daemons(mnt), what="the mount process to exit")
        assert fuse_cluster.client().read_bytes("/held") == b"held open, then closed"
    finally:
        fuse_mount.unmount(mnt)


# -- 4. a second signal ---------------------------------------------------------------------------


def test_mount_process_run_by_hand_commits_and_unmounts_on_sigterm(
    fuse_cluster, mount_root, fuse_mount
):
    """`python -m dfs_fuse` pings the namenode first (gRPC threads) and must still take
    SIGTERM on its signal thread: commit, unmount, exit 0."""
    mnt = os.path.join(mount_root, "by-hand")
    os.makedirs(mnt, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dfs_fuse", "--namenode", fuse_cluster.namenode_address, mnt],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=fuse_cluster.env,
    )
    try:
        wait_for(lambda: os.path.ismount(mnt), what="the mount")
        f = open(os.path.join(mnt, "by-hand"), "wb", buffering=0)
        f.write(b"open at SIGTERM")
        proc.terminate()
        wait_for(lambda: not os.path.ismount(mnt), what="the unmount")
        assert fuse_cluster.client().read_bytes("/by-hand") == b"open at SIGTERM"
        f.close()
        assert proc.wait(timeout=30) == 0, proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        fuse_mount.unmount(mnt)


@contextlib.contextmanager
def foreground_mount(fuse_mount, namenode: str, mnt: str, env: dict):
    """`dfs mount --foreground MNT` as a child process, mounted; killed and unmounted
    however the test ends."""
    os.makedirs(mnt, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dfs", "--namenode", namenode, "mount", "--foreground", mnt],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    try:
        wait_for(lambda: os.path.ismount(mnt), what="the mount")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        fuse_mount.unmount(mnt)


def close_quietly(f) -> None:
    try:
        f.close()
    except OSError:
        pass


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_second_signal_with_files_open_commits_and_exits_1(
    fuse_cluster, mount_root, fuse_mount, sig
):
    name = f"twice-{sig.name}"
    mnt = os.path.join(mount_root, name)
    with foreground_mount(fuse_mount, fuse_cluster.namenode_address, mnt, fuse_cluster.env) as proc, \
            open(os.path.join(mnt, name), "wb", buffering=0) as f:
        try:
            f.write(b"before the first signal;")
            proc.send_signal(sig)
            wait_for(lambda: not os.path.ismount(mnt), what="the lazy unmount")
            assert fuse_cluster.client().read_bytes(f"/{name}") == b"before the first signal;"
            # the writer carries on; the process waits for it ...
            f.write(b"before the second")
            time.sleep(1)
            assert proc.poll() is None
            # ... until a second signal: commit best-effort, exit 1, no hang
            t = time.monotonic()
            proc.send_signal(sig)
            assert proc.wait(timeout=30) == 1
            assert time.monotonic() - t < 20
            committed = fuse_cluster.client().read_bytes(f"/{name}")
            assert committed == b"before the first signal;before the second"
            with pytest.raises(OSError) as ei:   # the file system is gone from under the writer
                f.write(b"after")
            assert ei.value.errno in (errno.ENOTCONN, errno.ECONNABORTED)
        finally:
            close_quietly(f)


# -- namenode outage: EIO within the deadline; a failed close is final -----------------------


def test_namenode_outage_eio_and_a_failed_close_is_never_committed_later(
    tmp_path, mount_root, fuse_mount
):
    c = Cluster(str(tmp_path / "nnout"), datanodes=1, heartbeat=1.0)
    c.start()
    mnt = os.path.join(mount_root, "nnout")
    cache = tmp_path / "cache"
    try:
        fuse_mount(c, mnt, f"cache_dir={cache}", env={"DFS_RETRY_SECONDS": "2"})
        fd = os.open(os.path.join(mnt, "lost"), os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"staged while the namenode was up")
        fd2 = os.dup(fd)   # so the close below is not the last: release comes later
        c.kill(c.namenode)
        for op in (lambda: os.stat(os.path.join(mnt, "never-seen")), lambda: os.listdir(mnt)):
            t = time.monotonic()
            with pytest.raises(OSError) as ei:
                op()
            assert ei.value.errno == errno.EIO, ei.value   # not ENOTCONN: the mount is alive
            assert time.monotonic() - t < 10
        t = time.monotonic()
        with pytest.raises(OSError) as ei:
            os.close(fd)
        assert ei.value.errno == errno.EIO and time.monotonic() - t < 30
        c.restart(c.namenode)
        c.wait_for_datanodes(1)
        with pytest.raises(OSError) as ei:   # the same content: the same failure
            os.close(fd2)
        assert ei.value.errno == errno.EIO
        # Released now, with the namenode back: still the empty file created before.
        assert c.client().read_bytes("/lost") == b""
        # The mount's channel reconnects on its own backoff (up to 2 s, +-20%), which
        # can outlast the 2 s of retries this test gives its calls: wait until a lookup
        # reaches the namenode again (ENOENT, not EIO).
        probes = itertools.count()

        def reaches_namenode() -> bool:
            try:
                os.stat(os.path.join(mnt, f"probe-{next(probes)}"))
            except OSError as e:
                return e.errno == errno.ENOENT
            return False

        wait_for(reaches_namenode, 30, "the mount to reach the restarted namenode")
        with open(os.path.join(mnt, "lost"), "wb") as f:   # and the file can be written again
            f.write(b"again")
        assert c.client().read_bytes("/lost") == b"again"
    except BaseException:   # the servers' and the mount's own account, for the report
        print(c.dump_logs(lines=60))
        for log in cache.glob("mount-*.log"):
            print(f"--- {log}\n{log.read_text(errors='replace')[-8000:]}")
        raise
    finally:
        fuse_mount.unmount(mnt)
        c.stop()


def test_writing_with_every_live_datanode_full_is_enospc(tmp_path, mount_root, fuse_mount):
    """The datanode's data dir is on a small tmpfs, filled up by hand: the datanode is
    live and reports no room, and only then does a write through the mount say ENOSPC."""
    c = Cluster(str(tmp_path / "full"), datanodes=1, heartbeat=0.5)
    vol = str(tmp_path / "vol")
    os.makedirs(vol)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", vol], check=True, timeout=30)
    node = c.datanodes[0]
    i = node.argv.index("--data-dir")
    node.argv[i + 1] = node.data_dir = os.path.join(vol, "data")
    mnt = os.path.join(mount_root, "full")
    try:
        c.start()
        fuse_mount(c, mnt)
        with open(os.path.join(mnt, "fits"), "wb") as f:
            f.write(b"before the disk filled")
        with open(os.path.join(vol, "filler"), "wb") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
                    f.flush()
            except OSError as e:
                assert e.errno == errno.ENOSPC
        def full() -> bool:
            live = c.report()["live"]
            return bool(live) and all(d["remaining"] == 0 for d in live)

        c.wait_for(full, timeout=30, what="the datanode to report a full disk")
        with pytest.raises(OSError) as ei:
            with open(os.path.join(mnt, "too-much"), "wb") as f:
                f.write(b"y" * 1000)
        assert ei.value.errno == errno.ENOSPC, ei.value
        assert c.client().read_bytes("/fits") == b"before the disk filled"
    finally:
        fuse_mount.unmount(mnt)
        c.stop()
        subprocess.run(["umount", "-l", vol], capture_output=True, timeout=30)


def test_second_signal_exits_while_the_first_commit_waits_on_a_dead_namenode(
    tmp_path, mount_root, fuse_mount
):
    c = Cluster(str(tmp_path / "stuck"), datanodes=1, heartbeat=1.0)
    c.start()
    mnt = os.path.join(mount_root, "stuck")
    env = {**c.env, "DFS_RETRY_SECONDS": "60"}   # the first signal's commit retries for a minute
    try:
        with foreground_mount(fuse_mount, c.namenode_address, mnt, env) as proc, \
                open(os.path.join(mnt, "stuck"), "wb", buffering=0) as f:
            try:
                f.write(b"never committed")
                c.kill(c.namenode)
                proc.terminate()
                time.sleep(1)   # usually its commit is waiting by now; either way the next ends it
                t = time.monotonic()
                proc.terminate()
                assert proc.wait(timeout=40) == 1
                assert time.monotonic() - t < 25   # SECOND_SIGNAL_GRACE (10 s) + the unmount
                wait_for(lambda: not os.path.ismount(mnt), what="the mount to be gone")
            finally:
                close_quietly(f)
    finally:
        c.stop()


def test_ls_and_stat_against_a_frozen_namenode_are_eio_within_the_deadline(
    tmp_path, mount_root, fuse_mount
):
    """A namenode that accepts and never answers (SIGSTOP): each call's 10 s deadline."""
    c = Cluster(str(tmp_path / "frozen"), datanodes=1, heartbeat=1.0)
    c.start()
    mnt = os.path.join(mount_root, "frozen")
    try:
        fuse_mount(c, mnt, "strict")   # no cached attributes to answer from
        os.mkdir(os.path.join(mnt, "d"))
        c.pause(c.namenode)
        try:
            for argv in (["stat", os.path.join(mnt, "d")], ["ls", "-l", mnt]):
                t = time.monotonic()
                r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
                took = time.monotonic() - t
                assert r.returncode != 0 and "Input/output error" in r.stderr, r.stderr
                assert took < 25, f"{argv[0]} took {took:.1f} s"
        finally:
            c.resume(c.namenode)
        wait_for(lambda: subprocess.run(["ls", mnt], capture_output=True).returncode == 0,
                 what="the mount to answer again")
        assert os.path.isdir(os.path.join(mnt, "d"))
    finally:
        fuse_mount.unmount(mnt)
        c.stop()
