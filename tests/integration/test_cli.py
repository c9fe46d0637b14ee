"""The CLI as a user meets it: commands, cp semantics, errors, exit codes, JSON shapes."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import time

import fsspec
import pytest

from dfs import errors
from dfs.rpc.v1 import namenode_pb2 as pb
from dfs.testing.cluster import free_port, read_until
from dfs.testing.faults import locations

ERROR_LINE = re.compile(rb"^dfs: [a-z ]+: .+\n$")


def run(c, *args, **kw):
    return c.cli(*args, **kw)


def fails(r, reason: bytes, code: int = 1):
    assert r.returncode == code, (r.returncode, r.stderr)
    assert ERROR_LINE.match(r.stderr), r.stderr
    assert reason in r.stderr, r.stderr
    assert b"Traceback" not in r.stderr


@pytest.fixture
def c(shared_cluster):
    return shared_cluster


@pytest.fixture
def d(c, request):
    """A fresh directory for one test."""
    path = "/" + re.sub(r"\W", "_", request.node.name)
    c.cli("rm", "-r", "-f", path)
    assert c.cli("mkdir", path).returncode == 0
    return path


def test_put_get_cat_stdin_and_empty(c, d, tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert run(c, "put", str(empty), f"{d}/empty").returncode == 0
    assert run(c, "cat", f"{d}/empty").stdout == b""
    st = json.loads(run(c, "stat", "--json", f"{d}/empty").stdout)
    assert st["size"] == 0 and st["type"] == "file"
    data = os.urandom(200_000)
    assert run(c, "put", "-", f"{d}/stdin.bin", input=data).returncode == 0
    assert run(c, "cat", f"{d}/stdin.bin").stdout == data
    out = tmp_path / "out.bin"
    assert run(c, "get", f"{d}/stdin.bin", str(out)).returncode == 0
    assert out.read_bytes() == data


def test_get_writes_into_devices_fifos_and_through_symlinks_and_takes_long_names(c, d, tmp_path):
    # get -f used to replace the node itself with a regular file: /dev/null (as root),
    # a FIFO, a symlink. As cp -f: write into a device or FIFO, through a symlink.
    import stat as st_
    import threading
    data = os.urandom(300_000)
    assert run(c, "put", "-", f"{d}/f", input=data).returncode == 0
    null = tmp_path / "null"
    os.mknod(null, 0o666 | st_.S_IFCHR, os.makedev(1, 3))
    assert run(c, "get", "-f", f"{d}/f", str(null)).returncode == 0
    assert st_.S_ISCHR(os.stat(null).st_mode) and os.stat(null).st_rdev == os.makedev(1, 3)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    assert run(c, "get", "-f", f"{d}/f", str(fifo), timeout=60).returncode == 0
    reader.join(30)
    assert got == [data] and st_.S_ISFIFO(os.stat(fifo).st_mode)
    real, link = tmp_path / "real", tmp_path / "link"
    real.write_bytes(b"old")
    link.symlink_to(real)
    fails(run(c, "get", f"{d}/f", str(link)), b"File exists")
    assert run(c, "get", "-f", f"{d}/f", str(link)).returncode == 0
    assert link.is_symlink() and real.read_bytes() == data
    # A name of 237-255 bytes: the temporary name beside it must fit NAME_MAX too.
    long = "q" * 255
    assert run(c, "put", "-", f"{d}/{long}", input=b"hi").returncode == 0
    assert run(c, "get", f"{d}/{long}", str(tmp_path)).returncode == 0
    assert (tmp_path / long).read_bytes() == b"hi"
    assert [n for n in os.listdir(tmp_path) if n.endswith(".dfs-part")] == []


def test_names_the_terminal_cannot_encode_are_printed_escaped(c, d):
    # LC_ALL=C: ls stopped at the first such name, calling it "invalid name (not UTF-8)".
    assert run(c, "put", "-", f"{d}/caf\u00e9", input=b"a").returncode == 0
    assert run(c, "put", "-", f"{d}/zz", input=b"b").returncode == 0
    ascii_ = {"PYTHONIOENCODING": "ascii"}
    r = run(c, "ls", d, env=ascii_)
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    assert b"/caf\\xe9\n" in r.stdout and b"/zz\n" in r.stdout
    r = run(c, "ls", "--json", d, env=ascii_)
    assert r.returncode == 0 and {e["path"] for e in json.loads(r.stdout)} == {f"{d}/caf\u00e9", f"{d}/zz"}


def test_cat_stopped_and_continued_while_writing_loses_nothing(c, d):
    # Under PYTHONUNBUFFERED, stdout is a raw file: a write to a full pipe interrupted
    # by SIGSTOP/SIGCONT (Ctrl-Z, fg) returns short, and the rest of that piece was lost
    # with exit 0.
    data = os.urandom(24 << 20)
    assert run(c, "put", "-", f"{d}/big", input=data).returncode == 0
    p = subprocess.Popen([sys.executable, "-m", "dfs", "--namenode", c.namenode_address, "cat", f"{d}/big"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**c.env, "PYTHONUNBUFFERED": "1"})
    got = bytearray(p.stdout.read(1 << 20))
    for _ in range(3):
        time.sleep(0.5)                       # it fills the pipe and blocks in write()
        p.send_signal(signal.SIGSTOP)
        time.sleep(0.2)
        p.send_signal(signal.SIGCONT)
        got += p.stdout.read(4 << 20)
    got += p.stdout.read()
    assert p.wait(30) == 0, p.stderr.read()
    assert len(got) == len(data) and bytes(got) == data


def test_cp_semantics_into_directories(c, d, tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(b"alpha\n")
    b.write_bytes(b"beta\n")
    assert run(c, "mkdir", f"{d}/sub").returncode == 0
    assert run(c, "put", str(a), str(b), f"{d}/sub").returncode == 0
    names = [e["path"] for e in json.loads(run(c, "ls", "--json", f"{d}/sub").stdout)]
    assert names == [f"{d}/sub/a.txt", f"{d}/sub/b.txt"]
    # Several sources need a directory.
    fails(run(c, "put", str(a), str(b), f"{d}/nodir"), b"No such file or directory")
    # Existing destination without -f is refused; with -f replaced.
    fails(run(c, "put", str(b), f"{d}/sub/a.txt"), b"File exists")
    assert run(c, "cat", f"{d}/sub/a.txt").stdout == b"alpha\n"
    assert run(c, "put", "-f", str(b), f"{d}/sub/a.txt").returncode == 0
    assert run(c, "cat", f"{d}/sub/a.txt").stdout == b"beta\n"
    # get into an existing local directory, then refuse to overwrite without -f.
    outdir = tmp_path / "out"
    outdir.mkdir()
    assert run(c, "get", f"{d}/sub/a.txt", f"{d}/sub/b.txt", str(outdir)).returncode == 0
    assert (outdir / "a.txt").read_bytes() == b"beta\n"
    fails(run(c, "get", f"{d}/sub/a.txt", str(outdir)), b"File exists")
    assert run(c, "get", "-f", f"{d}/sub/b.txt", str(outdir / "a.txt")).returncode == 0
    assert not [p for p in os.listdir(outdir) if p.endswith(".dfs-part")]
    # mv and cp inside dfs.
    assert run(c, "mv", f"{d}/sub/a.txt", f"{d}/moved.txt").returncode == 0
    assert run(c, "cp", f"{d}/moved.txt", f"{d}/sub").returncode == 0
    assert run(c, "cat", f"{d}/sub/moved.txt").stdout == b"beta\n"
    assert run(c, "test", "-e", f"{d}/sub/a.txt").returncode == 1


def test_put_recursive_and_get_directory(c, d, tmp_path):
    src = tmp_path / "tree"
    (src / "x" / "y").mkdir(parents=True)
    (src / "top.txt").write_bytes(b"top")
    (src / "x" / "y" / "deep.bin").write_bytes(os.urandom(70_000))
    other = tmp_path / "other"
    other.mkdir()
    (other / "o.txt").write_bytes(b"linked")
    (src / "x" / "dirlink").symlink_to(other)      # followed: its files are copied
    (src / "x" / "loop").symlink_to(src)            # a cycle: each real directory once
    fails(run(c, "put", str(src), f"{d}/tree"), b"Is a directory")
    assert run(c, "put", "-r", str(src), f"{d}/tree").returncode == 0
    back = tmp_path / "back"
    assert run(c, "get", f"{d}/tree", str(back)).returncode == 0
    assert (back / "x" / "y" / "deep.bin").read_bytes() == (src / "x" / "y" / "deep.bin").read_bytes()
    assert (back / "top.txt").read_bytes() == b"top"
    assert (back / "x" / "dirlink" / "o.txt").read_bytes() == b"linked"
    assert not (back / "x" / "loop").exists()
    listing = run(c, "ls", "-R", f"{d}/tree").stdout.decode()
    assert f"{d}/tree/x/y/deep.bin" in listing


def test_cp_recursive_copies_a_tree_byte_identical(c, d, tmp_path):
    src = tmp_path / "tree"
    (src / "x" / "y").mkdir(parents=True)
    (src / "x" / "empty").mkdir()
    files = {"top.txt": b"top", "x/mid.bin": os.urandom(5000), "x/y/deep.bin": os.urandom(200_000)}
    for name, data in files.items():
        (src / name).write_bytes(data)
    assert run(c, "put", "-r", str(src), f"{d}/tree").returncode == 0
    fails(run(c, "cp", f"{d}/tree", f"{d}/copy"), b"Is a directory")
    fails(run(c, "cp", "-r", f"{d}/tree", f"{d}/tree/x/inside"), b"into itself")
    for threads in ("1", "4"):
        dest = f"{d}/copy{threads}"
        assert run(c, "cp", "-r", "-t", threads, f"{d}/tree", dest).returncode == 0
        for name, data in files.items():
            assert run(c, "cat", f"{dest}/{name}").stdout == data
        assert run(c, "test", "-d", f"{dest}/x/empty").returncode == 0
    # cp semantics: an existing directory receives the tree; its files are not overwritten without -f.
    assert run(c, "cp", "-r", f"{d}/tree", f"{d}/copy1").returncode == 0
    assert run(c, "cat", f"{d}/copy1/tree/x/mid.bin").stdout == files["x/mid.bin"]
    lines = _failure_lines(run(c, "cp", "-r", f"{d}/tree", f"{d}/copy1"))   # one line per file
    assert lines == [f"dfs: cp: {d}/copy1/tree/{name}: File exists" for name in files]
    assert run(c, "cp", "-r", "-f", f"{d}/tree", f"{d}/copy1").returncode == 0


def test_chmod_and_chown_recursive_and_bad_modes(c, d):
    assert run(c, "mkdir", "-p", f"{d}/a/b").returncode == 0
    for p in ("a/b/f", "a/g"):
        assert run(c, "put", "-", f"{d}/{p}", input=b"x").returncode == 0
    assert run(c, "chmod", "-R", "go-rwx", f"{d}/a").returncode == 0
    modes = {e["path"]: e["mode"] for e in json.loads(run(c, "ls", "-R", "--json", f"{d}/a").stdout)}
    assert modes == {f"{d}/a/b": "0700", f"{d}/a/b/f": "0600", f"{d}/a/g": "0600"}
    assert json.loads(run(c, "stat", "--json", f"{d}/a").stdout)["mode"] == "0700"
    assert run(c, "chown", "-R", "alice:eng", f"{d}/a").returncode == 0
    owners = {(e["owner"], e["group"]) for e in json.loads(run(c, "ls", "-R", "--json", f"{d}/a").stdout)}
    assert owners == {("alice", "eng")}
    for bad in ("999", "12345", "u+q", "x=r"):
        r = run(c, "chmod", bad, f"{d}/a")
        assert r.returncode == 2 and b"invalid mode" in r.stderr and b"Traceback" not in r.stderr, r.stderr


def test_put_and_get_of_many_files_run_in_parallel_and_report_each_failure(c, d, tmp_path):
    src = tmp_path / "many"
    want = {}
    for i in range(40):
        sub = src / f"s{i % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        data = os.urandom(i * 997)
        (sub / f"f{i:02d}").write_bytes(data)
        want[f"s{i % 4}/f{i:02d}"] = data
    assert run(c, "put", "-r", "-t", "8", str(src), f"{d}/many").returncode == 0
    for threads in ("8", "1"):   # a directory's files come back several at a time, or one by one
        back = tmp_path / f"back{threads}"
        assert run(c, "get", "-t", threads, f"{d}/many", str(back)).returncode == 0
        assert {k: (back / k).read_bytes() for k in want} == want
        assert not [p for p in back.rglob("*") if p.name.endswith(".dfs-part")]
    # Into the existing tree without -f: each file's create fails on the namenode, each says so.
    lines = _failure_lines(run(c, "put", "-r", "-t", "8", str(src / "s1"), f"{d}/many"))
    assert sorted(lines) == [f"dfs: put: {d}/many/s1/f{i:02d}: File exists" for i in range(1, 40, 4)]
    r = run(c, "put", "-f", "-r", "-t", "8", str(src / "s1"), f"{d}/many")
    assert r.returncode == 0, r.stderr
    assert run(c, "cat", f"{d}/many/s1/f05").stdout == want["s1/f05"]
    # Several sources at once, and -t must be a positive number.
    assert run(c, "put", "-t", "3", str(src / "s2" / "f02"), str(src / "s3" / "f03"), f"{d}").returncode == 0
    assert run(c, "cat", f"{d}/f03").stdout == want["s3/f03"]
    r = run(c, "put", "-t", "0", str(src / "s2" / "f02"), f"{d}/x")
    assert r.returncode == 2 and b"Traceback" not in r.stderr
    # Into tmp_path/many, the local tree itself: its files exist, so without -f it fails.
    lines = _failure_lines(run(c, "get", "-t", "8", f"{d}/many", str(tmp_path)))
    assert len(lines) == 40 and all(ln.endswith(": File exists") for ln in lines)


def test_errors_are_one_line_with_the_right_reason(c, d, tmp_path):
    fails(run(c, "cat", f"{d}/missing"), b"No such file or directory")
    fails(run(c, "ls", f"{d}/missing"), b"No such file or directory")
    assert run(c, "mkdir", f"{d}/full").returncode == 0
    assert run(c, "touch", f"{d}/full/f").returncode == 0
    fails(run(c, "rm", f"{d}/full"), b"Is a directory")
    fails(run(c, "mkdir", f"{d}/full"), b"File exists")
    fails(run(c, "mkdir", f"{d}/a/b/c"), b"No such file or directory")
    assert run(c, "mkdir", "-p", f"{d}/a/b/c").returncode == 0
    fails(run(c, "cat", f"{d}/a"), b"Is a directory")
    fails(run(c, "mkdir", f"{d}/full/f/g"), b"Not a directory")
    fails(run(c, "ls", f"{d}/../etc"), b"path component")
    fails(run(c, "ls", f"{d}//x"), b"path component")
    fails(run(c, "rm", f"{d}/nope"), b"No such file or directory")
    assert run(c, "rm", "-f", f"{d}/nope").returncode == 0
    fails(run(c, "mv", f"{d}/a/b", f"{d}/a"), b"are the same file")
    assert run(c, "test", "-d", f"{d}/a/b").returncode == 0
    # Cluster-wide switches are the superuser's.
    fails(run(c, "admin", "safemode", "enter", env={"DFS_USER": "bob"}), b"Permission denied")
    assert b"OFF" in run(c, "admin", "safemode", "get").stdout
    # A refusal about the cluster names the dfs target, not the local source.
    src = tmp_path / "local.txt"
    src.write_bytes(b"x")
    assert run(c, "admin", "safemode", "enter").returncode == 0
    try:
        fails(run(c, "put", str(src), f"{d}/up.txt"), f"dfs: put: {d}/up.txt: namenode is in safe mode".encode())
        # A tree or many paths stop at the first refusal, naming its path: chmod -R printed
        # a pathless line per entry, after 8 s of retries each.
        for cmd in (("chmod", "-R", "777", d), ("setrep", "2", d), ("rm", f"{d}/a/b", f"{d}/a")):
            start = time.monotonic()
            r = run(c, *cmd, env={"DFS_RETRY_SECONDS": "2"})
            fails(r, b": namenode is in safe mode")
            assert r.stderr.count(b"\n") == 1 and r.stderr.startswith(f"dfs: {cmd[0]}: {d}".encode()), r.stderr
            assert time.monotonic() - start < 5.5, cmd      # one path's retries, not one per path
    finally:
        assert run(c, "admin", "safemode", "leave").returncode == 0
    # A name that is not UTF-8 (a byte 0xe9 from a Latin-1 shell): one clear line.
    fails(run(c, "mkdir", f"{d}/caf\udce9"), b"caf\\xe9: invalid name (not UTF-8)")
    # A non-empty directory delete through mv-over is refused too.
    assert run(c, "mkdir", f"{d}/empty").returncode == 0
    fails(run(c, "mv", f"{d}/empty", f"{d}/full/f"), b"Not a directory")
    # Usage errors exit 2.
    r = run(c, "put")
    assert r.returncode == 2 and b"Traceback" not in r.stderr
    r = run(c, "setrep", "x", f"{d}/full/f")
    assert r.returncode == 2


def test_an_administrators_safe_mode_is_not_waited_out(c, d, tmp_path):
    """A write under `dfs admin safemode enter` was retried for 8 s, then told to `dfs
    admin safemode wait`, which would wait until an administrator leaves it. It fails
    at once, saying who entered it and what ends it (as `safemode get` does)."""
    src = tmp_path / "local.txt"
    src.write_bytes(b"x")
    client = c.client()
    assert run(c, "admin", "safemode", "enter").returncode == 0
    try:
        assert run(c, "admin", "safemode", "get").stdout == b"Safe mode is ON (entered by an administrator)\n"
        start = time.monotonic()
        r = run(c, "put", str(src), f"{d}/up.txt")           # the default retries: 8 s
        fails(r, f"dfs: put: {d}/up.txt: namenode is in safe mode, entered by an administrator "
                 "(dfs admin safemode leave ends it)".encode())
        assert time.monotonic() - start < 4
        start = time.monotonic()
        with pytest.raises(errors.SafeModeError, match="entered by an administrator") as ei:
            client.mkdir(f"{d}/sub")
        assert time.monotonic() - start < 1 and ei.value.manual and ei.value.retry_for == 0
    finally:
        assert run(c, "admin", "safemode", "leave").returncode == 0
    assert run(c, "put", str(src), f"{d}/up.txt").returncode == 0


def test_recursive_commands_go_past_an_unreadable_directory(c, d, tmp_path):
    """ls -R, get and cp -r of a tree holding a directory the caller may not read list
    or copy everything else, say one line for that directory and exit 1 (as GNU ls -R
    and cp -r, and hdfs dfs -ls -R / -get); they used to give up at it."""
    bob, alice = {"DFS_USER": "bob"}, {"DFS_USER": "alice"}
    assert run(c, "chmod", "777", d).returncode == 0
    src = tmp_path / "f"
    src.write_bytes(b"bob's")
    for cmd in (["mkdir", f"{d}/e"], ["chmod", "777", f"{d}/e"], ["put", str(src), f"{d}/e/a"],
                ["mkdir", f"{d}/e/priv"], ["put", str(src), f"{d}/e/priv/secret"],
                ["mkdir", f"{d}/e/z"], ["put", str(src), f"{d}/e/z/b"], ["chmod", "700", f"{d}/e/priv"]):
        r = run(c, *cmd, env=bob)
        assert r.returncode == 0, (cmd, r.stderr)
    r = run(c, "ls", "-R", f"{d}/e", env=alice)
    assert r.returncode == 1
    listed = [line.split()[-1] for line in r.stdout.decode().splitlines()]
    assert listed == [f"{d}/e/a", f"{d}/e/priv", f"{d}/e/z", f"{d}/e/z/b"]
    assert r.stderr.decode() == f"dfs: ls: {d}/e/priv: Permission denied\n"
    r = run(c, "ls", "-R", "--json", f"{d}/e", env=alice)
    assert r.returncode == 1 and len(json.loads(r.stdout)) == 4
    r = run(c, "get", f"{d}/e", str(tmp_path / "got"), env=alice)
    assert r.returncode == 1 and r.stderr.decode() == f"dfs: get: {d}/e/priv: Permission denied\n"
    assert (tmp_path / "got/a").read_bytes() == b"bob's" and (tmp_path / "got/z/b").read_bytes() == b"bob's"
    assert os.listdir(tmp_path / "got/priv") == []
    r = run(c, "cp", "-r", f"{d}/e", f"{d}/copy", env=alice)
    assert r.returncode == 1 and r.stderr.decode() == f"dfs: cp: {d}/e/priv: Permission denied\n"
    assert run(c, "cat", f"{d}/copy/z/b").stdout == b"bob's"


def test_rm_recursive_and_test(c, d, tmp_path):
    assert run(c, "mkdir", "-p", f"{d}/t/u").returncode == 0
    assert run(c, "touch", f"{d}/t/u/f").returncode == 0
    assert run(c, "test", "-d", f"{d}/t").returncode == 0
    assert run(c, "test", "-f", f"{d}/t").returncode == 1
    assert run(c, "test", "-f", f"{d}/t/u/f").returncode == 0
    # under a file, or where the caller may not look: false, silently, as test(1)
    for kind in ("-e", "-f", "-d"):
        for path in (f"{d}/t/u/f/x", f"{d}/t/u/f/", f"{d}/t/u/f/x/", ""):
            r = run(c, "test", kind, path)
            assert (r.returncode, r.stderr) == (1, b""), path
    assert run(c, "test", "-d", f"{d}/t/u/").returncode == 0
    assert run(c, "chmod", "700", f"{d}/t").returncode == 0
    r = run(c, "test", "-e", f"{d}/t/u/f", env={"DFS_USER": "mallory"})
    assert (r.returncode, r.stderr) == (1, b"")
    assert run(c, "rm", "-r", f"{d}/t").returncode == 0
    assert run(c, "test", "-e", f"{d}/t").returncode == 1
    # errors name the argument: mkdir's missing parent, get's unwritable or non-directory target
    fails(run(c, "mkdir", f"{d}/nope/sub"), f"{d}/nope/sub: No such file or directory".encode())
    # put and cp name their target whatever the size (a large file's create came first
    # and named the missing parent)
    for size in (10, 2 << 20):
        big = tmp_path / f"size{size}"
        big.write_bytes(b"x" * size)
        fails(run(c, "put", str(big), f"{d}/nope/sub/x"), f"dfs: put: {d}/nope/sub/x: No such".encode())
        assert run(c, "put", "-f", str(big), f"{d}/src").returncode == 0
        fails(run(c, "cp", f"{d}/src", f"{d}/nope/sub/z"), f"dfs: cp: {d}/nope/sub/z: No such".encode())
    assert run(c, "touch", f"{d}/g").returncode == 0
    local = tmp_path / "file"
    local.write_bytes(b"")
    fails(run(c, "get", f"{d}/g", str(local / "x")), f"{local}/x: Not a directory".encode())
    fails(run(c, "get", f"{d}/g", "/sys/kernel/dfs-y"), b"/sys/kernel/dfs-y: Permission denied")
    # another file system's URL is a usage error, not a relative path on the default namenode
    for url in ("hdfs://127.0.0.1:8020/x", "file:///etc"):
        fails(run(c, "ls", url), b"not a dfs URL", code=2)


def test_json_shapes(c, d, tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(os.urandom(2 * 1024 * 1024 + 5))
    assert run(c, "put", "--replication", "2", "--block-size", "1MiB", str(f), f"{d}/f.bin").returncode == 0
    st = json.loads(run(c, "stat", "--json", f"{d}/f.bin").stdout)
    for key in ("path", "type", "size", "replication", "block_size", "mode", "owner", "group", "mtime"):
        assert key in st
    assert st["size"] == 2 * 1024 * 1024 + 5 and st["replication"] == 2 and st["block_size"] == 1 << 20
    assert st["mode"] == "0644" and isinstance(st["mtime"], float)
    ls = json.loads(run(c, "ls", "--json", d).stdout)
    assert isinstance(ls, list) and ls[0]["path"] == f"{d}/f.bin"
    locs = json.loads(run(c, "locate", "--json", f"{d}/f.bin").stdout)
    assert [b["offset"] for b in locs] == [0, 1 << 20, 2 << 20]
    assert [b["length"] for b in locs] == [1 << 20, 1 << 20, 5]
    for b in locs:
        assert len(b["names"]) == 2 and len(b["hosts"]) == 2 and len(b["racks"]) == 2
        assert [n.rpartition(":")[0] for n in b["names"]] == b["hosts"]
        assert len(set(b["names"])) == 2
    fsck = json.loads(run(c, "fsck", "--json", d).stdout)
    assert fsck["status"] == "HEALTHY" and fsck["files"] == 1 and fsck["blocks"] == 3
    for key in ("under_replicated", "missing", "corrupt"):
        assert fsck[key] == 0
    assert run(c, "fsck", d).returncode == 0
    rep = json.loads(run(c, "admin", "report", "--json").stdout)
    assert rep["safemode"] is False and len(rep["live"]) == 3 and rep["dead"] == []
    for node in rep["live"]:
        for key in ("address", "rack", "capacity", "used", "blocks", "last_heartbeat"):
            assert key in node


def test_chmod_chown_touch_du_setrep(c, d, tmp_path):
    assert run(c, "touch", f"{d}/f").returncode == 0
    assert run(c, "chmod", "600", f"{d}/f").returncode == 0
    assert json.loads(run(c, "stat", "--json", f"{d}/f").stdout)["mode"] == "0600"
    assert run(c, "chmod", "g+r", f"{d}/f").returncode == 0
    assert json.loads(run(c, "stat", "--json", f"{d}/f").stdout)["mode"] == "0640"
    assert run(c, "chown", "alice:staff", f"{d}/f").returncode == 0
    st = json.loads(run(c, "stat", "--json", f"{d}/f").stdout)
    assert (st["owner"], st["group"]) == ("alice", "staff")
    # A non-superuser may not take a file that is not theirs, nor write where it may not.
    r = run(c, "chown", "bob", f"{d}/f", env={"DFS_USER": "mallory"})
    fails(r, b"Permission denied")
    assert run(c, "chmod", "755", d).returncode == 0
    fails(run(c, "touch", f"{d}/g", env={"DFS_USER": "mallory"}), b"Permission denied")
    before = json.loads(run(c, "stat", "--json", f"{d}/f").stdout)["mtime"]
    time.sleep(0.05)
    assert run(c, "touch", f"{d}/f").returncode == 0
    assert json.loads(run(c, "stat", "--json", f"{d}/f").stdout)["mtime"] > before
    data = tmp_path / "data"
    data.write_bytes(b"x" * 3000)
    assert run(c, "put", str(data), f"{d}/data").returncode == 0
    du = run(c, "du", "-s", d).stdout.decode().split()
    assert du[0] == "3000" and du[1] == str(3000 * 3)
    assert run(c, "setrep", "-w", "2", f"{d}/data", timeout=60).returncode == 0
    locs = json.loads(run(c, "locate", "--json", f"{d}/data").stdout)
    assert all(len(b["names"]) == 2 for b in locs)
    # du DIR: a line per entry (files from the listing), past a subdirectory it may not read
    assert run(c, "mkdir", "-p", f"{d}/sub/closed").returncode == 0
    assert run(c, "put", str(data), f"{d}/sub/x").returncode == 0
    assert run(c, "mkdir", f"{d}/sub/open").returncode == 0
    assert run(c, "chmod", "700", f"{d}/sub/closed").returncode == 0
    r = run(c, "du", f"{d}/sub", env={"DFS_USER": "mallory"})
    assert r.returncode == 1 and r.stderr == f"dfs: du: {d}/sub/closed: Permission denied\n".encode()
    lines = sorted(r.stdout.decode().splitlines())
    assert lines == [f"0  0  {d}/sub/open", f"3000  9000  {d}/sub/x"], lines


def test_unreachable_namenode_fails_fast(tmp_path):
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "dfs", "--namenode", "127.0.0.1:9", "ls", "/"],
                       capture_output=True, timeout=30)
    elapsed = time.monotonic() - start
    fails(r, b"cannot reach namenode 127.0.0.1:9")
    assert r.stderr.startswith(b"dfs: ls: /: "), r.stderr   # SPEC: dfs: <command>: <path>: <reason>
    assert elapsed < 15


@pytest.mark.parametrize("name, value, argv", [
    ("DFS_RETRY_SECONDS", "nan", ["ls", "/"]),          # retried for ever
    ("DFS_RETRY_SECONDS", "inf", ["cat", "/f"]),
    ("DFS_RETRY_SECONDS", "1e400", ["ls", "/"]),
    ("DFS_RETRY_SECONDS", "abc", ["ls", "/"]),          # "could not convert string to float", exit 1
    ("DFS_DATA_TIMEOUT", "abc", ["cat", "/f"]),
    ("DFS_READ_FAILOVER_SECONDS", "nan", ["get", "/f", "-"]),
    ("DFS_WRITE_SETUP_SECONDS", "-1", ["put", "-", "/f"]),
    ("DFS_SETREP_TIMEOUT", "inf", ["setrep", "-w", "2", "/f"]),
    ("DFS_REPAIR_YIELD", "x", ["ls", "/"]),             # any command checks them all
    ("DFS_LEASE_SOFT_LIMIT", "nan", ["namenode", "--data-dir", "{tmp}/nn", "--listen", "127.0.0.1:{port}"]),
    ("DFS_REPLICATION_MAX_STREAMS", "2.5", ["namenode", "--data-dir", "{tmp}/nn", "--listen", "127.0.0.1:{port}"]),
    ("DFS_DATANODE_MAX_TRANSFERS", "0", ["datanode", "--data-dir", "{tmp}/dn", "--namenode", "127.0.0.1:9",
                                                         "--listen", "127.0.0.1:{port}"]),
    ("DFS_BLOCK_REPORT_INTERVAL", "inf", ["datanode", "--data-dir", "{tmp}/dn", "--namenode", "127.0.0.1:9",
                                                         "--listen", "127.0.0.1:{port}"]),
    ("DFS_DATA_TIMEOUT", "nan", ["mount", "{tmp}/mnt"]),
])
def test_a_bad_numeric_setting_is_a_usage_error_at_once(tmp_path, name, value, argv):
    # SPEC §3: nothing hangs, usage errors exit 2 with one line. A bare float() of the
    # variable made 'abc' a failure naming neither, and 'nan' an endless retry.
    (tmp_path / "mnt").mkdir()
    argv = [a.format(tmp=tmp_path, port=free_port("127.0.0.1")) for a in argv]
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "dfs", "--namenode", "127.0.0.1:9", *argv], capture_output=True,
                       timeout=30, env={**os.environ, name: value}, input=b"x")
    assert time.monotonic() - start < 15
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"dfs: {argv[0]}: ${name}: invalid value {value!r} (".encode()), r.stderr
    assert r.stderr.count(b"\n") == 1 and b"Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "nn").exists() and not (tmp_path / "dn").exists()   # nothing started


def test_url_argument_names_the_namenode(c, d, tmp_path):
    f = tmp_path / "u.txt"
    f.write_bytes(b"via url")
    url = f"dfs://{c.namenode_address}{d}/u.txt"
    r = subprocess.run([sys.executable, "-m", "dfs", "--namenode", "127.0.0.1:9", "put", str(f), url],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "dfs", "cat", url], capture_output=True, timeout=60,
                       env={**os.environ, "DFS_NAMENODE": "127.0.0.1:9"})
    assert r.stdout == b"via url"
    # A copy to another cluster that cannot be reached names the target, not the source.
    r = subprocess.run([sys.executable, "-m", "dfs", "cp", url, "dfs://127.0.0.1:9/x"], capture_output=True,
                       timeout=60)
    assert r.stderr == b"dfs: cp: dfs://127.0.0.1:9/x: cannot reach namenode 127.0.0.1:9\n", r.stderr


def test_progress_bar_only_on_a_terminal(c, d, tmp_path):
    f = tmp_path / "p.bin"
    f.write_bytes(os.urandom(3 << 20))
    r = run(c, "put", str(f), f"{d}/quiet.bin")
    assert r.returncode == 0 and r.stderr == b""
    r = run(c, "cp", f"{d}/quiet.bin", f"{d}/quiet2.bin")
    assert r.returncode == 0 and r.stderr == b""
    # Under a pseudo-terminal the bar is drawn on stderr: put, get, and cp of one file
    # (cp of a single file drew none).
    for args in (("put", str(f), f"{d}/loud.bin"), ("get", f"{d}/loud.bin", str(tmp_path / "back.bin")),
                 ("cp", f"{d}/loud.bin", f"{d}/loud2.bin")):
        assert b"100.0%" in _stderr_on_a_terminal(c, *args), args


def _stderr_on_a_terminal(c, *args) -> bytes:
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "dfs", "--namenode", c.namenode_address, *args],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=slave, env={**os.environ, "DFS_NAMENODE": ""})
    os.close(slave)
    out = b""
    while True:
        try:
            piece = os.read(master, 4096)
        except OSError:
            break
        if not piece:
            break
        out += piece
    assert p.wait(timeout=60) == 0, out
    os.close(master)
    return out


def test_cluster_up_runs_and_stops_on_ctrl_c(tmp_path):
    port = 18000 + os.getpid() % 1000
    p = subprocess.Popen([sys.executable, "-m", "dfs", "cluster", "up", "--base-dir", str(tmp_path / "local"),
                          "--datanodes", "2", "--port", str(port)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    try:
        out = read_until(p, b"Ctrl-C", 60)
        assert f"127.0.0.1:{port}".encode() in out, out
        r = subprocess.run([sys.executable, "-m", "dfs", "--namenode", f"127.0.0.1:{port}", "put", "-", "/hello"],
                           input=b"hello", capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        # A second cluster on the same port fails to start and says why: this one's
        # namenode answering its readiness check passed for its own (banner, exit 0).
        r = subprocess.run([sys.executable, "-m", "dfs", "cluster", "up", "--base-dir", str(tmp_path / "other"),
                            "--datanodes", "2", "--port", str(port)], capture_output=True, timeout=90)
        assert r.returncode == 1 and b"Ctrl-C" not in r.stdout, (r.stdout, r.stderr)
        assert b"failed to start: namenode exited" in r.stderr and b"Address already in use" in r.stderr
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
    # Nothing is left running on the port.
    r = subprocess.run([sys.executable, "-m", "dfs", "--namenode", f"127.0.0.1:{port}", "ls", "/"],
                       capture_output=True, timeout=30, env={**os.environ, "DFS_RETRY_SECONDS": "0"})
    assert r.returncode == 1


def test_cluster_up_says_which_server_died_and_exits_1(tmp_path):
    """A server killed under a running cluster stopped the others and printed "dfs cluster
    stopped", exit 0, naming nobody. And a second `cluster up` on the same base dir at
    once won some servers' locks and lost others, quoting the first one's log lines."""
    port = free_port("127.0.0.1")
    base = str(tmp_path / "dies")
    p = subprocess.Popen([sys.executable, "-m", "dfs", "cluster", "up", "--base-dir", base,
                          "--datanodes", "2", "--replication", "1", "--port", str(port)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert b"Ctrl-C" in read_until(p, b"Ctrl-C", 90)
        r = subprocess.run([sys.executable, "-m", "dfs", "cluster", "up", "--base-dir", base,
                            "--datanodes", "2", "--port", str(free_port("127.0.0.1"))],
                           capture_output=True, timeout=30)
        assert (r.returncode, r.stderr) == (1, f"dfs: cluster up: {base}: in use by another "
                                               "`dfs cluster up`\n".encode()), r.stderr
        victim = next(pid for pid in map(int, subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                                                             text=True).stdout.split())
                      if b"datanode2" in open(f"/proc/{pid}/cmdline", "rb").read())
        os.kill(victim, signal.SIGKILL)
        assert p.wait(timeout=30) == 1
        err = p.stderr.read().decode()
        assert err.startswith("dfs: cluster up: datanode2 exited (killed by signal 9): ") and \
            err.endswith("; stopping the others\n") and err.count("\n") == 1, err
    finally:
        if p.poll() is None:
            p.kill()


def test_cluster_up_killed_takes_its_servers_with_it(tmp_path):
    """SIGKILL leaves `cluster up` no chance to stop its servers: they must not outlive it
    holding the cluster's ports (PR_SET_PDEATHSIG)."""
    port = free_port("127.0.0.1")
    p = subprocess.Popen([sys.executable, "-m", "dfs", "cluster", "up", "--base-dir", str(tmp_path / "k"),
                          "--datanodes", "1", "--replication", "1", "--port", str(port)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert b"Ctrl-C" in read_until(p, b"Ctrl-C", 90)
        servers = [int(x) for x in subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                                                  text=True).stdout.split()]
        assert len(servers) == 2, servers   # its namenode and datanode
    finally:
        p.kill()
        p.wait()

    def running(pid: int) -> bool:   # neither gone nor a zombie waiting for init
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(map(running, servers)):
        time.sleep(0.2)
    alive = [pid for pid in servers if running(pid)]
    assert not alive, f"servers outlived a killed cluster up: {alive}"


def test_trailing_slashes_and_literal_url_paths(c, d, tmp_path):
    assert run(c, "mkdir", "-p", f"{d}/a/b/").returncode == 0
    assert run(c, "mkdir", f"{d}/m/").returncode == 0
    ls = json.loads(run(c, "ls", "--json", f"{d}/a/").stdout)
    assert [e["path"] for e in ls] == [f"{d}/a/b"]
    assert run(c, "put", "-", f"{d}/a/", input=b"").returncode == 1   # stdin needs a file name
    assert run(c, "put", "-", f"{d}/a/f", input=b"data").returncode == 0
    assert run(c, "cp", f"{d}/a/f", f"{d}/m/").returncode == 0
    assert run(c, "cat", f"{d}/m/f").stdout == b"data"
    assert run(c, "test", "-d", f"{d}/a/").returncode == 0
    # A trailing slash says "directory": on a file it is Not a directory (coreutils).
    for cmd in (("ls",), ("stat",), ("cat",), ("rm",), ("du",), ("chmod", "600")):
        fails(run(c, *cmd, f"{d}/a/f/"), b"Not a directory")
    assert run(c, "cat", f"{d}/a/f").stdout == b"data"
    fails(run(c, "touch", f"{d}/new/"), b"No such file or directory")
    fails(run(c, "get", f"{d}/a/f", str(tmp_path / "newdir") + "/"), b"newdir/: Not a directory")
    assert run(c, "get", f"{d}/a/f", str(tmp_path) + "/").returncode == 0
    assert (tmp_path / "f").read_bytes() == b"data" and not (tmp_path / "newdir").exists()
    assert run(c, "test", "-e", f"{d}/new").returncode == 1
    assert run(c, "rm", "-r", f"{d}/m/").returncode == 0
    assert run(c, "test", "-e", f"{d}/m").returncode == 1
    # After dfs://HOST:PORT the path is literal: '?', '#' and '%' are part of the name.
    url = f"dfs://{c.namenode_address}{d}/q?x=1#y%20z"
    assert run(c, "put", "-", url, input=b"odd").returncode == 0
    assert [e["path"] for e in json.loads(run(c, "ls", "--json", f"dfs://{c.namenode_address}{d}/").stdout)
            if "q" in e["path"]] == [f"{d}/q?x=1#y%20z"]
    assert run(c, "cat", f"{d}/q?x=1#y%20z").stdout == b"odd"
    # HOST alone means port 8020 (nothing listens there: a reach failure, not a usage error).
    r = run(c, "--namenode", "nosuchhost.invalid", "ls", "/", env={"DFS_RETRY_SECONDS": "0"})
    fails(r, b"cannot reach namenode nosuchhost.invalid:8020")


def test_multi_path_commands_go_on_past_a_failure(c, d):
    for name in ("a", "b"):
        assert run(c, "put", "-", f"{d}/{name}", input=name.encode()).returncode == 0

    def lines(r):
        assert r.returncode == 1 and b"Traceback" not in r.stderr, r.stderr
        out = r.stderr.decode().splitlines()
        assert all(ERROR_LINE.match((ln + "\n").encode()) for ln in out), out
        return out
    r = run(c, "cat", f"{d}/a", f"{d}/nope1", f"{d}/b", f"{d}")
    assert r.stdout == b"ab"
    assert lines(r) == [f"dfs: cat: {d}/nope1: No such file or directory", f"dfs: cat: {d}: Is a directory"]
    r = run(c, "stat", "--json", f"{d}/nope", f"{d}/a")
    assert json.loads(r.stdout)["path"] == f"{d}/a" and len(lines(r)) == 1
    r = run(c, "ls", "--json", f"{d}/nope", f"{d}/a", f"{d}/b")
    assert [e["path"] for e in json.loads(r.stdout)] == [f"{d}/a", f"{d}/b"] and len(lines(r)) == 1
    r = run(c, "mkdir", f"{d}/m1", f"{d}/a", f"{d}/x/y", f"{d}/m2")
    assert lines(r) == [f"dfs: mkdir: {d}/a: File exists", f"dfs: mkdir: {d}/x/y: No such file or directory"]
    assert run(c, "test", "-d", f"{d}/m2").returncode == 0
    r = run(c, "cp", "-f", f"{d}/a", f"{d}/nope", d)   # a onto itself: refused, not dropped
    assert lines(r) == [f"dfs: cp: {d}/a: '{d}/a' and '{d}/a' are the same file",
                        f"dfs: cp: {d}/nope: No such file or directory"]
    assert run(c, "cat", f"{d}/a").stdout == b"a"
    r = run(c, "mv", f"{d}/a", f"{d}/nope", f"{d}/m1")
    assert lines(r) == [f"dfs: mv: {d}/nope: No such file or directory"]
    assert run(c, "cat", f"{d}/m1/a").stdout == b"a"
    r = run(c, "rm", f"{d}/nope1", f"{d}/m2", f"{d}/b", f"{d}/nope2")
    assert lines(r) == [f"dfs: rm: {d}/nope1: No such file or directory", f"dfs: rm: {d}/m2: Is a directory",
                        f"dfs: rm: {d}/nope2: No such file or directory"]
    assert run(c, "test", "-e", f"{d}/b").returncode == 1
    assert run(c, "rm", "-f", f"{d}/nope1", f"{d}/m1/a").returncode == 0


def _failure_lines(r) -> list[str]:
    assert r.returncode == 1 and b"Traceback" not in r.stderr, r.stderr
    out = r.stderr.decode().splitlines()
    assert all(ERROR_LINE.match((ln + "\n").encode()) for ln in out), out
    return out


def test_several_copies_go_on_past_a_failed_one_and_leave_no_partial_file(make_cluster, tmp_path):
    """put/cp/get of several files, one by one (-t 1) or in parallel: every copy that can
    be made is made, each failed one prints its line, the exit status is 1, and a copy
    that failed half-way (a block no replica of which can be read) leaves nothing
    under its name."""
    c = make_cluster(replication=1)
    local = tmp_path / "in"
    local.mkdir()
    data = {n: os.urandom(size) for n, size in (("a", 1000), ("b", 2000), ("c", 3000), ("d", 2_500_000))}
    for n, blob in data.items():
        (local / n).write_bytes(blob)
    for t in ("1", "4"):
        dst = f"/put{t}"
        assert run(c, "mkdir", "-p", f"{dst}/c").returncode == 0
        assert run(c, "put", "-", f"{dst}/b", input=b"old").returncode == 0
        r = run(c, "put", "-t", t, *(str(local / n) for n in "abcd"), dst)
        assert sorted(_failure_lines(r)) == [f"dfs: put: {dst}/b: File exists", f"dfs: put: {dst}/c: Is a directory"]
        assert run(c, "cat", f"{dst}/a").stdout == data["a"] and run(c, "cat", f"{dst}/d").stdout == data["d"]
        assert run(c, "cat", f"{dst}/b").stdout == b"old"
    # /src/bad's second block is unreadable (its only replica corrupted): a copy of it
    # fails after its first block has been copied.
    assert run(c, "mkdir", "/src").returncode == 0
    for n in ("good1", "bad", "good2"):
        assert run(c, "put", str(local / "d"), f"/src/{n}").returncode == 0, n
    second = locations(c, "/src/bad")[1]["block_id"]
    (node, _), = c.replica_files(second)
    c.corrupt_replica(second, node)
    srcs = ["/src/good1", "/src/bad", "/src/good2"]
    for t in ("1", "4"):
        assert run(c, "mkdir", f"/cp{t}").returncode == 0
        lines = _failure_lines(run(c, "cp", "-t", t, *srcs, f"/cp{t}"))
        assert len(lines) == 1 and lines[0].startswith("dfs: cp: /src/bad: "), lines
        assert run(c, "cat", f"/cp{t}/good1").stdout == data["d"] == run(c, "cat", f"/cp{t}/good2").stdout
        assert run(c, "test", "-e", f"/cp{t}/bad").returncode == 1
        out = tmp_path / f"get{t}"
        out.mkdir()
        for args in (srcs, ["/src"]):    # several sources; one directory's files
            lines = _failure_lines(run(c, "get", "-t", t, *args, str(out)))
            assert len(lines) == 1 and lines[0].startswith("dfs: get: /src/bad: "), lines
            back = out if args == srcs else out / "src"
            assert (back / "good1").read_bytes() == data["d"] == (back / "good2").read_bytes()
            assert sorted(p.name for p in back.iterdir()) == ["good1", "good2"]   # no bad, no .dfs-part


def test_usage_errors_are_one_line_and_exit_2_before_any_rpc(c, d, tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"x")
    assert run(c, "put", "-", f"{d}/keep", input=b"k").returncode == 0
    for argv, words in [
        (("put", "--replication", "0", str(f), f"{d}/g"), b"invalid replication '0'"),
        (("put", "--replication", "-2", str(f), f"{d}/g"), b"invalid replication '-2'"),
        (("put", "--block-size", "12Q", str(f), f"{d}/g"), b"invalid size '12Q'"),
        (("setrep", "0", f"{d}/keep"), b"invalid replication '0'"),
        (("--namenode", "nn:port", "ls", "/"), b"invalid namenode address 'nn:port'"),
        (("rm", f"{d}/keep", "dfs://nn:99999/x"), b"invalid namenode address"),
        (("ls", "dfs:/x"), b"invalid dfs URL"),
    ]:
        r = run(c, *argv)
        assert r.returncode == 2, (argv, r.stderr)
        assert r.stderr.count(b"\n") == 1 and r.stderr.startswith(b"dfs: ") and words in r.stderr, r.stderr
    assert run(c, "test", "-f", f"{d}/keep").returncode == 0   # rm never started
    assert run(c, "test", "-e", f"{d}/g").returncode == 1
    r = run(c, "ls", "/", env={"DFS_NAMENODE": "a b"})   # --namenode wins, but a bad $DFS_NAMENODE...
    assert r.returncode == 0, r.stderr                   # ...is not consulted when --namenode is given
    r = subprocess.run([sys.executable, "-m", "dfs", "ls", "/"], capture_output=True, timeout=60,
                       env={**os.environ, "DFS_NAMENODE": "a b"})
    assert r.returncode == 2 and b"$DFS_NAMENODE" in r.stderr and r.stderr.count(b"\n") == 1, r.stderr


def test_a_huge_block_size_or_id_is_a_bad_argument_never_an_internal_error(c, d):
    # 2^63 reached the namenode's SQLite (a traceback there, "internal error in namenode"
    # here); 2^64 failed in the client's protobuf, a line naming no path.
    for size in ("8388608T", "16777216T", "4G"):
        r = run(c, "put", "--block-size", size, "-", f"{d}/bs", input=b"x")
        assert r.returncode == 2 and r.stderr.count(b"\n") == 1, r.stderr
        assert b"invalid block size" in r.stderr and b"Traceback" not in r.stderr, r.stderr
    assert run(c, "put", "--block-size", "2G", "-", f"{d}/ok", input=b"x").returncode == 0
    client = c.client()
    for request in (pb.CreateRequest(path=f"{d}/raw", block_size=2**63),
                    pb.CreateRequest(path=f"{d}/raw", block_size=(2 << 30) + 16384),
                    pb.AddBlockRequest(file_id=2**64 - 1), pb.CompleteRequest(file_id=2**63),
                    pb.GetBlockLocationsRequest(path=f"{d}/ok", inode_id=2**63),
                    pb.ReportBadBlocksRequest(replicas=[pb.BadReplica(block_id=2**63, address="x:1")]),
                    pb.SetTimesRequest(path=f"{d}/ok", mtime=1e300)):
        with pytest.raises(errors.InvalidArgumentError):
            client.nn.call(type(request).__name__.removesuffix("Request"), request)
    assert b"Traceback" not in open(c.namenode.log_path, "rb").read()
    assert run(c, "ls", d).returncode == 0   # an mtime of 1e300 made every listing fail
    fs = fsspec.filesystem("dfs", namenode=c.namenode_address, skip_instance_cache=True)
    with pytest.raises(ValueError, match="block size must be"):
        fs.open(f"{d}/fs", "wb", dfs_block_size=2**63)
    assert client.read_bytes(f"{d}/ok", 2**64) == b"" and client.read_bytes(f"{d}/ok", 0, 2**70) == b"x"


def _to_closed_pipe(c, *args):
    r, w = os.pipe()
    os.close(r)   # the reader is gone (`dfs cat f | head -c0`)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    try:
        return subprocess.run([sys.executable, "-m", "dfs", "--namenode", c.namenode_address, *args],
                              stdout=w, stderr=subprocess.PIPE, env=env, timeout=120)
    finally:
        os.close(w)


def test_a_closed_stdout_ends_quietly_with_the_sigpipe_status(c, d):
    assert run(c, "put", "-", f"{d}/big", input=os.urandom(3 << 20)).returncode == 0
    for argv in (("cat", f"{d}/big"), ("ls", "-R", "/"), ("stat", f"{d}/big"), ("fsck", d), ("get", f"{d}/big", "-")):
        r = _to_closed_pipe(c, *argv)
        assert (r.returncode, r.stderr) == (141, b""), (argv, r.returncode, r.stderr)


def test_setrep_wait_that_cannot_finish_fails_clearly(make_cluster, tmp_path):
    c = make_cluster(datanodes=2)
    assert c.cli("put", "--replication", "1", "-", "/f", input=b"x" * 5000).returncode == 0
    # More replicas than datanodes: fails at once, says why, claims nothing on stdout.
    r = c.cli("setrep", "-w", "3", "/f", timeout=60)
    fails(r, b"replication 3 cannot be reached: 2 datanodes in service")
    assert r.stdout == b""
    # A node that stops answering: the wait ends at the deadline, or once the node is dead.
    # The failed wait left the target at 3 and a second copy may be under way: back to one.
    assert c.cli("setrep", "-w", "1", "/f", timeout=120).returncode == 0
    [holder] = locations_of(c, "/f")[0]["names"]
    other = next(n for n in c.datanodes if n.address != holder)
    c.pause(other)
    try:
        start = time.monotonic()
        r = c.cli("setrep", "-w", "2", "/f", env={"DFS_SETREP_TIMEOUT": "1"}, timeout=60)
        fails(r, b"/f: replication 2 ")
        assert re.search(rb"not reached within 1 s|cannot be reached: 1 datanode in service", r.stderr), r.stderr
        assert r.stdout == b"" and time.monotonic() - start < 30
    finally:
        c.resume(other)
    r = c.cli("setrep", "-w", "2", "/f", env={"DFS_SETREP_TIMEOUT": "soon"})
    assert r.returncode == 2 and b"$DFS_SETREP_TIMEOUT" in r.stderr, r.stderr
    # Its only replica corrupt: nothing to copy from, so no wait can end (it waited out
    # DFS_SETREP_TIMEOUT, 600 s by default).
    assert c.cli("put", "--replication", "1", "-", "/g", input=os.urandom(5000)).returncode == 0
    [b] = locations_of(c, "/g")
    holder = next(n for n in c.datanodes if n.address == b["names"][0])
    c.corrupt_replica(b["block_id"], holder)
    assert c.cli("cat", "/g").returncode == 1          # the read finds it and reports it
    start = time.monotonic()
    r = c.cli("setrep", "-w", "2", "/g", timeout=60)
    fails(r, f"/g: replication 2 cannot be reached: block {b['block_id']} has no readable replica".encode())
    assert time.monotonic() - start < 20


def test_chmod_chown_and_setrep_of_a_tree_go_on_past_a_failure(c, d):
    assert c.cli("mkdir", "-p", f"{d}/t").returncode == 0
    assert c.cli("chmod", "777", f"{d}/t").returncode == 0
    bob, alice = {"DFS_USER": "bob"}, {"DFS_USER": "alice"}
    for name, who in (("a", bob), ("b", alice), ("c", bob)):
        assert c.cli("put", "-", f"{d}/t/{name}", input=b"x", env=who).returncode == 0
    assert c.cli("chown", "bob", f"{d}/t").returncode == 0
    r = c.cli("chmod", "-R", "700", f"{d}/t", env=bob)
    fails(r, f"dfs: chmod: {d}/t/b: Permission denied".encode())
    modes = {n: json.loads(c.cli("stat", "--json", f"{d}/t/{n}").stdout)["mode"] for n in "abc"}
    assert modes == {"a": "0700", "b": "0644", "c": "0700"}
    r = c.cli("setrep", "2", f"{d}/t", env=bob)
    fails(r, f"{d}/t/b: Permission denied".encode())
    reps = {n: json.loads(c.cli("stat", "--json", f"{d}/t/{n}").stdout)["replication"] for n in "abc"}
    assert reps == {"a": 2, "b": 3, "c": 2}


def test_rm_r_keeps_the_sticky_rule_inside_the_tree(c, d):
    # One recursive Delete took bob's file out of alice's 1777 directory inside carol's
    # 0777 one, though rm of the file itself is refused carol (GNU rm -r refuses it too).
    assert run(c, "chmod", "1777", d).returncode == 0
    carol, alice, bob = ({"DFS_USER": u} for u in ("carol", "alice", "bob"))
    for cmd, who in ((["mkdir", f"{d}/c"], carol), (["chmod", "777", f"{d}/c"], carol),
                     (["mkdir", f"{d}/c/s"], alice), (["chmod", "1777", f"{d}/c/s"], alice)):
        assert run(c, *cmd, env=who).returncode == 0, (cmd, who)
    assert run(c, "put", "-", f"{d}/c/s/bobfile", input=b"b\n", env=bob).returncode == 0
    fails(run(c, "rm", f"{d}/c/s/bobfile", env=carol), b"Permission denied")
    fails(run(c, "rm", "-r", f"{d}/c", env=carol), f"{d}/c/s/bobfile: Permission denied".encode())
    assert run(c, "cat", f"{d}/c/s/bobfile").stdout == b"b\n"
    assert run(c, "rm", "-r", f"{d}/c/s", env=alice).returncode == 0   # the sticky one's owner may
    assert run(c, "rm", "-r", f"{d}/c", env=carol).returncode == 0


def test_put_f_and_cp_f_may_not_take_another_users_file_in_a_sticky_directory(c, d, tmp_path):
    # bob's put -f over alice's 0666 file in a 1777 directory made it his, 0644 (he could
    # then lock her out); rm of it is refused him, and a replace is a removal.
    assert run(c, "chmod", "1777", d).returncode == 0
    alice, bob = {"DFS_USER": "alice"}, {"DFS_USER": "bob"}
    assert run(c, "put", "-", f"{d}/s", input=b"alice\n", env=alice).returncode == 0
    assert run(c, "chmod", "666", f"{d}/s", env=alice).returncode == 0
    assert run(c, "put", "-", f"{d}/bobs", input=b"bob\n", env=bob).returncode == 0
    fails(run(c, "rm", f"{d}/s", env=bob), b"Permission denied")
    fails(run(c, "put", "-f", "-", f"{d}/s", input=b"bob\n", env=bob), b"Permission denied")
    fails(run(c, "cp", "-f", f"{d}/bobs", f"{d}/s", env=bob), b"Permission denied")
    st = json.loads(run(c, "stat", "--json", f"{d}/s").stdout)
    assert (st["owner"], st["mode"]) == ("alice", "0666")
    assert run(c, "cat", f"{d}/s").stdout == b"alice\n"
    assert run(c, "put", "-f", "-", f"{d}/s", input=b"again\n", env=alice).returncode == 0   # hers


def test_chmod_R_changes_a_directory_before_listing_it(c, d):
    # As GNU chmod -R and hdfs dfs -chmod -R: an owner's chmod -R 755 opens a tree it
    # cannot read. It listed the whole tree first: "t: Permission denied", nothing changed.
    alice = {"DFS_USER": "alice"}
    assert c.cli("chown", "alice", d).returncode == 0
    assert c.cli("mkdir", "-p", f"{d}/t/sub", env=alice).returncode == 0
    assert c.cli("put", "-", f"{d}/t/sub/f", input=b"hi", env=alice).returncode == 0

    def modes():
        return {p: json.loads(c.cli("stat", "--json", f"{d}/{p}").stdout)["mode"] for p in ("t", "t/sub", "t/sub/f")}
    for closed in ("t", "t/sub"):
        assert c.cli("chmod", "000", f"{d}/{closed}", env=alice).returncode == 0
        r = c.cli("chmod", "-R", "755", f"{d}/t", env=alice)
        assert (r.returncode, r.stderr) == (0, b""), (closed, r.stderr)
        assert modes() == {"t": "0755", "t/sub": "0755", "t/sub/f": "0755"}, closed
    # The other way round ends where GNU's does: t changed, then it cannot be listed.
    fails(c.cli("chmod", "-R", "000", f"{d}/t", env=alice), f"dfs: chmod: {d}/t: Permission denied".encode())
    assert modes() == {"t": "0000", "t/sub": "0755", "t/sub/f": "0755"}
    # A directory the caller may neither change nor list: a line for each, the rest done.
    assert c.cli("chmod", "755", f"{d}/t", env=alice).returncode == 0
    assert c.cli("mkdir", f"{d}/t/bobs").returncode == 0
    assert c.cli("chmod", "000", f"{d}/t/bobs").returncode == 0
    r = c.cli("chmod", "-R", "u=rwx,go=", f"{d}/t", env=alice)
    assert r.returncode == 1 and r.stderr.count(f"dfs: chmod: {d}/t/bobs: Permission denied".encode()) == 2, r.stderr
    assert modes() == {"t": "0700", "t/sub": "0700", "t/sub/f": "0700"}
    # Symbolic = clears the sticky bit, and u+s / g+s are modes (GNU chmod).
    assert c.cli("chmod", "1777", f"{d}/t", env=alice).returncode == 0
    assert c.cli("chmod", "a=rx", f"{d}/t", env=alice).returncode == 0
    assert c.cli("chmod", "g+s", f"{d}/t/sub/f", env=alice).returncode == 0
    assert modes() == {"t": "0555", "t/sub": "0700", "t/sub/f": "2700"}


def test_a_frozen_namenode_is_reported_unreachable_within_15_s(make_cluster):
    # SPEC §3. fsck's own deadline is 60 s (a large namespace): it took 20 s, gRPC's
    # connect timeout, against a SIGSTOPped namenode. Commands run side by side.
    c = make_cluster(datanodes=1)
    c.pause(c.namenode)
    try:
        t0 = time.monotonic()
        procs = [subprocess.Popen([sys.executable, "-m", "dfs", "--namenode", c.namenode_address, *cmd],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=c.env)
                 for cmd in (("fsck", "/"), ("ls", "/"), ("admin", "report"))]
        # safemode wait --timeout 3 took ~10 s, its one call's own RPC deadline
        waiter = subprocess.Popen([sys.executable, "-m", "dfs", "--namenode", c.namenode_address, "admin",
                                   "safemode", "wait", "--timeout", "3"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=c.env)
        assert waiter.wait(30) == 1
        assert time.monotonic() - t0 < 7, time.monotonic() - t0
        assert f"cannot reach namenode {c.namenode_address}".encode() in waiter.stderr.read()
        for p in procs:
            assert p.wait(30) == 1
            assert f"cannot reach namenode {c.namenode_address}".encode() in p.stderr.read()
        assert time.monotonic() - t0 < 15
    finally:
        c.resume(c.namenode)


def locations_of(c, path):
    r = c.cli("locate", "--json", path)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_two_local_clusters_run_side_by_side(tmp_path):
    ports = [free_port("127.0.0.1")]
    while len(ports) < 2:
        port = free_port("127.0.0.1")
        if port not in ports:
            ports.append(port)
    procs = [subprocess.Popen([sys.executable, "-m", "dfs", "cluster", "up", "--base-dir", str(tmp_path / f"c{i}"),
                               "--datanodes", "1", "--replication", "1", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for i, port in enumerate(ports)]
    try:
        for p in procs:
            out = read_until(p, b"Ctrl-C", 90)
            assert b"Ctrl-C" in out, out
        for i, port in enumerate(ports):
            r = subprocess.run([sys.executable, "-m", "dfs", "--namenode", f"127.0.0.1:{port}", "put", "-", "/c"],
                               input=str(i).encode(), capture_output=True, timeout=60)
            assert r.returncode == 0, r.stderr
        for i, port in enumerate(ports):
            r = subprocess.run([sys.executable, "-m", "dfs", "--namenode", f"127.0.0.1:{port}", "cat", "/c"],
                               capture_output=True, timeout=60)
            assert r.stdout == str(i).encode(), r.stderr
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            assert p.wait(timeout=30) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_cluster_up_on_a_base_dir_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_bytes(b"")
    r = subprocess.run([sys.executable, "-m", "dfs", "cluster", "up", "--base-dir", str(f), "--port", "1"],
                       capture_output=True, timeout=30)
    assert (r.returncode, r.stderr) == (1, f"dfs: cluster up: {f}: Not a directory\n".encode())


def test_every_command_writing_to_a_full_output_names_stdout(c, d):
    # It said only "dfs: cat: No space left on device" (the path form of SPEC §3); then
    # cat said stdout, but ls, stat, fsck, ... still gave a bare reason, one line per path.
    assert run(c, "put", "-", f"{d}/f", input=os.urandom(3 << 20)).returncode == 0
    for argv in (["cat", f"{d}/f", f"{d}/f"], ["ls", d, f"{d}/f"], ["ls", "-R", "--json", d],
                 ["stat", "--json", f"{d}/f"], ["stat", f"{d}/f", d], ["locate", "--json", f"{d}/f"],
                 ["fsck", d], ["get", f"{d}/f", "-"], ["du", "-s", d], ["admin", "report"],
                 ["admin", "report", "--json"], ["admin", "safemode", "get"]):
        with open("/dev/full", "wb") as full:
            r = subprocess.run([sys.executable, "-m", "dfs", "--namenode", c.namenode_address, *argv],
                               stdout=full, stderr=subprocess.PIPE, timeout=60)
        name = " ".join(argv[:2]) if argv[0] == "admin" else argv[0]
        assert (r.returncode, r.stderr) == (1, f"dfs: {name}: stdout: No space left on device\n".encode()), argv
    r = run(c, "cluster")
    assert r.returncode == 2 and b"CLUSTER_COMMAND" in r.stderr and b"cluster_command" not in r.stderr


def test_get_into_a_full_disk_names_the_target(c, d, tmp_path, tmpfs):
    """It said "dfs: get: No space left on device", naming nothing (the write was to
    get's temporary file); the temporary file is removed and the target never appears."""
    full = str(tmp_path / "full")
    tmpfs(full, "64k")
    assert run(c, "put", "-", f"{d}/big", input=os.urandom(256 << 10)).returncode == 0
    target = os.path.join(full, "out")
    r = run(c, "get", f"{d}/big", target)
    assert (r.returncode, r.stderr) == (1, f"dfs: get: {target}: No space left on device\n".encode())
    assert os.listdir(full) == []


def test_rm_removes_a_file_still_being_written(c, d):
    """stat does not see a file's first version until it is closed: rm stat-ed first,
    so it said "No such file" (and rm -f exited 0 while the file appeared on close)."""
    w = c.client().create(f"{d}/inprog")
    w.write(b"x" * (3 << 20))      # past SMALL_FILE: created on the namenode, being written
    r = run(c, "rm", f"{d}/inprog")
    assert r.returncode == 0, r.stderr
    with pytest.raises(errors.DfsFileNotFoundError):
        w.close()
    assert run(c, "ls", d).stdout == b"Found 0 items\n"
    fails(run(c, "rm", d), b"Is a directory")      # files_only: the namenode tells directories


def test_url_user_and_dfs_user_names(c, d):
    assert run(c, "chmod", "777", d).returncode == 0
    url = f"dfs://bob@{c.namenode_address}{d}/f"
    assert run(c, "touch", url).returncode == 0
    assert json.loads(run(c, "stat", "--json", f"{d}/f").stdout)["owner"] == "bob"
    fails(run(c, "touch", f"{d}/g", env={"DFS_USER": "ev\nil x"}), b"invalid user name")
    assert run(c, "ls", d).stdout.decode().count("\n") == 2     # Found 1 items, f
    r = run(c, "cat", f"{d}/no\nsuch\x1b[31m")
    fails(r, b"no\\nsuch\\x1b[31m: No such file")
    assert r.stderr.count(b"\n") == 1


def test_listing_and_fsck_blocks_take_the_permissions_stat_and_locate_do(c, d):
    assert run(c, "put", "-", f"{d}/secret", input=b"s" * 1000).returncode == 0
    assert run(c, "chmod", "600", f"{d}/secret").returncode == 0
    bob = {"DFS_USER": "bob"}
    fails(run(c, "locate", f"{d}/secret", env=bob), b"Permission denied")
    r = run(c, "fsck", "--json", "--blocks", "--locations", f"{d}/secret", env=bob)
    assert r.returncode == 0, r.stderr
    [f] = json.loads(r.stdout)["details"]
    assert f["status"] == "HEALTHY" and f["blocks"] == []
    r = run(c, "fsck", "--json", "--blocks", f"{d}/secret")
    assert len(json.loads(r.stdout)["details"][0]["blocks"]) == 1
    assert run(c, "chmod", "744", d).returncode == 0       # read without search
    fails(run(c, "ls", d, env=bob), b"Permission denied")
    fails(run(c, "stat", f"{d}/secret", env=bob), b"Permission denied")


def test_mv_with_a_url_naming_a_user(c, d):
    """`mv dfs://bob@NN/a b` said "cannot move between clusters": the clients were told
    apart by how the user was written. The same user written two ways renames; two
    users are refused for what they are (a rename is one request, by one user); cp
    reads as one and writes as the other."""
    assert run(c, "chmod", "777", d).returncode == 0
    bob = {"DFS_USER": "bob"}
    assert run(c, "put", "-", f"{d}/mvx", input=b"b", env=bob).returncode == 0
    url = f"dfs://bob@{c.namenode_address}{d}/mvx"
    r = run(c, "mv", url, f"{d}/mvx2", env=bob)
    assert r.returncode == 0, r.stderr
    assert run(c, "cat", f"{d}/mvx2").stdout == b"b"
    url = f"dfs://bob@{c.namenode_address}{d}/mvx2"
    r = run(c, "mv", url, f"{d}/mvx3", env={"DFS_USER": "alice"})
    fails(r, f"{url}: source and destination name different users (bob, alice)".encode())
    assert run(c, "test", "-e", f"{d}/mvx2").returncode == 0
    fails(run(c, "mv", f"dfs://127.0.0.1:9{d}/mvx2", f"{d}/mvx3"), b"cannot move between clusters")
    r = run(c, "cp", url, f"{d}/cpx", env={"DFS_USER": "alice"})
    assert r.returncode == 0, r.stderr
    assert json.loads(run(c, "stat", "--json", f"{d}/cpx").stdout)["owner"] == "alice"
    r = run(c, "cp", url, f"dfs://alice@{c.namenode_address}{d}/mvx2")
    fails(r, b"are the same file")


def _stdout_on_a_terminal(c, *args) -> bytes:
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "dfs", "--namenode", c.namenode_address, *args],
                         stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE,
                         env={**os.environ, "DFS_NAMENODE": ""})
    os.close(slave)
    out = b""
    while True:
        try:
            piece = os.read(master, 4096)
        except OSError:   # EIO: the child closed the terminal
            break
        if not piece:
            break
        out += piece
    assert p.wait(timeout=60) == 0, (out, p.stderr.read())
    os.close(master)
    return out.replace(b"\r\n", b"\n")   # the terminal's own line endings


def test_names_with_control_characters_are_escaped_on_a_terminal_only(c, d, tmp_path):
    """A name holding ESC reached another user's terminal as a live escape sequence, and
    one holding a newline split its ls line in two. On a terminal, ls, du, stat, fsck
    and the progress bar show such names escaped, as the error lines do; to a pipe or a
    file they are written as they are, for scripts (GNU ls does the same)."""
    name = f"{d}/red\x1b[31m\nx"
    escaped = f"{d}/red\\x1b[31m\\nx".encode()
    assert run(c, "put", "-", name, input=b"r").returncode == 0
    for args in (("ls", d), ("ls", "-R", d), ("ls", name), ("du", d), ("du", "-s", name), ("stat", name),
                 ("fsck", "--files", d)):
        shown = _stdout_on_a_terminal(c, *args)
        assert escaped in shown and b"\x1b" not in shown, (args, shown)
        r = run(c, *args)
        assert r.returncode == 0 and name.encode() in r.stdout, (args, r.stdout)
    assert len(_stdout_on_a_terminal(c, "ls", d).splitlines()) == 2   # Found 1 items, the file
    bar = _stderr_on_a_terminal(c, "get", name, str(tmp_path / "got"))
    assert b"red\\x1b[31m" in bar and b"\x1b" not in bar, bar
