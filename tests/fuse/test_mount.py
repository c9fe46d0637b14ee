"""`dfs mount` / `dfs umount` as a user meets them: start-up, errors, signals, -o ro, outages."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import pytest

from dfs.testing import Cluster

pytestmark = pytest.mark.fuse


def dfs(cluster: Cluster, *args: str, env: dict | None = None, timeout: float = 60):
    return subprocess.run(
        [sys.executable, "-m", "dfs", "--namenode", cluster.namenode_address, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**cluster.env, **(env or {})},
    )


def wait_for(pred, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_mount_and_umount(fuse_cluster, mount_root, fuse_mount):
    unmount = fuse_mount.unmount
    mnt = os.path.join(mount_root, "cycle")
    os.makedirs(mnt)
    r = dfs(fuse_cluster, "mount", mnt)
    assert r.returncode == 0, r.stderr
    try:
        assert os.path.ismount(mnt)
        assert os.path.isdir(mnt) and os.listdir(mnt) is not None  # answers at once
        assert fuse_mount.daemons(mnt)
        r = dfs(fuse_cluster, "mount", mnt)
        assert r.returncode == 1 and "already a mount point" in r.stderr
        r = dfs(fuse_cluster, "umount", mnt)
        assert r.returncode == 0, r.stderr
        assert not os.path.ismount(mnt)
        wait_for(lambda: not fuse_mount.daemons(mnt))
    finally:
        unmount(mnt)


def test_mount_errors(fuse_cluster, mount_root, tmp_path):
    r = dfs(fuse_cluster, "mount", str(tmp_path / "missing"))
    assert r.returncode == 1
    assert r.stderr.strip().endswith("No such file or directory") and "Traceback" not in r.stderr
    mnt = os.path.join(mount_root, "nowhere")
    os.makedirs(mnt)
    t = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "dfs", "--namenode", "127.0.0.1:1", "mount", mnt],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DFS_RETRY_SECONDS": "1"},
    )
    assert r.returncode == 1 and "cannot reach namenode" in r.stderr, r.stderr
    assert time.monotonic() - t < 15
    assert not os.path.ismount(mnt)
    # Without the binding, in the foreground as in the background: one line that says
    # what to install, not an "internal error" (a fake mfusepy that fails to import).
    fake = tmp_path / "nobinding"
    fake.mkdir()
    (fake / "mfusepy.py").write_text("raise ImportError('No module named mfusepy')\n")
    for how in (["--foreground"], []):
        r = subprocess.run(
            [sys.executable, "-m", "dfs", "--namenode", fuse_cluster.namenode_address, "mount", *how, mnt],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "PYTHONPATH": f"{fake}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
        )
        assert r.returncode == 1, (how, r.stderr)
        assert r.stderr.startswith(f"dfs: mount: {mnt}: ") and "pip install -e '.[fuse]'" in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1 and "internal error" not in r.stderr, r.stderr
    assert not os.path.ismount(mnt)
    # An option libfuse does not know: its own reason, our prefix once (it was
    # "dfs: mount: M: dfs: mount: M: FUSE failed (3)", the reason only in the log).
    for _ in range(2):    # the log is appended to: the second says its own reason, once
        r = dfs(fuse_cluster, "mount", "-o", "bogus", mnt)
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
        assert r.stderr.startswith(f"dfs: mount: {mnt}: fuse: unknown option(s): `-o bogus' (log: "), r.stderr
        assert not os.path.ismount(mnt)


def test_a_cache_dir_another_user_planted_is_refused(fuse_cluster, mount_root, tmp_path, fuse_mount):
    """An exploratory tester's attack: another user makes the default cache_dir
    ($TMPDIR/dfs-fuse-UID) first, with a symbolic link at the log's name, and root's
    `dfs mount` appended its log to the file it pointed to. Now the mount is refused,
    one line, exit 1, in the background and the foreground alike, and a cache_dir
    it makes is 0700 with a 0600 log."""
    euid = os.geteuid()
    if euid != 0:
        pytest.skip("planting another user's directory needs root")
    shared = tmp_path / "T"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    victim = tmp_path / "victim"
    victim.write_text("secret\n")
    os.chmod(victim, 0o600)
    mnt = os.path.join(mount_root, "planted")
    os.makedirs(mnt)
    planted = shared / f"dfs-fuse-{euid}"
    planted.mkdir()
    os.chmod(planted, 0o777)
    log_name = "mount-" + mnt.strip("/").replace("/", "_") + ".log"
    os.symlink(victim, planted / log_name)
    for p in (planted, planted / log_name):
        os.lchown(p, 65534, 65534)
    env = {"TMPDIR": str(shared)}
    for how in ([], ["--foreground"], ["-o", f"cache_dir={planted}"]):
        r = dfs(fuse_cluster, "mount", *how, mnt, env=env)
        assert r.returncode == 1 and r.stderr.count("\n") == 1, (how, r.stderr)
        assert r.stderr.startswith(f"dfs: mount: {planted}: cache_dir is owned by another user (uid 65534);"), r.stderr
        assert not os.path.ismount(mnt)
    assert victim.read_text() == "secret\n"
    os.chown(planted, euid, -1)   # ours, but still a link at the log's name (and 0777)
    os.chmod(planted, 0o700)
    r = dfs(fuse_cluster, "mount", mnt, env=env)
    assert r.returncode == 1 and r.stderr.strip() == (
        f"dfs: mount: {planted / log_name}: cannot open the mount's log: is a symbolic link"), r.stderr
    assert victim.read_text() == "secret\n" and not os.path.ismount(mnt)

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    r = dfs(fuse_cluster, "mount", mnt, env={"TMPDIR": str(fresh)})
    try:
        assert r.returncode == 0, r.stderr
        made = fresh / f"dfs-fuse-{euid}"
        assert oct(os.lstat(made).st_mode & 0o7777) == oct(0o700)
        assert oct(os.lstat(made / log_name).st_mode & 0o7777) == oct(0o600)
    finally:
        fuse_mount.unmount(mnt)


def test_bad_option_values_and_addresses_are_usage_errors(mount_root):
    """`dfs mount -o` and `python -m dfs_fuse` check values (and the namenode address,
    as the CLI does) before anything else: exit 2, one line, nothing mounted. The
    address 127.0.0.1:1 answers nothing: a check that came after an RPC would be
    "cannot reach namenode" (exit 1) instead."""
    mnt = os.path.join(mount_root, "badopts")
    os.makedirs(mnt)
    afile = os.path.join(mount_root, "afile")   # a cache_dir that is a file: "File exists", exit 1
    with open(afile, "w") as f:
        f.write("x")
    env = {**os.environ, "DFS_RETRY_SECONDS": "1"}
    env.pop("DFS_NAMENODE", None)
    dfs_mount = [sys.executable, "-m", "dfs", "--namenode", "127.0.0.1:1", "mount"]
    serve = [sys.executable, "-m", "dfs_fuse", "--namenode", "127.0.0.1:1"]
    cases = [
        (dfs_mount + ["-o", "cache_size=abc", mnt], {}, "dfs: mount: invalid mount option cache_size=abc"),
        (dfs_mount + ["-o", "ro,attr_timeout=-1", mnt], {}, "dfs: mount: invalid mount option attr_timeout=-1"),
        (dfs_mount + ["-o", "readahead", mnt], {}, "dfs: mount: mount option readahead needs a value"),
        (dfs_mount + ["-o", "cache_size=x", mount_root + "/missing"], {}, "invalid mount option cache_size=x"),
        (dfs_mount + ["-o", f"cache_dir={afile}", mnt], {},
         f"dfs: mount: invalid mount option cache_dir={afile} (not a directory)"),
        (serve + ["-o", f"cache_dir={afile}/sub", mnt], {}, "(not a directory)"),
        (serve + ["-o", "write_buffer=1.5G", mnt], {}, "dfs_fuse: invalid mount option write_buffer=1.5G"),
        (serve + ["-o", "read_ahead_kb=-1", mnt], {}, "dfs_fuse: invalid mount option read_ahead_kb=-1"),
        (serve + ["-o", "ro=yes", mnt], {}, "dfs_fuse: mount option ro takes no value"),
        ([sys.executable, "-m", "dfs_fuse", "--namenode", "host:99999", mnt], {},
         "dfs_fuse: argument --namenode: invalid namenode address 'host:99999'"),
        ([sys.executable, "-m", "dfs_fuse", "--namenode", "a b", mnt], {}, "invalid namenode address 'a b'"),
        ([sys.executable, "-m", "dfs_fuse", mnt], {"DFS_NAMENODE": "nn:0"}, "dfs_fuse: $DFS_NAMENODE: "),
        ([sys.executable, "-m", "dfs_fuse", "--bogus", mnt], {}, "dfs_fuse: unrecognized arguments: --bogus"),
        ([sys.executable, "-m", "dfs", "mount", mnt], {"DFS_NAMENODE": "nn:0"}, "dfs: mount: $DFS_NAMENODE: "),
    ]
    for argv, extra, words in cases:
        t = time.monotonic()
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env={**env, **extra})
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (argv, r.returncode, r.stderr)
        assert words in r.stderr and "Traceback" not in r.stderr, (argv, r.stderr)
        assert time.monotonic() - t < 10, argv
        assert not os.path.ismount(mnt)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_foreground_signal_unmounts_cleanly(fuse_cluster, mount_root, fuse_mount, sig):
    unmount = fuse_mount.unmount
    mnt = os.path.join(mount_root, f"fg-{sig.name}")
    os.makedirs(mnt)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dfs",
            "--namenode",
            fuse_cluster.namenode_address,
            "mount",
            "--foreground",
            mnt,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=fuse_cluster.env,
    )
    try:
        wait_for(lambda: os.path.ismount(mnt))
        name = f"dirty-{sig.name}"
        f = open(os.path.join(mnt, name), "wb")
        f.write(b"written before the signal")
        f.flush()  # in the mount, not yet closed
        proc.send_signal(sig)
        wait_for(lambda: not os.path.ismount(mnt))
        # The dirty file was committed on the way out.
        r = fuse_cluster.cli("cat", f"/{name}")
        assert r.stdout == b"written before the signal", r.stderr
        f.close()  # the lazily unmounted file system lets go now
        assert proc.wait(timeout=20) == 0, proc.stderr.read()
        # A foreground mount logs to its stderr, as a background one to its log: it
        # logged nothing, not even "changes lost" (the CLI's CRITICAL level).
        err = proc.stderr.read().decode()
        assert "INFO dfs_fuse.mount: serving dfs://" in err and f"{sig.name}: unmounting" in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
        unmount(mnt)


def test_listed_tells_an_aborted_mount_from_an_unmounted_one(fuse_cluster, mount_root, fuse_mount):
    """serve() calls a FUSE loop error clean only once the mount point is no longer
    listed; a mount whose connection is gone (its process died) is still listed."""
    from dfs_fuse.mount import _listed

    mnt = os.path.join(mount_root, "listed with\ta tab")
    fuse_mount(fuse_cluster, mnt)
    try:
        assert _listed(mnt) and os.path.ismount(mnt)
        for pid in fuse_mount.daemons(mnt):
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not os.path.ismount(mnt))
        with pytest.raises(OSError) as e:
            os.stat(mnt)
        assert e.value.errno == errno.ENOTCONN
        assert _listed(mnt) and not os.path.ismount(mnt)
    finally:
        fuse_mount.unmount(mnt)
    assert not _listed(mnt)
    assert not _listed(os.path.join(mount_root, "listed"))


def test_read_only_mount(fuse_cluster, mount_root, tmp_path, fuse_mount):
    local = tmp_path / "ro"
    local.write_bytes(b"readable")
    assert fuse_cluster.cli("put", "-f", str(local), "/ro-file").returncode == 0
    mnt = os.path.join(mount_root, "ro")
    fuse_mount(fuse_cluster, mnt, "ro")
    try:
        with open(os.path.join(mnt, "ro-file"), "rb") as f:
            assert f.read() == b"readable"
        for fn in (
            lambda: open(os.path.join(mnt, "new"), "wb"),
            lambda: open(os.path.join(mnt, "ro-file"), "ab"),
            lambda: os.mkdir(os.path.join(mnt, "d")),
            lambda: os.unlink(os.path.join(mnt, "ro-file")),
            lambda: os.chmod(os.path.join(mnt, "ro-file"), 0o600),
        ):
            with pytest.raises(OSError) as ei:
                fn()
            assert ei.value.errno == errno.EROFS
    finally:
        fuse_mount.unmount(mnt)


def test_namenode_outage_returns_errors_not_hangs(tmp_path, mount_root, fuse_mount):
    c = Cluster(str(tmp_path / "outage"), datanodes=1, heartbeat=1.0)
    c.start()
    mnt = os.path.join(mount_root, "outage")
    try:
        fuse_mount(c, mnt, env={"DFS_RETRY_SECONDS": "2"})
        with open(os.path.join(mnt, "before"), "wb") as f:
            f.write(b"x")
        c.kill(c.namenode)
        for op in (
            lambda: os.stat(os.path.join(mnt, "never-seen")),
            lambda: os.listdir(mnt),
            lambda: open(os.path.join(mnt, "new-file"), "wb"),
        ):
            t = time.monotonic()
            with pytest.raises(OSError) as ei:
                op()
            assert ei.value.errno in (errno.EIO, errno.ENOTCONN), ei.value
            assert time.monotonic() - t < 10
        c.restart(c.namenode)
        c.wait_for_datanodes(1)
        wait_for(lambda: _ok(lambda: os.listdir(mnt)), timeout=30)
        with open(os.path.join(mnt, "before"), "rb") as f:
            assert f.read() == b"x"
    finally:
        fuse_mount.unmount(mnt)
        c.stop()


def _ok(fn) -> bool:
    try:
        fn()
        return True
    except OSError:
        return False


def test_killed_mount_process_is_reported_and_cleaned_up(fuse_cluster, mount_root, fuse_mount):
    mnt = os.path.join(mount_root, "killed")
    fuse_mount(fuse_cluster, mnt)
    try:
        for pid in fuse_mount.daemons(mnt):
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not fuse_mount.daemons(mnt))
        with pytest.raises(OSError) as ei:
            os.listdir(mnt)
        assert ei.value.errno in (errno.ENOTCONN, errno.ECONNABORTED)
        r = dfs(fuse_cluster, "mount", mnt)
        assert r.returncode == 1 and "stale mount" in r.stderr, r.stderr
        assert dfs(fuse_cluster, "umount", mnt).returncode == 0
        assert not os.path.ismount(mnt)
        assert dfs(fuse_cluster, "mount", mnt).returncode == 0   # and it mounts again
        assert os.path.ismount(mnt)
    finally:
        fuse_mount.unmount(mnt)


def test_staging_spills_to_disk(fuse_cluster, mount_root, fuse_mount, tmp_path):
    """With a 2 MiB memory budget and no streaming, a 12 MiB file is staged mostly on disk."""
    mnt = os.path.join(mount_root, "spill")
    cache = tmp_path / "cache"
    fuse_mount(fuse_cluster, mnt, f"nostream,write_buffer=2M,cache_dir={cache}")
    try:
        data = bytearray(os.urandom(12 << 20))
        with open(os.path.join(mnt, "spilled"), "wb") as f:
            f.write(data)
            for off in (3, 5 << 20, (12 << 20) - 7):
                f.seek(off)
                f.write(b"patch!!")
                data[off:off + 7] = b"patch!!"
            assert [p.name for p in cache.iterdir() if p.name.startswith("spill")] == []  # unlinked
        assert fuse_cluster.client().read_bytes("/spilled") == bytes(data)
    finally:
        fuse_mount.unmount(mnt)


def test_big_read_only_opens_bypass_the_page_cache(fuse_cluster, mount_root, fuse_mount):
    """Read-only opens of files >= direct_read (32 MiB) use direct I/O: same bytes,
    no kernel page cache, hence no shared mmap (ENODEV) unless -o page_cache."""
    import mmap

    big, small = os.urandom(33 << 20), os.urandom(1 << 20)
    client = fuse_cluster.client()
    client.write_bytes("/direct-read/big", big)
    client.write_bytes("/direct-read/small", small)
    default, cached = os.path.join(mount_root, "direct"), os.path.join(mount_root, "cached")
    fuse_mount(fuse_cluster, default)
    fuse_mount(fuse_cluster, cached, "page_cache")
    try:
        with open(os.path.join(default, "direct-read", "big"), "rb") as f:
            assert f.read() == big
            with pytest.raises(OSError) as e:
                mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            assert e.value.errno == errno.ENODEV
        with open(os.path.join(default, "direct-read", "small"), "rb") as f:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                assert m[:] == small
        with open(os.path.join(cached, "direct-read", "big"), "rb") as f:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                assert m[: 1 << 20] == big[: 1 << 20] and m[-100:] == big[-100:]
    finally:
        fuse_mount.unmount(default)
        fuse_mount.unmount(cached)
