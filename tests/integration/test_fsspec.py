"""DFSFileSystem's own contract (what fsspec's abstract suite does not cover)."""

from __future__ import annotations

import errno
import io
import json
import multiprocessing
import os
import pickle
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC

import fsspec
import fsspec.config
import pytest
from fsspec.callbacks import Callback

from dfs.client.filesystem import DFSFileSystem


@pytest.fixture(scope="module")
def nn(shared_cluster):
    return shared_cluster.namenode_address


@pytest.fixture
def fs(nn):
    return DFSFileSystem(namenode=nn, skip_instance_cache=True)


@pytest.fixture
def rpcs(fs):
    """Count namenode RPCs made through ``fs`` (by method name)."""
    calls: list[str] = []
    nnc = fs.client.nn
    real = nnc.call

    def counting(method, request=None, **kw):
        calls.append(method)
        return real(method, request, **kw)

    nnc.call = counting
    yield calls
    nnc.call = real


# -- registration and URLs -----------------------------------------------------
def test_entry_point_works_with_nothing_else_imported(nn, fs):
    fs.pipe_file("/reg/hello.txt", b"hi there")
    code = ("import sys, fsspec\n"
            f"f = fsspec.open('dfs://{nn}/reg/hello.txt', 'rb')\n"
            "with f as fh: data = fh.read()\n"
            f"fs2 = fsspec.filesystem('dfs', namenode='{nn}')\n"
            "print(data.decode(), type(fs2).__module__, fs2.cat_file('/reg/hello.txt').decode())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if k != "DFS_NAMENODE"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["hi", "there", "dfs.client.filesystem", "hi", "there"]


def test_url_handling(nn):
    strip = DFSFileSystem._strip_protocol
    assert strip(f"dfs://{nn}/a/b/") == "/a/b"
    assert strip("dfs:///a/b") == "/a/b"
    assert strip(f"dfs://{nn}") == "/"
    assert strip("/a//b") == "/a/b"
    assert strip("a/b") == "/a/b"
    assert strip(["dfs:///x", "/y/"]) == ["/x", "/y"]
    assert DFSFileSystem._get_kwargs_from_urls(f"dfs://{nn}/a") == {"namenode": nn}
    assert DFSFileSystem._get_kwargs_from_urls("dfs:///a") == {}
    fs, path = fsspec.url_to_fs(f"dfs://{nn}/data/x.csv")
    assert isinstance(fs, DFSFileSystem) and fs.namenode == nn and path == "/data/x.csv"
    assert fs.unstrip_protocol(path) == f"dfs://{nn}/data/x.csv"
    assert fs.unstrip_protocol(f"dfs://{nn}/q") == f"dfs://{nn}/q"
    with fs.open("/data/u.bin", "wb") as f:
        assert f.full_name == f"dfs://{nn}/data/u.bin"
    assert DFSFileSystem(host="nn1", port=9000, skip_instance_cache=True).namenode == "nn1:9000"
    assert DFSFileSystem("dfs://nn2:1/", skip_instance_cache=True).namenode == "nn2:1"


def test_default_namenode_from_env_and_fsspec_config(nn, monkeypatch):
    monkeypatch.setenv("DFS_NAMENODE", "envhost:1234")
    assert DFSFileSystem(skip_instance_cache=True).namenode == "envhost:1234"
    fs, path = fsspec.url_to_fs("dfs:///some/where")
    assert fs.namenode == "envhost:1234" and path == "/some/where"
    monkeypatch.delenv("DFS_NAMENODE")
    assert DFSFileSystem(skip_instance_cache=True).namenode == "127.0.0.1:8020"
    # fsspec's own config (~/.config/fsspec/*.json, FSSPEC_DFS_NAMENODE read at import)
    monkeypatch.setitem(fsspec.config.conf, "dfs", {"namenode": nn})
    fs = fsspec.filesystem("dfs", skip_instance_cache=True)
    assert fs.namenode == nn
    code = "import fsspec; print(fsspec.filesystem('dfs').namenode)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "FSSPEC_DFS_NAMENODE": "confhost:77"})
    assert out.stdout.strip() == "confhost:77", out.stderr


# -- metadata -------------------------------------------------------------------
def test_info_keys_in_one_rpc(fs, rpcs):
    fs.pipe_file("/meta/f.bin", b"x" * 1000, replication=2)
    rpcs.clear()
    info = fs.info("/meta/f.bin")
    assert rpcs == ["GetFileInfo"]
    for key in ("name", "size", "type", "mtime", "created", "mode", "owner", "group", "replication",
                "block_size", "checksum"):
        assert key in info, key
    assert info["name"] == "/meta/f.bin" and info["size"] == 1000 and info["type"] == "file"
    assert info["replication"] == 2 and info["block_size"] == 1 << 20
    assert info["mode"] & 0o777 == 0o644 and info["permission"] == "0644"
    assert isinstance(info["mtime"], float) and info["created"] <= info["mtime"]
    d = fs.info(f"dfs://{fs.namenode}/meta/")
    assert d["name"] == "/meta" and d["type"] == "directory" and d["size"] == 0


def test_ls(fs):
    fs.pipe({"/ls/a": b"1", "/ls/b": b"22", "/ls/sub/c": b"333"})
    assert fs.ls("/ls", detail=False) == ["/ls/a", "/ls/b", "/ls/sub"]
    by = {e["name"]: e for e in fs.ls("/ls")}
    assert by["/ls/b"]["size"] == 2 and by["/ls/sub"]["type"] == "directory"
    assert fs.ls("/ls/a", detail=False) == ["/ls/a"]          # a file lists itself
    assert fs.find("/ls") == ["/ls/a", "/ls/b", "/ls/sub/c"]
    assert fs.du("/ls") == 6
    assert sorted(fs.glob("/ls/*")) == ["/ls/a", "/ls/b", "/ls/sub"]
    with pytest.raises(FileNotFoundError):
        fs.ls("/ls/missing")


def test_standard_exceptions(fs, nn):
    fs.pipe_file("/err/file", b"data")
    with pytest.raises(FileNotFoundError):
        fs.info("/err/nope")
    with pytest.raises(FileNotFoundError):
        fs.cat_file("/err/nope")
    with pytest.raises(FileNotFoundError):
        fs.open("/err/nope", "rb")
    with pytest.raises(FileNotFoundError):
        fs.rm("/err/nope")
    with pytest.raises(FileExistsError):
        fs.mkdir("/err")
    with pytest.raises(FileExistsError):
        fs.makedirs("/err")
    with pytest.raises(FileExistsError):
        fs.makedirs("/err/file", exist_ok=True)
    with pytest.raises(FileExistsError):
        fs.pipe_file("/err/file", b"x", mode="create")
    with pytest.raises(FileExistsError):
        fs.open("/err/file", "xb")
    with pytest.raises(IsADirectoryError):
        fs.open("/err", "rb")
    with pytest.raises(IsADirectoryError):
        fs.cat_file("/err")
    with pytest.raises(NotADirectoryError):
        fs.ls("/err/file/below")
    with pytest.raises(NotADirectoryError):
        fs.rmdir("/err/file")
    with pytest.raises(OSError):
        fs.rmdir("/err")                                      # not empty
    fs.chmod("/err/file", 0o600)
    other = DFSFileSystem(namenode=nn, user="mallory", skip_instance_cache=True)
    with pytest.raises(PermissionError):
        other.cat_file("/err/file")
    fs.mkdir("/err/locked")
    fs.chmod("/err/locked", 0o755)
    with pytest.raises(PermissionError):
        other.pipe_file("/err/locked/x", b"no")


def test_walk_hands_an_unreadable_subdirectory_to_on_error(fs, nn):
    """on_error ("raise", or a callable) holds for every directory of the walk, as
    os.walk's onerror does, not only for the top one: fsspec's walk drops it when it
    recurses, so an unreadable subdirectory was left out silently whatever was asked."""
    fs.pipe_file("/walkerr/top/closed/secret", b"s")
    fs.pipe_file("/walkerr/top/open", b"o")
    fs.chmod("/walkerr/top/closed", 0o700)
    bob = DFSFileSystem(namenode=nn, user="bob", skip_instance_cache=True)
    readable = [("/walkerr", ["top"], []), ("/walkerr/top", ["closed"], ["open"])]
    with pytest.raises(PermissionError):
        list(bob.walk("/walkerr", on_error="raise"))
    seen = []
    assert list(bob.walk("/walkerr", on_error=seen.append)) == readable
    assert [e.filename for e in seen] == ["/walkerr/top/closed"] and isinstance(seen[0], PermissionError)
    seen = []
    assert list(bob.walk("/walkerr", topdown=False, on_error=seen.append)) == readable[::-1]
    assert len(seen) == 1
    assert list(bob.walk("/walkerr")) == readable                       # "omit"
    assert list(bob.walk("/walkerr", maxdepth=2, on_error="raise")) == readable   # not reached
    with pytest.raises(PermissionError):
        bob.find("/walkerr", on_error="raise")
    assert bob.find("/walkerr") == ["/walkerr/top/open"]


def test_mkdir_makedirs_rmdir(fs):
    fs.mkdir("/mk/a/b/c")                     # create_parents=True by default
    assert fs.isdir("/mk/a/b/c")
    with pytest.raises(FileNotFoundError):
        fs.mkdir("/mk/x/y", create_parents=False)
    fs.makedirs("/mk/a/b/c", exist_ok=True)
    fs.makedirs("/mk/d/e", exist_ok=True)
    fs.rmdir("/mk/d/e")
    assert not fs.exists("/mk/d/e") and fs.isdir("/mk/d")


def test_rm_recursive_is_one_rpc(fs, rpcs):
    fs.pipe({f"/rm/tree/{i}/{j}": b"x" for i in range(3) for j in range(3)})
    rpcs.clear()
    fs.rm("/rm/tree", recursive=True)
    assert rpcs == ["Delete"]
    assert not fs.exists("/rm/tree")
    fs.pipe({"/rm/g/a.csv": b"1", "/rm/g/b.csv": b"2", "/rm/g/c.txt": b"3"})
    fs.rm("/rm/g/*.csv")
    assert fs.ls("/rm/g", detail=False) == ["/rm/g/c.txt"]
    fs.rm_file("/rm/g/c.txt")
    assert fs.ls("/rm/g") == []


def test_mv_is_atomic_rename(fs, rpcs):
    fs.pipe_file("/mv/src", b"payload")
    fid = fs.info("/mv/src")["file_id"]
    rpcs.clear()
    fs.mv("/mv/src", "/mv/dst")
    assert rpcs == ["Rename"]
    assert fs.info("/mv/dst")["file_id"] == fid and not fs.exists("/mv/src")
    fs.mkdir("/mv/dir")
    fs.mv("/mv/dst", "/mv/dir")                      # into an existing directory
    assert fs.cat_file("/mv/dir/dst") == b"payload"
    fs.pipe_file("/mv/other", b"new")
    fs.mv("/mv/other", "/mv/dir/dst")                # replaces a file, atomically
    assert fs.cat_file("/mv/dir/dst") == b"new"
    fs.mv("/mv/dir", "/mv/dir2")                     # a whole directory, one rename
    assert fs.find("/mv") == ["/mv/dir2/dst"]
    fs.mv("/mv/dir2/dst", "/mv/newdir/")             # trailing slash: into a new directory
    assert fs.cat_file("/mv/newdir/dst") == b"new"
    fs.pipe_file("/mv/dst", b"newer")
    fs.mv("/mv/dst", "/mv/newdir")                   # into a directory holding that name: as mv
    assert fs.cat_file("/mv/newdir/dst") == b"newer" and not fs.exists("/mv/dst")
    fs.mkdir("/mv/d3/dst")
    fs.pipe_file("/mv/d3/dst/x", b"x")
    fs.pipe_file("/mv/dst", b"file")
    with pytest.raises(IsADirectoryError):           # a file never replaces a directory
        fs.mv("/mv/dst", "/mv/d3")
    assert fs.cat_file("/mv/dst") == b"file" and fs.cat_file("/mv/d3/dst/x") == b"x"


def test_cp_file_keeps_replication(fs):
    data = os.urandom(3 << 20)
    fs.pipe_file("/cp/src", data, replication=2)
    fs.cp_file("/cp/src", "/cp/sub/dst")
    assert fs.cat_file("/cp/sub/dst") == data
    assert fs.info("/cp/sub/dst")["replication"] == 2
    assert fs.info("/cp/sub/dst")["file_id"] != fs.info("/cp/src")["file_id"]


def test_cat_file_ranges_in_one_round_trip(fs, rpcs):
    data = bytes(range(256)) * 20_000                # ~5 MiB, 5 blocks
    fs.pipe_file("/cat/f", data)
    rpcs.clear()
    assert fs.cat_file("/cat/f", 1_000_000, 3_500_000) == data[1_000_000:3_500_000]
    assert rpcs == ["GetBlockLocations"]
    assert fs.cat_file("/cat/f", -100) == data[-100:]
    assert fs.cat_file("/cat/f", 10, -10) == data[10:-10]
    assert fs.cat_file("/cat/f", 10, 10) == b""
    assert fs.cat_file("/cat/f") == data
    assert fs.cat_ranges(["/cat/f", "/cat/f"], [0, 5], [5, 10]) == [data[:5], data[5:10]]
    assert fs.head("/cat/f", 3) == data[:3] and fs.tail("/cat/f", 3) == data[-3:]
    assert fs.read_block("/cat/f", 0, 10) == data[:10]


def test_pipe_file_create_mode(fs):
    fs.pipe_file("/pipe/x", b"one", mode="create")
    with pytest.raises(FileExistsError):
        fs.pipe_file("/pipe/x", b"two", mode="create")
    assert fs.cat_file("/pipe/x") == b"one"
    fs.pipe_file("/pipe/x", b"three")
    assert fs.cat_file("/pipe/x") == b"three"


class _Progress(Callback):
    def __init__(self):
        super().__init__()
        self.updates: list[int] = []

    def call(self, *args, **kwargs):
        self.updates.append(self.value)


def test_put_get_file_with_byte_progress(fs, tmp_path):
    data = os.urandom(9 << 20)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    cb = _Progress()
    fs.put_file(str(src), "/io/deep/dst.bin", callback=cb)
    assert cb.size == len(data) and cb.value == len(data) and len(cb.updates) > 1
    with pytest.raises(FileExistsError):
        fs.put_file(str(src), "/io/deep/dst.bin", mode="create")
    cb = _Progress()
    out = tmp_path / "sub" / "back.bin"
    fs.get_file("/io/deep/dst.bin", str(out), callback=cb)
    assert out.read_bytes() == data
    assert cb.size == len(data) and cb.value == len(data) and len(cb.updates) > 1
    fs.get("/io", str(tmp_path / "tree"), recursive=True)
    assert (tmp_path / "tree" / "deep" / "dst.bin").read_bytes() == data
    fs.put(str(tmp_path / "tree"), "/io2", recursive=True)
    assert fs.cat_file("/io2/deep/dst.bin") == data


def test_touch_created_modified(fs):
    fs.touch("/touch/new")
    assert fs.cat_file("/touch/new") == b""
    fs.pipe_file("/touch/f", b"keep")
    m0 = fs.modified("/touch/f")
    fid = fs.info("/touch/f")["file_id"]
    fs.touch("/touch/f", truncate=False)
    assert fs.cat_file("/touch/f") == b"keep" and fs.info("/touch/f")["file_id"] == fid
    assert fs.modified("/touch/f") > m0
    assert fs.created("/touch/f").tzinfo == UTC
    assert fs.created("/touch/f") <= fs.modified("/touch/f")
    fs.touch("/touch/f")                               # truncate=True
    assert fs.cat_file("/touch/f") == b""


def test_ukey_and_checksum(fs):
    fs.pipe_file("/ck/f", b"version 1")
    k1, c1 = fs.ukey("/ck/f"), fs.checksum("/ck/f")
    assert isinstance(c1, int)
    assert fs.ukey("/ck/f") == k1 and fs.checksum("/ck/f") == c1      # stable
    fs.chmod("/ck/f", 0o600)
    fs.touch("/ck/f", truncate=False)
    assert fs.ukey("/ck/f") == k1                       # metadata changes do not change content
    fs.pipe_file("/ck/f", b"version 1")                 # rewritten: a new version
    assert fs.ukey("/ck/f") != k1 and fs.checksum("/ck/f") != c1
    fs.mv("/ck/f", "/ck/g")
    assert fs.info("/ck/g")["checksum"] == fs.ukey("/ck/g")


# -- files ------------------------------------------------------------------------
def test_seekable_reads(fs):
    data = os.urandom((5 << 20) + 12345)
    fs.pipe_file("/files/r.bin", data)
    with fs.open("/files/r.bin", "rb") as f:
        assert f.size == len(data) and f.seekable()
        f.seek(3 << 20)
        assert f.read(10) == data[3 << 20:(3 << 20) + 10]
        f.seek(-5, 2)
        assert f.read() == data[-5:]
        f.seek(100)
        assert f.read(2 << 20) == data[100:100 + (2 << 20)]
        assert f.tell() == 100 + (2 << 20)
        f.seek(0)
        assert f.read() == data
        assert f.chunk_stats["max_fetches_per_chunk"] == 1
    with fs.open(f"dfs://{fs.namenode}/files/r.bin", "rb", block_size=1000) as f:
        lines = f.read(1)
        assert lines == data[:1]


def test_sequential_read_ahead_and_text_mode(fs):
    text = "".join(f"line {i}\n" for i in range(300_000))       # ~3.5 MiB
    fs.pipe_file("/files/t.txt", text.encode())
    with fs.open("/files/t.txt", "rt") as f:
        assert f.readline() == "line 0\n"
        assert sum(1 for _ in f) == 299_999
    with fs.open("/files/t.txt", "rb") as f:
        while f.read(256 << 10):
            pass
        stats = f.chunk_stats
    assert stats["chunks_fetched"] == stats["chunks"] and stats["max_fetches_per_chunk"] == 1


def test_parquet_footer_then_row_groups_fetch_each_chunk_once(fs):
    import pandas as pd
    import pyarrow.parquet as pq
    n = 400_000
    df = pd.DataFrame({"a": range(n), "b": [i * 0.25 for i in range(n)]})
    buf = io.BytesIO()
    df.to_parquet(buf, row_group_size=50_000, compression=None)
    fs.pipe_file("/files/t.parquet", buf.getvalue())
    with fs.open("/files/t.parquet", "rb") as f:
        pf = pq.ParquetFile(f)                   # footer
        assert pf.metadata.num_row_groups == 8
        parts = [pf.read_row_group(i).to_pandas() for i in range(8)]
        stats = f.chunk_stats
    assert pd.concat(parts, ignore_index=True).equals(df)
    assert stats["max_fetches_per_chunk"] == 1, stats
    assert stats["chunks_fetched"] == stats["chunks"]


def test_writes_stream_and_appear_only_on_close(fs, shared_cluster):
    data = os.urandom(3 << 20)
    f = fs.open("/files/w.bin", "wb", block_size=512 << 10)
    f.write(data[:1 << 20])
    f.write(data[1 << 20:])
    # 3 MiB (> the 512 KiB buffer) went into the block pipeline before close...
    assert f.offset == 3 << 20 and f._writer.bytes_written == 3 << 20
    assert not fs.exists("/files/w.bin")            # ...but nothing is visible yet
    f.write(b"tail")
    f.close()
    assert fs.cat_file("/files/w.bin") == data + b"tail"
    assert len(fs.get_block_locations("/files/w.bin")) == 4


def test_exclusive_create_and_exception_discards(fs):
    with fs.open("/files/x.bin", "xb") as f:
        f.write(b"first")
    with pytest.raises(FileExistsError):
        fs.open("/files/x.bin", "xb")
    with pytest.raises(RuntimeError):
        with fs.open("/files/x.bin", "wb") as f:
            f.write(b"half-written")
            raise RuntimeError("boom")
    assert fs.cat_file("/files/x.bin") == b"first"       # old content kept, nothing published


def test_append(fs):
    fs.pipe_file("/files/a.log", b"one\n")
    with fs.open("/files/a.log", "ab") as f:
        assert f.tell() == 4
        f.write(b"two\n")
    assert fs.cat_file("/files/a.log") == b"one\ntwo\n"
    with fs.open("/files/new.log", "ab") as f:
        f.write(b"x")
    assert fs.cat_file("/files/new.log") == b"x"


def test_racing_appenders_never_both_acknowledged(fs):
    """Two "ab" opens of one file: the first close commits, the second is refused
    (ESTALE) rather than acknowledged and dropping the first one's bytes; a chmod made
    while an append was open holds. Two "ab" of a missing file: the second close is
    refused (it exists), never replacing the first."""
    fs.pipe_file("/files/race.log", b"base\n")
    f1, f2 = fs.open("/files/race.log", "ab"), fs.open("/files/race.log", "ab")
    f1.write(b"one\n")
    fs.chmod("/files/race.log", 0o600)
    f1.close()
    f2.write(b"two\n")
    with pytest.raises(OSError) as e:
        f2.close()
    assert e.value.errno == errno.ESTALE
    assert fs.cat_file("/files/race.log") == b"base\none\n"
    assert fs.info("/files/race.log")["mode"] & 0o7777 == 0o600
    with fs.open("/files/race.log", "ab") as f:    # begun after the commit: on top of it
        f.write(b"three\n")
    assert fs.cat_file("/files/race.log") == b"base\none\nthree\n"
    g1, g2 = fs.open("/files/race-new.log", "ab"), fs.open("/files/race-new.log", "ab")
    g1.write(b"first")
    g1.close()
    g2.write(b"second")
    with pytest.raises(FileExistsError):
        g2.close()
    assert fs.cat_file("/files/race-new.log") == b"first"


def test_an_append_keeps_the_files_owner_mode_and_replication(fs, nn):
    """An "ab" of an existing file is a new version of it: alice's setuid file appended
    to by the superuser with replication= and permissions= stays alice's, setuid, at its
    replication (it became root's, setuid: a setuid-root file of alice's content); by
    bob, a non-owner, it stays alice's and loses set-user-ID, as a write on Linux."""
    fs.mkdir("/files/pub")
    fs.chmod("/files/pub", 0o777)
    alice = DFSFileSystem(namenode=nn, user="alice", skip_instance_cache=True)
    bob = DFSFileSystem(namenode=nn, user="bob", skip_instance_cache=True)
    alice.pipe_file("/files/pub/tool", b"#!/bin/sh\n")
    alice.chmod("/files/pub/tool", 0o4777)
    with fs.open("/files/pub/tool", "ab", replication=2, permissions=0o644) as f:
        f.write(b"# root\n")
    info = fs.info("/files/pub/tool")
    assert (info["owner"], info["mode"] & 0o7777, info["replication"]) == ("alice", 0o4777, 3)
    with bob.open("/files/pub/tool", "ab", replication=2) as f:
        f.write(b"# bob\n")
    info = fs.info("/files/pub/tool")
    assert (info["owner"], info["mode"] & 0o7777, info["replication"]) == ("alice", 0o777, 3)
    assert fs.cat_file("/files/pub/tool") == b"#!/bin/sh\n# root\n# bob\n"


def test_an_append_takes_write_permission_on_the_file_not_on_its_directory(fs, nn):
    """carol's "ab" of bob's 0666 log in his 0755 directory is a write into the file,
    which POSIX and HDFS's append allow her (it was a PermissionError: the namenode
    asked write on the directory); the file stays bob's. A "wb" over it would put
    carol's file there, a change of the directory: still refused, as an "ab" of a file
    she may not write."""
    fs.mkdir("/files/bobdir")
    fs.chown("/files/bobdir", "bob")
    bob = DFSFileSystem(namenode=nn, user="bob", skip_instance_cache=True)
    carol = DFSFileSystem(namenode=nn, user="carol", skip_instance_cache=True)
    bob.pipe_file("/files/bobdir/shared.log", b"line1\n")
    bob.chmod("/files/bobdir/shared.log", 0o666)
    with carol.open("/files/bobdir/shared.log", "ab") as f:
        f.write(b"line2\n")
    assert fs.cat_file("/files/bobdir/shared.log") == b"line1\nline2\n"
    info = fs.info("/files/bobdir/shared.log")
    assert (info["owner"], info["mode"] & 0o7777) == ("bob", 0o666)
    with pytest.raises(PermissionError):
        with carol.open("/files/bobdir/shared.log", "wb") as f:
            f.write(b"carol's\n")
    bob.chmod("/files/bobdir/shared.log", 0o644)
    with pytest.raises(PermissionError):
        with carol.open("/files/bobdir/shared.log", "ab") as f:
            f.write(b"line3\n")
    assert fs.cat_file("/files/bobdir/shared.log") == b"line1\nline2\n"


def test_transactions(fs):
    with fs.transaction:
        with fs.open("/tx/a", "wb") as f:
            f.write(b"A" * (2 << 20))
        with fs.open("/tx/b", "wb") as f:
            f.write(b"B")
        assert not fs.exists("/tx/a") and not fs.exists("/tx/b")
    assert fs.cat_file("/tx/a") == b"A" * (2 << 20) and fs.cat_file("/tx/b") == b"B"
    with pytest.raises(ValueError):
        with fs.transaction:
            with fs.open("/tx/c", "wb") as f:
                f.write(b"C")
            raise ValueError("abort")
    assert not fs.exists("/tx/c")
    fs.start_transaction()
    with fs.open("/tx/a", "wb") as f:
        f.write(b"replaced")
    fs.transaction.complete(commit=False)
    fs.end_transaction()
    assert fs.cat_file("/tx/a") == b"A" * (2 << 20)


def test_every_write_method_waits_for_the_transaction(fs, tmp_path):
    local = tmp_path / "l"
    local.write_bytes(b"L" * 1000)
    fs.pipe_file("/tx2/src", b"S")
    fs.pipe_file("/tx2/old", b"old")
    names = ["piped", "put", "touched", "copied", "opened"]

    def writes():
        fs.pipe_file("/tx2/piped", b"P")
        fs.put_file(str(local), "/tx2/put")
        fs.touch("/tx2/touched")
        fs.cp_file("/tx2/src", "/tx2/copied")
        fs.pipe_file("/tx2/old", b"new")
        with fs.open("/tx2/opened", "wb") as f:
            f.write(b"O")

    with pytest.raises(RuntimeError):
        with fs.transaction:
            writes()
            assert not any(fs.exists(f"/tx2/{n}") for n in names)
            raise RuntimeError("abort")
    assert not any(fs.exists(f"/tx2/{n}") for n in names)
    assert fs.cat_file("/tx2/old") == b"old"
    with fs.transaction:
        writes()
        assert fs.cat_file("/tx2/old") == b"old"
    assert [fs.cat_file(f"/tx2/{n}") for n in names] == [b"P", b"L" * 1000, b"", b"S", b"O"]
    assert fs.cat_file("/tx2/old") == b"new"
    with pytest.raises(FileExistsError):     # mode="create" still refuses at once
        with fs.transaction:
            fs.pipe_file("/tx2/piped", b"again", mode="create")


# -- shipping to workers ------------------------------------------------------------
def test_pickle_round_trip_rebuilds_from_arguments(fs, nn, monkeypatch):
    fs.pipe_file("/pk/f", b"pickled")
    fs.cat_file("/pk/f")                                  # channel open
    blob = pickle.dumps(fs)
    assert b"grpc" not in blob.lower() and len(blob) < 1000
    monkeypatch.setenv("DFS_NAMENODE", "elsewhere:1")      # the worker's env must not matter
    fs2 = pickle.loads(blob)
    assert fs2.namenode == nn and fs2.cat_file("/pk/f") == b"pickled"
    with fs.open("/pk/f", "rb") as f:
        f.read(2)
        g = pickle.loads(pickle.dumps(f))
        assert g.read() == b"ckled"


def _child_read(fs, q):
    try:
        q.put(fs.cat_file("/pk/fork"))
    except BaseException as e:   # pragma: no cover - reported to the parent
        q.put(repr(e))


def test_works_after_fork(fs):
    fs.pipe_file("/pk/fork", b"forked")
    assert fs.cat_file("/pk/fork") == b"forked"           # parent's channel is in use
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_read, args=(fs, q))
    p.start()
    assert q.get(timeout=30) == b"forked"
    p.join(10)
    assert fs.cat_file("/pk/fork") == b"forked"           # and the parent still works


