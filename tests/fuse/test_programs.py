"""Ordinary programs on the mount: cp, tar, diff, git, sqlite3, rsync, fio, stress-ng."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sysconfig
import tarfile

import pytest

pytestmark = pytest.mark.fuse


def sh(*cmd: str, cwd: str | None = None, timeout: float = 180) -> str:
    r = subprocess.run(
        list(cmd),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "LC_ALL": "C", "GIT_CONFIG_NOSYSTEM": "1", "HOME": cwd or "/tmp"},
    )
    assert r.returncode == 0, (
        f"{' '.join(cmd)} exited {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    )
    return r.stdout


@pytest.fixture(scope="module")
def source_tree(tmp_path_factory):
    """A tarball of ~330 files (70 directories) of the Python stdlib, and its unpacked copy."""
    stdlib = sysconfig.get_paths()["stdlib"]
    base = tmp_path_factory.mktemp("src")
    tar_path = base / "tree.tar"
    with tarfile.open(tar_path, "w") as tar:
        for sub in (
            "json",
            "email",
            "asyncio",
            "xml",
            "unittest",
            "importlib",
            "ctypes",
            "lib2to3",
        ):
            tar.add(
                os.path.join(stdlib, sub),
                arcname=f"tree/{sub}",
                filter=lambda ti: None if "__pycache__" in ti.name else ti,
            )
    sh("tar", "-xf", str(tar_path), cwd=str(base))
    return str(tar_path), str(base / "tree")


def test_files_cross_both_ways_byte_identical(work, fuse_cluster, mnt, tmp_path):
    sizes = [0, 1, 4095, 1 << 20, (4 << 20) + 1, (9 << 20) + 12345]
    client = fuse_cluster.client()
    dfs_dir = "/" + os.path.relpath(work, mnt)
    for n in sizes:
        data = os.urandom(n)
        local = tmp_path / f"in-{n}"
        local.write_bytes(data)
        # CLI -> mount
        dfs_path = "/" + os.path.relpath(work, mnt) + f"/from-cli-{n}"
        assert fuse_cluster.cli("put", str(local), dfs_path).returncode == 0
        with open(os.path.join(work, f"from-cli-{n}"), "rb") as f:
            assert f.read() == data
        # mount -> CLI (cp -p, as a user would: the mode and mtime are set after the data)
        os.chmod(local, 0o640)
        os.utime(local, ns=(0, 1_600_000_000_123_456_000))
        sh("cp", "-p", str(local), os.path.join(work, f"from-mount-{n}"))
        st = client.stat(f"{dfs_dir}/from-mount-{n}")  # the namenode, not the kernel cache
        assert (st.mode, round(st.mtime * 1e6)) == (0o640, 1_600_000_000_123_456)
        out = tmp_path / f"out-{n}"
        r = fuse_cluster.cli("get", "/" + os.path.relpath(work, mnt) + f"/from-mount-{n}", str(out))
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == data
    assert sorted(os.listdir(work)) == sorted(
        [f"from-cli-{n}" for n in sizes] + [f"from-mount-{n}" for n in sizes]
    )


def test_untar_and_diff(work, source_tree):
    tar_path, tree = source_tree
    sh("tar", "-xf", tar_path, cwd=work)
    sh("diff", "-r", tree, os.path.join(work, "tree"))
    # ... and back out again through the mount.
    sh("tar", "-cf", os.path.join(work, "again.tar"), "-C", work, "tree")
    with tarfile.open(os.path.join(work, "again.tar")) as t:
        assert len([m for m in t.getmembers() if m.isfile()]) > 200


def test_git(work, source_tree):
    _, tree = source_tree
    repo = os.path.join(work, "repo")
    sh("cp", "-r", os.path.join(tree, "json"), repo)
    sh("cp", "-r", os.path.join(tree, "email"), os.path.join(repo, "email"))
    git = [
        "git",
        "-c",
        "user.name=dfs",
        "-c",
        "user.email=dfs@example.com",
        "-c",
        "init.defaultBranch=main",
    ]
    sh(*git, "init", "-q", cwd=repo)
    sh(*git, "add", "-A", cwd=repo)
    sh(*git, "commit", "-q", "-m", "first", cwd=repo)
    with open(os.path.join(repo, "decoder.py"), "a") as f:
        f.write("\n# changed on dfs\n")
    sh(*git, "commit", "-q", "-am", "second", cwd=repo)
    sh(*git, "fsck", "--strict", "--no-progress", cwd=repo)
    sh(*git, "gc", "-q", "--aggressive", cwd=repo)
    sh(*git, "fsck", "--strict", "--no-progress", cwd=repo)
    assert sh(*git, "log", "--oneline", cwd=repo).count("\n") == 2
    assert sh(*git, "status", "--porcelain", cwd=repo) == ""


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_sqlite(work, journal):
    path = os.path.join(work, "db.sqlite")
    db = sqlite3.connect(path)
    assert db.execute(f"PRAGMA journal_mode={journal}").fetchone()[0] == journal
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, payload BLOB)")
    for batch in range(4):
        with db:
            db.executemany(
                "INSERT INTO t (name, payload) VALUES (?, ?)",
                [(f"row-{batch}-{i}", os.urandom(64)) for i in range(5000)],
            )
    with db:
        db.execute("UPDATE t SET name = name || '!' WHERE id % 7 = 0")
        db.execute("DELETE FROM t WHERE id % 11 = 0")
    db.execute("CREATE INDEX t_name ON t(name)")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    count = db.execute("SELECT count(*) FROM t").fetchone()[0]
    db.close()
    # A fresh process, through the sqlite3 program.
    out = sh("sqlite3", path, "PRAGMA integrity_check; SELECT count(*) FROM t;")
    assert out.split() == ["ok", str(count)]


def test_rsync(work, source_tree):
    _, tree = source_tree
    dst = os.path.join(work, "copy")
    sh("rsync", "-a", tree + "/", dst + "/")
    assert sh("rsync", "-anci", "--delete", tree + "/", dst + "/") == ""
    # Change a file at the source: exactly that file is listed, and transferred.
    victim = os.path.join(tree, "json", "tool.py")
    os.utime(victim, (0, os.stat(victim).st_mtime + 10))
    assert "json/tool.py" in sh("rsync", "-anci", tree + "/", dst + "/")
    sh("rsync", "-a", tree + "/", dst + "/")
    assert sh("rsync", "-anci", "--delete", tree + "/", dst + "/") == ""


@pytest.mark.parametrize("rw", ["write", "randwrite", "randrw"])
def test_fio_verify(work, rw):
    bs = "64k" if rw == "write" else "4k"
    args = (f"--name=verify --directory={work} --rw={rw} --bs={bs} --size=16M --ioengine=psync"
            " --verify=crc32c --do_verify=1 --verify_state_save=0 --end_fsync=1 --numjobs=1"
            " --randrepeat=0 --output-format=terse --minimal")
    out = sh("fio", *args.split(), cwd=work, timeout=300)
    fields = out.strip().split(";")
    assert fields[4] == "0", f"fio reported error {fields[4]}"


def test_stress_ng(work):
    args = ("--hdd 1 --hdd-bytes 8M --hdd-write-size 64K --dir 1 --dir-dirs 64 --rename 1"
            " --seek 1 --seek-size 8M --verify --timeout 10s --metrics-brief")
    sh("stress-ng", "--temp-path", work, *args.split(), cwd=work, timeout=120)


def test_python_checksums_via_mount(work):
    """Many writers at once (threads in one process): contents stay separate."""
    from concurrent.futures import ThreadPoolExecutor

    blobs = {f"t{i}": os.urandom(300_000 + i * 1000) for i in range(16)}

    def put(name):
        with open(os.path.join(work, name), "wb") as f:
            for off in range(0, len(blobs[name]), 65536):
                f.write(blobs[name][off : off + 65536])

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(put, blobs))
    for name, data in blobs.items():
        with open(os.path.join(work, name), "rb") as f:
            assert hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest(), name
