"""Ordinary programs on a real mount while the cluster fails, one fault at a time.

A 4-datanode cluster (replication 3, 1 MiB blocks) of real processes, mounted
with the CLI. Each test runs real programs (tar, diff, git, sqlite3, cp, dd,
cat, sha256sum) on the mount and, mid-way, SIGKILLs / SIGSTOPs a process or
flips bytes of a replica on disk. SPEC: an acknowledged write survives kill -9
of any single process; a namenode outage is EIO within a bounded time, never a
hang; a frozen datanode is timed out, not waited for.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import subprocess
import sysconfig
import tarfile
import time

import pytest

from dfs.config import parse_address
from dfs.testing import Cluster
from dfs.testing.faults import locations, log_text, wait_state

pytestmark = pytest.mark.fuse

MiB = 1 << 20
RETRY = 20   # DFS_RETRY_SECONDS of the mount: the namenode is back well within it


def run(*cmd: str, cwd: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "LC_ALL": "C", "GIT_CONFIG_NOSYSTEM": "1",
                               "HOME": cwd or "/tmp"})


def sh(*cmd: str, cwd: str | None = None, timeout: float = 120) -> str:
    r = run(*cmd, cwd=cwd, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(cmd)} exited {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return r.stdout


def sha(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def wait_until(pred, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(interval)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("faultprog")
    c = Cluster(str(base / "cluster"), datanodes=4, replication=3, block_size="1MiB",
                heartbeat=1.0, dead_timeout=8.0)
    c.start()
    c.base_path = base
    yield c
    c.stop()


@pytest.fixture(scope="module")
def fmnt(cluster, mount_root, fuse_mount):
    path = os.path.join(mount_root, "faults")
    fuse_mount(cluster, path, f"cache_dir={cluster.base_path / 'cache'}",
               env={"DFS_RETRY_SECONDS": str(RETRY)})
    yield path
    fuse_mount.unmount(path)


def listening(address: str) -> bool:
    try:
        socket.create_connection(parse_address(address), timeout=1).close()
        return True
    except OSError:
        return False


def restart(cluster, node) -> None:
    """Restart ``node`` and wait until it serves again: the namenode still counts a node
    restarted within the dead timeout as live, before it listens."""
    cluster.restart(node)
    wait_until(lambda: listening(node.address), 60, f"{node.name} to listen", interval=0.1)


@pytest.fixture
def healed(cluster):
    """Every process alive and running again after the test: one fault at a time."""
    yield
    if not cluster.namenode.alive:
        restart(cluster, cluster.namenode)
    for d in cluster.datanodes:
        if d.alive:
            cluster.resume(d)
        else:
            restart(cluster, d)
    cluster.wait_for_datanodes(4, timeout=60)


@pytest.fixture
def wdir(fmnt, request):
    d = os.path.join(fmnt, request.node.name.replace("[", "_").replace("]", "_"))
    os.mkdir(d)
    return d


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """~250 files (~3 MB) of the Python stdlib as a tarball, and its unpacked copy."""
    stdlib = sysconfig.get_paths()["stdlib"]
    base = tmp_path_factory.mktemp("tree")
    tar_path = base / "tree.tar"
    with tarfile.open(tar_path, "w") as tar:
        for sub in ("json", "email", "asyncio", "xml", "unittest", "pydoc_data"):
            tar.add(os.path.join(stdlib, sub), arcname=f"tree/{sub}",
                    filter=lambda ti: None if "__pycache__" in ti.name else ti)
    sh("tar", "-xf", str(tar_path), cwd=str(base))
    return str(tar_path), str(base / "tree")


def files_under(d: str) -> int:
    return sum(len(fs) for _, _, fs in os.walk(d))


def kill_when(cluster, node, pred, timeout: float = 60) -> None:
    wait_until(pred, timeout, "the program to get going")
    cluster.kill(node)


# -- 1. tar -x while a datanode is SIGKILLed ----------------------------------------------


def test_untar_while_a_datanode_is_killed(cluster, wdir, tree, healed):
    tar_path, src = tree
    victim = cluster.datanodes[1]
    t = time.monotonic()
    tar = subprocess.Popen(["tar", "-xf", tar_path], cwd=wdir, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        kill_when(cluster, victim, lambda: os.path.isdir(os.path.join(wdir, "tree"))
                  and files_under(os.path.join(wdir, "tree")) >= 40)
        out, err = tar.communicate(timeout=180)
    finally:
        if tar.poll() is None:
            tar.kill()
    print(f"tar -x with a datanode killed: {time.monotonic() - t:.1f} s")
    assert tar.returncode == 0, err
    sh("diff", "-r", src, os.path.join(wdir, "tree"))
    restart(cluster, victim)
    cluster.wait_for_datanodes(4, timeout=60)
    cluster.wait_for_status("HEALTHY", "/" + os.path.basename(wdir), timeout=90)


# -- 2. git and sqlite (WAL) while a datanode is SIGKILLed --------------------------------------


GIT = ["git", "-c", "user.name=dfs", "-c", "user.email=dfs@example.com",
       "-c", "init.defaultBranch=main"]


def test_git_while_a_datanode_is_killed(cluster, wdir, tree, healed):
    _, src = tree
    repo = os.path.join(wdir, "repo")
    sh("cp", "-r", os.path.join(src, "email"), repo)
    sh(*GIT, "init", "-q", cwd=repo)
    add = subprocess.Popen([*GIT, "add", "-A"], cwd=repo, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": repo})
    try:
        kill_when(cluster, cluster.datanodes[2],
                  lambda: files_under(os.path.join(repo, ".git", "objects")) >= 10)
        _, err = add.communicate(timeout=120)
    finally:
        if add.poll() is None:
            add.kill()
    assert add.returncode == 0, err
    sh(*GIT, "commit", "-q", "-m", "first", cwd=repo)
    sh(*GIT, "fsck", "--strict", "--no-progress", cwd=repo)
    assert sh(*GIT, "status", "--porcelain", cwd=repo) == ""
    restart(cluster, cluster.datanodes[2])


def test_sqlite_wal_while_a_datanode_is_killed(cluster, wdir, healed):
    path = os.path.join(wdir, "db.sqlite")
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode=wal").fetchone()[0] == "wal"
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, payload BLOB)")
        for batch in range(6):
            if batch == 3:
                cluster.kill(cluster.datanodes[3])
            with db:
                db.executemany("INSERT INTO t (name, payload) VALUES (?, ?)",
                               [(f"row-{batch}-{i}", os.urandom(100)) for i in range(3000)])
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
    out = sh("sqlite3", path, "PRAGMA integrity_check; SELECT count(*) FROM t;")
    assert out.split() == ["ok", str(6 * 3000)]
    restart(cluster, cluster.datanodes[3])


# -- 3. the namenode SIGKILLed and restarted under cp -r / dd ------------------------------------


def _outcome(proc: subprocess.Popen, t0: float, timeout: float) -> tuple[int, str, float]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"{proc.args[0]} hung for {timeout} s with the namenode restarted") from None
    return proc.returncode, err, time.monotonic() - t0


@pytest.fixture(scope="module")
def short_mnt(cluster, mount_root, fuse_mount):
    """A second mount that gives an unreachable namenode up after 3 s."""
    path = os.path.join(mount_root, "faults-short")
    fuse_mount(cluster, path, f"cache_dir={cluster.base_path / 'cache-short'}",
               env={"DFS_RETRY_SECONDS": "3"})
    yield path
    fuse_mount.unmount(path)


@pytest.mark.parametrize("program,outage", [("cp", "restarted"), ("dd", "restarted"), ("dd", "down")])
def test_namenode_killed_under_a_writer(cluster, fmnt, short_mnt, tree, tmp_path, request,
                                        program, outage, healed):
    """restarted: back within the mount's DFS_RETRY_SECONDS, the program may finish; down:
    it stays down past it (3 s), the program gets EIO. Never a hang, never wrong bytes."""
    _, src = tree
    mnt = fmnt if outage == "restarted" else short_mnt
    wdir = os.path.join(mnt, request.node.name.replace("[", "_").replace("]", "_"))
    os.mkdir(wdir)
    if program == "cp":
        dst = os.path.join(wdir, "copy")
        argv = ["cp", "-r", src, dst]
        started = lambda: os.path.isdir(dst) and files_under(dst) >= 100   # noqa: E731
    else:
        blob = tmp_path / "blob"
        blob.write_bytes(os.urandom(24 * MiB))
        dst = os.path.join(wdir, "blob")
        argv = ["dd", f"if={blob}", f"of={dst}", "bs=256k", "conv=fsync", "status=none"]
        started = lambda: os.path.exists(dst) and os.stat(dst).st_size >= 4 * MiB   # noqa: E731
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(started, 60, f"{program} to get going")
    cluster.kill(cluster.namenode)
    if outage == "restarted":
        time.sleep(1)
        restart(cluster, cluster.namenode)
    rc, err, took = _outcome(proc, t0, timeout=RETRY + 100)
    print(f"{program} with the namenode {outage}: exit {rc} after {took:.1f} s; "
          f"{err.count(chr(10))} error lines: {err[:300]!r}")
    if outage == "down":
        restart(cluster, cluster.namenode)
        assert rc != 0, f"{program} succeeded with the namenode down"
    cluster.wait_for_datanodes(4, timeout=60)
    if rc != 0:
        # an I/O error, reported, within a bounded time
        assert "Input/output error" in err, err
        assert took < RETRY + 60
    # Whatever the outcome, nothing that reads back is silently wrong: every file there
    # is the source or (the one cut short by the failure) a shorter prefix of it, through
    # the mount and as the namenode has it.
    client = cluster.client()
    pairs = []
    if program == "cp":
        for d, _, fs in os.walk(src):
            for f in fs:
                pairs.append((os.path.join(d, f), os.path.join(dst, os.path.relpath(d, src), f)))
    else:
        pairs.append((str(tmp_path / "blob"), dst))
    for a, b in pairs:
        if not os.path.exists(b):
            assert rc != 0, f"{b} missing after {program} exited 0"
            continue
        with open(a, "rb") as fa, open(b, "rb") as fb:
            want, got = fa.read(), fb.read()
        stored = client.read_bytes("/" + os.path.relpath(b, mnt))
        assert got == stored, f"{b}: the mount shows {len(got)} bytes, the namenode has {len(stored)}"
        if rc == 0:
            assert got == want, f"{b} differs from its source"
        else:
            assert want.startswith(got) and len(got) <= len(want), f"{b} is corrupt, not short"


# -- 4. a frozen (SIGSTOPped) datanode under a reader and a writer -------------------------------


FREEZE = 20.0


def mount_log(cluster) -> str:
    [name] = [n for n in os.listdir(cluster.base_path / "cache") if n.endswith(".log")]
    with open(cluster.base_path / "cache" / name, errors="replace") as f:
        return f.read()


def test_read_fails_over_from_a_frozen_datanode(cluster, fmnt, healed):
    data = {"frozen-a": os.urandom(24 * MiB), "frozen-b": os.urandom(12 * MiB)}
    client = cluster.client()
    for name, blob in data.items():
        client.write_bytes(f"/{name}", blob)
    # A node holding the first block. Until it is stale the namenode lists it first 1 time
    # in 3 for each of its blocks (18 of 24 here): the read meets it all but 0.1% of times.
    first = locations(cluster, "/frozen-a")[0]["names"][0]
    frozen = next(d for d in cluster.datanodes if d.address == first)
    seen = len(mount_log(cluster))
    cluster.pause(frozen)
    t0 = time.monotonic()
    try:
        t = time.monotonic()
        r = run("sha256sum", os.path.join(fmnt, "frozen-a"), timeout=60)
        took = time.monotonic() - t
        print(f"sha256sum with a frozen datanode: {took:.1f} s")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split()[0] == hashlib.sha256(data["frozen-a"]).hexdigest()
        assert took < FREEZE / 2, f"the read waited {took:.1f} s on the frozen node"
        t = time.monotonic()
        out = sh("bash", "-c", f"cat {os.path.join(fmnt, 'frozen-b')} | wc -c", timeout=60)
        took = time.monotonic() - t
        print(f"cat | wc -c with a frozen datanode: {took:.2f} s")
        assert int(out) == 12 * MiB
        assert f"on {frozen.address} unavailable: timed out" in mount_log(cluster)[seen:]
        assert took < FREEZE / 2, f"the read waited {took:.1f} s on the frozen node"
        assert time.monotonic() - t0 < FREEZE   # all of it while the node was still frozen
    finally:
        cluster.resume(frozen)
    assert sha(os.path.join(fmnt, "frozen-b")) == hashlib.sha256(data["frozen-b"]).hexdigest()


def test_write_times_out_a_frozen_datanode_and_names_it(cluster, fmnt, tmp_path, healed):
    blob = tmp_path / "blob"
    data = os.urandom(8 * MiB)
    blob.write_bytes(data)
    dst = os.path.join(fmnt, "frozen-write")
    frozen = cluster.datanodes[0]
    healthy = [d.address for d in cluster.datanodes if d is not frozen]
    seen = len(mount_log(cluster))
    cluster.pause(frozen)   # frozen until dd is done: it must be timed out, not waited for
    try:
        t = time.monotonic()
        r = run("dd", f"if={blob}", f"of={dst}", "bs=1M", "conv=fsync", "status=none", timeout=120)
        took = time.monotonic() - t
        print(f"dd with a frozen datanode: {took:.1f} s")
        assert r.returncode == 0, r.stderr
        assert took < 10, f"the write took {took:.1f} s"   # one setup deadline (5 s), not an ack timeout (12.5-17.5 s)
    finally:
        cluster.resume(frozen)
    assert cluster.client().read_bytes("/frozen-write") == data
    assert sha(dst) == hashlib.sha256(data).hexdigest()
    # The frozen node is the one named (the pipeline's node before it timed it out first),
    # not a healthy node after which it sat (all timing out at once blamed those).
    blamed = mount_log(cluster)[seen:]
    assert frozen.address in blamed
    assert not [a for a in healthy if a in blamed], blamed


# -- 5. a replica's bytes flipped on disk ------------------------------------------------------


def test_corrupt_replica_read_through_the_mount_is_right_and_replaced(cluster, fmnt, healed):
    data = os.urandom(3 * MiB + 12345)
    cluster.client().write_bytes("/rot", data)
    bid = locations(cluster, "/rot")[1]["block_id"]
    holders = [d for d, _ in cluster.replica_files(bid)]
    bad = holders[0]
    bad_path = cluster.corrupt_replica(bid, bad)
    with open(bad_path, "rb") as f:
        bad_bytes = f.read()
    # The namenode lists a reader the live replicas before the stale ones, at random
    # among equals: the good replicas' nodes are made stale for the moment the mount
    # loads the locations, so that the read certainly meets the flipped bytes first.
    good = holders[1:]
    for d in good:
        cluster.pause(d)
    try:
        for d in good:
            wait_state(cluster, d, "stale")
        f = open(os.path.join(fmnt, "rot"), "rb")
        assert f.read(1) == data[:1]   # block 0: the locations of every block are loaded
    finally:
        for d in good:
            cluster.resume(d)
    t = time.monotonic()
    with f:
        assert hashlib.sha256(data[:1] + f.read()).digest() == hashlib.sha256(data).digest()
    print(f"read past a corrupt replica: {time.monotonic() - t:.2f} s")

    def replaced() -> bool:
        reps = cluster.replica_files(bid)
        if len(reps) != 3:
            return False
        for _, p in reps:
            with open(p, "rb") as fr:
                if fr.read() == bad_bytes:
                    return False
        return True

    t = time.monotonic()
    cluster.wait_for(replaced, timeout=60, what="the corrupt replica to be replaced")
    print(f"corrupt replica replaced after {time.monotonic() - t:.1f} s")
    assert "reported corrupt" in log_text(cluster.namenode)
    cluster.wait_for_status("HEALTHY", "/rot", timeout=60)