def test_thread_safety(fs):
    blobs = {f"/th/{i}": os.urandom(300_000 + i) for i in range(8)}
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda kv: fs.pipe_file(*kv), blobs.items()))
        got = dict(zip(blobs, pool.map(fs.cat_file, blobs), strict=True))
    assert got == blobs
    errors = []

    def reader():
        try:
            with fs.open("/th/3", "rb") as f:
                for off in range(0, 300_000, 7_000):
                    f.seek(off)
                    assert f.read(5_000) == blobs["/th/3"][off:off + 5_000]
        except BaseException as e:   # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# -- locality hints -------------------------------------------------------------------
def test_get_block_locations_matches_dfs_locate(fs, shared_cluster):
    fs.pipe_file("/loc/f", os.urandom((4 << 20) + 5))
    cli = json.loads(shared_cluster.cli("locate", "--json", "/loc/f", check=True).stdout)
    locs = fs.get_block_locations(f"dfs://{fs.namenode}/loc/f")
    # the same list, replicas in the same order (equally near ones were shuffled per call)
    assert locs == cli
    assert all(fs.get_block_locations("/loc/f") == locs for _ in range(5))
    assert [b["offset"] for b in locs] == [0, 1 << 20, 2 << 20, 3 << 20, 4 << 20]
    assert set(locs[0]) >= {"offset", "length", "block_id", "hosts", "names", "racks"}
    part = fs.get_block_locations("/loc/f", start=(1 << 20) + 10, length=1 << 20)
    assert [b["offset"] for b in part] == [1 << 20, 2 << 20]
    assert fs.get_block_locations("/loc/f", start=4 << 20, length=None)[0]["length"] == 5
    assert fs.get_block_locations("/loc/f", start=0, length=0) == []   # an empty range overlaps nothing
    fs.pipe_file("/loc/g", b"g" * 10)
    many = fs.get_block_locations_many(["/loc/f", f"dfs://{fs.namenode}/loc/g"])
    assert sorted(many) == ["/loc/f", "/loc/g"] and len(many["/loc/g"]) == 1
    assert [b["block_id"] for b in many["/loc/f"]] == [b["block_id"] for b in locs]
    fs.pipe({"/loc/d/a": b"a", "/loc/d/b": b"b"})
    assert sorted(fs.get_block_locations_many("/loc/d")) == ["/loc/d/a", "/loc/d/b"]
    with pytest.raises(IsADirectoryError):
        fs.get_block_locations("/loc/d")
