"""DFSFileSystem held against what a data engineer expects from fsspec's own
LocalFileSystem / a local file, and from pandas, pyarrow, dask and duckdb.

Each test names the divergence it guards (a bug once, fixed) or pins a
documented difference (docs/fsspec.md, "Differences from a local filesystem").
"""

from __future__ import annotations

import gc
import os
import time
import warnings

import fsspec
import pandas as pd
import pytest

from dfs.client.filesystem import DFSFileSystem


@pytest.fixture(scope="module")
def nn(shared_cluster):
    return shared_cluster.namenode_address


@pytest.fixture(scope="module")
def fs(nn):
    return DFSFileSystem(namenode=nn, skip_instance_cache=True)


@pytest.fixture(scope="module")
def url(nn):
    return f"dfs://{nn}"


# -- text mode ----------------------------------------------------------------------
def test_utf16_text_writers_write_the_byte_order_mark(fs, url, tmp_path):
    # A writer that said seekable() == False made io.TextIOWrapper drop the BOM of
    # UTF-16/32: pandas could not read back its own to_csv(encoding="utf-16").
    df = pd.DataFrame({"a": range(50), "b": ["é"] * 50})
    df.to_csv(f"{url}/audit/u16.csv", index=False, encoding="utf-16")
    df.to_csv(tmp_path / "u16.csv", index=False, encoding="utf-16")
    assert fs.cat_file("/audit/u16.csv") == (tmp_path / "u16.csv").read_bytes()
    pd.testing.assert_frame_equal(pd.read_csv(f"{url}/audit/u16.csv", encoding="utf-16"), df)

    for enc in ("utf-16", "utf-32"):
        with fs.open(f"/audit/t-{enc}.txt", "wt", encoding=enc) as f:      # our text wrapper
            f.write("héllo\n")
        with fsspec.open(f"{url}/audit/o-{enc}.txt", "wt", encoding=enc) as f:   # fsspec's
            f.write("héllo\n")
        expected = "héllo\n".encode(enc)                 # with the BOM
        assert fs.cat_file(f"/audit/t-{enc}.txt") == expected
        assert fs.cat_file(f"/audit/o-{enc}.txt") == expected
        with fs.open(f"/audit/t-{enc}.txt", "rt", encoding=enc) as f:
            assert f.read() == "héllo\n"

    # Appending to a non-empty file does not put a second BOM in the middle.
    with fs.open("/audit/t-utf-16.txt", "at", encoding="utf-16") as f:
        f.write("wörld\n")
    with fs.open("/audit/t-utf-16.txt", "rt", encoding="utf-16") as f:
        assert f.read() == "héllo\nwörld\n"


def test_text_writer_tell_and_writer_seek(fs):
    with fs.open("/audit/tell.txt", "wt") as f:
        f.write("abc")
        assert f.tell() == 3                              # raised UnsupportedOperation
        f.write("de\n")
        assert f.tell() == 6
        with pytest.raises(OSError):                      # still no random writes
            f.seek(0)
    with fs.open("/audit/tell.bin", "wb") as f:
        assert f.seekable() and f.tell() == 0
        f.write(b"xyz")
        assert f.tell() == 3
        with pytest.raises(OSError):
            f.seek(0, 1)
    assert fs.cat_file("/audit/tell.txt") == b"abcde\n" and fs.cat_file("/audit/tell.bin") == b"xyz"


def test_archives_written_through_a_writer_stay_readable(fs):
    # zipfile decides stream vs seek-back by trying seek(), not by seekable(): a
    # writer that reports seekable must still refuse the seek (npz, xlsx, .csv.zip).
    import zipfile
    with fs.open("/audit/z.zip", "wb") as f, zipfile.ZipFile(f, "w") as z:
        z.writestr("a.txt", "hello")
        z.writestr("b.bin", os.urandom(100_000))
    with fs.open("/audit/z.zip", "rb") as f, zipfile.ZipFile(f) as z:
        assert z.testzip() is None and z.read("a.txt") == b"hello"
    df = pd.DataFrame({"a": range(1000)})
    df.to_csv(f"dfs://{fs.namenode}/audit/c.csv.zip", index=False)
    pd.testing.assert_frame_equal(pd.read_csv(f"dfs://{fs.namenode}/audit/c.csv.zip"), df)


# -- modes --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["r+b", "rb+", "w+b", "a+b", "r+", "w+"])
def test_update_modes_fail_clearly_and_touch_nothing(fs, mode):
    fs.pipe_file("/audit/modes.bin", b"0123456789")
    with pytest.raises(NotImplementedError, match=r"not supported.*written once"):
        fs.open("/audit/modes.bin", mode)
    assert fs.cat_file("/audit/modes.bin") == b"0123456789"


def test_mode_letters_in_any_order_as_for_open(fs):
    fs.pipe_file("/audit/br.bin", b"data")
    with fs.open("/audit/br.bin", "br") as f:                 # open() accepts it; fsspec did not
        assert f.read() == b"data"
    with fs.open("/audit/br2.bin", "bw") as f:
        f.write(b"x")
    assert fs.cat_file("/audit/br2.bin") == b"x"
    with fs.open("/audit/br.bin", "tr") as f:
        assert f.read() == "data"


# -- fork ---------------------------------------------------------------------------
def _read_in_child(f, q):
    try:
        f.seek(1_100_000)
        a = f.read(900_000)                    # one chunk, neither cached nor in flight
        f.seek(0)
        b = f.read(100)                        # cached in the parent before the fork
        q.put((a, b))
    except BaseException as e:   # pragma: no cover - reported to the parent
        q.put(repr(e))


def test_a_file_opened_before_a_fork_reads_in_the_child(fs):
    # The child's reads waited for ever: on the parent's codec pool (its threads are
    # not copied by fork, yet its idle count says some are), on fetches in flight at
    # the fork, and on the file's lock if another thread held it then.
    import multiprocessing
    from concurrent.futures import Future, wait
    data = os.urandom(3_000_000)
    fs.pipe_file("/audit/fork.bin", data)
    with fs.open("/audit/fork.bin", "rb", cache_options={"readahead": 0}) as f:
        f.read(100)                            # the first chunk only: the rest is read in the child
        wait(list(f._chunks.inflight.values()), timeout=30)
        codec = f._chunks.reader._pool         # wait until its threads count as idle
        deadline = time.monotonic() + 20
        while codec._idle_semaphore._value < len(codec._threads) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert codec._threads and codec._idle_semaphore._value >= len(codec._threads)
        f._chunks.inflight[1 << 20] = Future()   # a fetch in flight whose thread stays here
        ctx = multiprocessing.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=_read_in_child, args=(f, q))
        # Other threads inside the file, and inside its client (a writer registering its
        # lease), at the fork:
        with f._chunks.lock, f._chunks.reader.client._lock:
            p.start()
        try:
            got = q.get(timeout=30)
        finally:
            p.join(10)
            if p.is_alive():   # pragma: no cover
                p.kill()
        assert got == (data[1_100_000:2_000_000], data[:100])
        del f._chunks.inflight[1 << 20]
        f.seek(2_900_000)
        assert f.read() == data[2_900_000:]    # and the parent's file still works


# -- what a Parquet reader fetches from the datanodes --------------------------------
@pytest.fixture
def chunk_requests(monkeypatch):
    """Every (block_id, first_chunk, last_chunk) asked of a datanode by this process."""
    from dfs.client.reader import FileReader
    asked: list[tuple[int, int, int]] = []
    real = FileReader._send_request

    def spy(s, block, first, last):
        asked.append((block.block.block_id, first, last))
        return real(s, block, first, last)

    monkeypatch.setattr(FileReader, "_send_request", staticmethod(spy))
    return asked


def test_parquet_metadata_and_one_column_fetch_only_their_chunks(fs, chunk_requests):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    rng = np.random.default_rng(3)
    n = 300_000
    table = pa.table({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": np.arange(n)})
    pafs = PyFileSystem(FSSpecHandler(fs))
    pq.write_table(table, "/audit/meta.parquet", filesystem=pafs, row_group_size=100_000,
                   compression="none")
    size = fs.size("/audit/meta.parquet")
    chunk = 1 << 20                                   # the test cluster's chunk (and block) size
    nchunks = -(-size // chunk)
    assert nchunks >= 6

    def fetched() -> set[tuple[int, int]]:
        # (block, chunk) pairs; a block is one chunk here, so count distinct blocks
        return {(b, c) for b, first, last in chunk_requests for c in range(first, last + 1)}

    md = pq.read_metadata("/audit/meta.parquet", filesystem=pafs)
    assert md.num_rows == n and md.num_row_groups == 3
    assert len(fetched()) == 1                        # the footer's chunk, no other
    chunk_requests.clear()

    pf = pq.ParquetFile("/audit/meta.parquet", filesystem=pafs)
    col = pf.metadata.row_group(1).column(1)          # row group 1, column "b"
    lo, hi = col.data_page_offset, col.data_page_offset + col.total_compressed_size
    got = pf.read_row_group(1, columns=["b"])
    assert got.column("b").equals(table.column("b").slice(100_000, 100_000))
    needed = {off // chunk for off in (lo, hi - 1)} | {(size - 1) // chunk}
    assert len(fetched()) == len(needed) < nchunks    # that column's chunks and the footer's


# -- which cluster a URL names -------------------------------------------------------
def test_a_url_naming_another_namenode_is_refused_not_served_from_this_cluster(fs, nn, url):
    # It was: fs.cat_file("dfs://other:8020/x") read /x of fs's own cluster, and duckdb
    # (one registered filesystem per protocol) answered queries on another cluster's URL.
    fs.pipe_file("/audit/which.txt", b"mine")
    host, port = nn.rsplit(":", 1)
    other = f"dfs://{host}:{int(port) + 1}/audit/which.txt"
    for call in (fs.cat_file, fs.info, fs.exists, fs.ls, lambda p: fs.open(p, "rb"),
                 lambda p: fs.pipe_file(p, b"x"), lambda p: fs.rm(p)):
        with pytest.raises(ValueError, match=r"names namenode .* connected to"):
            call(other)
    assert fs.cat_file("/audit/which.txt") == b"mine"
    # The same namenode spelled differently is the same cluster.
    assert fs.cat_file(f"{url}/audit/which.txt") == b"mine"
    assert fs.cat_file("dfs:///audit/which.txt") == b"mine"
    from dfs.client.filesystem import _same_namenode
    assert _same_namenode("localhost:8020", "127.0.0.1:8020")
    assert not _same_namenode("127.0.0.2:8020", "127.0.0.3:8020")
    assert not _same_namenode("localhost:8020", "127.0.0.1:8021")
    assert DFSFileSystem._strip_protocol(other) == "/audit/which.txt"     # fsspec's URL parsing
    # dfs://USER@HOST:PORT/path: the user (it was taken as part of the namenode's address)
    fs.chmod("/audit/which.txt", 0o600)
    as_bob, path = fsspec.url_to_fs(f"dfs://bob@{nn}/audit/which.txt")
    assert (as_bob.namenode, path) == (nn, "/audit/which.txt")
    with pytest.raises(PermissionError):
        as_bob.cat_file(path)
    # Another user's URL given to this instance: refused, as another namenode's is (it
    # served it as the instance's user, here the superuser). Its own user's is served.
    with pytest.raises(ValueError, match="names user bob, but this filesystem acts as"):
        fs.cat_file(f"dfs://bob@{nn}/audit/which.txt")
    me = fs.client.nn.caller.user
    assert fs.cat_file(f"dfs://{me}@{nn}/audit/which.txt") == b"mine"
    # A URL made by an instance given a user names that user, so it reopens as them.
    assert as_bob.unstrip_protocol(path) == f"dfs://bob@{nn}/audit/which.txt"
    assert fs.unstrip_protocol(path) == f"dfs://{nn}/audit/which.txt"
    fs.chmod("/audit/which.txt", 0o644)

    import duckdb
    con = duckdb.connect()
    con.register_filesystem(fs)
    try:
        with pytest.raises(duckdb.Error, match="names namenode"):
            con.execute(f"SELECT * FROM read_csv('{other}')").fetchall()
        assert con.execute(f"SELECT count(*) FROM glob('{url}/audit/which.*')").fetchall() == [(1,)]
    finally:
        con.close()


# -- the same answers as fsspec's LocalFileSystem --------------------------------------
def _outcome(fn):
    try:
        return ("ok", fn())
    except Exception as e:   # noqa: BLE001 - the exception class is the answer
        for cls in (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
                    ValueError, OSError):
            if isinstance(e, cls):
                return ("raises", cls.__name__)
        return ("raises", type(e).__name__)


def _tree(f, root):
    return sorted(p[len(root):] + ("/" if f.isdir(p) else "") for p in f.find(root, withdirs=True))


SAME_AS_LOCAL = {
    "cat negative start": lambda f, r: f.cat_file(f"{r}/d/b.txt", start=-3),
    "cat negative end": lambda f, r: f.cat_file(f"{r}/d/b.txt", start=2, end=-3),
    "cat past the end": lambda f, r: f.cat_file(f"{r}/d/b.txt", start=20, end=30),
    "cat too negative": lambda f, r: f.cat_file(f"{r}/d/b.txt", start=-30),
    "cat a directory": lambda f, r: f.cat_file(f"{r}/d"),
    "head/tail": lambda f, r: (f.head(f"{r}/d/b.txt", 3), f.tail(f"{r}/d/b.txt", 3),
                               f.tail(f"{r}/d/b.txt", 99)),
    "trailing slash": lambda f, r: (f.exists(f"{r}/d/"), f.isdir(f"{r}/d/"),
                                    f.exists(f"{r}/d/b.txt/"),
                                    f.info(f"{r}/d/b.txt/")["type"]),
    "through a file": lambda f, r: f.info(f"{r}/d/b.txt/x"),
    "exists through a file": lambda f, r: (f.exists(f"{r}/d/b.txt/x"), f.isdir(f"{r}/d/b.txt/x")),
    "dot components": lambda f, r: (f.info(f"{r}/d/../d/./b.txt")["size"],
                                    f.cat_file(f"{r}/e/../d/b.txt"),
                                    f.isdir(f"{r}/d/s/.."), f.exists(f"{r}/e/./../d/s/c.txt")),
    "ls a file": lambda f, r: [p[len(r):] for p in f.ls(f"{r}/d/b.txt", detail=False)],
    "ls missing": lambda f, r: f.ls(f"{r}/nope"),
    "mkdir existing": lambda f, r: f.mkdir(f"{r}/d"),
    "makedirs over a file": lambda f, r: f.makedirs(f"{r}/d/b.txt", exist_ok=True),
    "rmdir non-empty": lambda f, r: f.rmdir(f"{r}/d"),
    "rmdir a file": lambda f, r: f.rmdir(f"{r}/d/b.txt"),
    "open a directory": lambda f, r: f.open(f"{r}/d", "rb"),
    "write a directory": lambda f, r: f.open(f"{r}/d", "wb"),
    "xb existing": lambda f, r: f.open(f"{r}/d/b.txt", "xb"),
    "pipe under a file": lambda f, r: f.pipe_file(f"{r}/d/b.txt/x", b"1"),
    "touch a directory": lambda f, r: f.touch(f"{r}/d"),
    "modified is UTC": lambda f, r: (str(f.modified(f"{r}/d/b.txt").tzinfo),
                                     str(f.created(f"{r}/d/b.txt").tzinfo)),
    "info types": lambda f, r: {k: type(f.info(f"{r}/d/b.txt")[k]).__name__
                                for k in ("size", "mtime", "created")},
    "mv dir to new": lambda f, r: (f.mv(f"{r}/d", f"{r}/n"), _tree(f, r))[1],
    "mv dir into a dir": lambda f, r: (f.mv(f"{r}/d", f"{r}/e"), _tree(f, r))[1],
    "mv dir/ into a dir/": lambda f, r: (f.mv(f"{r}/d/", f"{r}/e/", recursive=True),
                                         _tree(f, r))[1],
    "mv into a missing parent": lambda f, r: f.mv(f"{r}/d/b.txt", f"{r}/no/such/b.txt"),
    "cp -r into a dir": lambda f, r: (f.cp(f"{r}/d", f"{r}/e", recursive=True), _tree(f, r))[1],
    "cp -r dir/ into a dir": lambda f, r: (f.cp(f"{r}/d/", f"{r}/e", recursive=True),
                                           _tree(f, r))[1],
    "rm -r dir/": lambda f, r: (f.rm(f"{r}/d/", recursive=True), _tree(f, r))[1],
}


@pytest.fixture
def both_trees(fs, tmp_path):
    from fsspec.implementations.local import LocalFileSystem
    local = LocalFileSystem()
    roots = []
    for f, r in ((fs, f"/audit/same/{tmp_path.name}"), (local, str(tmp_path / "t"))):
        f.makedirs(f"{r}/d/s", exist_ok=True)
        f.makedirs(f"{r}/e", exist_ok=True)
        f.pipe_file(f"{r}/d/b.txt", b"0123456789")
        f.pipe_file(f"{r}/d/s/c.txt", b"c")
        roots.append((f, r))
    return roots


@pytest.mark.parametrize("what", sorted(SAME_AS_LOCAL))
def test_same_answer_as_local_filesystem(both_trees, what):
    (dfs_fs, dfs_root), (local, local_root) = both_trees
    ours = _outcome(lambda: SAME_AS_LOCAL[what](dfs_fs, dfs_root))
    theirs = _outcome(lambda: SAME_AS_LOCAL[what](local, local_root))
    assert ours == theirs


def test_documented_differences_from_local(fs):
    # docs/fsspec.md, "Differences from a local filesystem": each row, pinned.
    r = "/audit/diff"
    fs.makedirs(f"{r}/empty", exist_ok=True)
    fs.makedirs(f"{r}/empty2", exist_ok=True)
    fs.makedirs(f"{r}/d/s", exist_ok=True)
    fs.pipe_file(f"{r}/d/a.txt", b"a")
    fs.pipe_file(f"{r}/d/s/c.txt", b"c")
    fs.rm(f"{r}/empty")                                       # local: ValueError
    fs.rm_file(f"{r}/empty2")                                 # local: IsADirectoryError
    assert not fs.exists(f"{r}/empty") and not fs.exists(f"{r}/empty2")
    with pytest.raises(OSError, match="not empty"):
        fs.rm(f"{r}/d")
    with pytest.raises(OSError, match="not empty"):
        fs.rm(f"{r}/d", recursive=True, maxdepth=1)           # local: ignores maxdepth
    assert fs.exists(f"{r}/d/s/c.txt")
    fs.cp(f"{r}/d/a.txt", f"{r}/d/a.txt")                      # local: SameFileError
    fs.mv(f"{r}/d/a.txt", f"{r}/d/a.txt")
    assert fs.cat_file(f"{r}/d/a.txt") == b"a"
    assert fs.cat_file(f"{r}/d/a.txt", start=1, end=0) == b""  # local: ValueError
    assert fs.info(f"{r}/d")["size"] == 0 and fs.info(f"{r}/d")["children"] == 2
    with pytest.raises(ValueError, match="into itself"):       # local: shutil.Error (OSError)
        fs.mv(f"{r}/d", f"{r}/d/s/x")
    fs.touch(f"{r}/new/parent/t")                              # local: FileNotFoundError
    assert fs.isdir(f"{r}/new/parent")
    with pytest.raises(FileNotFoundError):
        fs.du(f"{r}/nope")                                     # local: 0
    fs.mv(f"{r}/new/parent/t", f"{r}/made/")                   # local: renamed to a file "made"
    assert fs.isfile(f"{r}/made/t")


# -- compressed and unclosed writers ---------------------------------------------------
@pytest.mark.parametrize("comp", ["gzip", "bz2", "zstd"])
def test_compressed_utf16_text_keeps_its_bom(fs, comp):
    # fs.open(..., "wt", compression=) wraps a compressor in our writer, which said
    # seekable() == False: the BOM was dropped (a local .gz keeps it).
    with fs.open(f"/audit/c16.{comp}", "wt", compression=comp, encoding="utf-16") as f:
        f.write("hé\n")
    with fs.open(f"/audit/c16.{comp}", "rt", compression=comp, encoding="utf-16") as f:
        assert f.read() == "hé\n"


@pytest.mark.parametrize("comp", ["zip", "bz2", "gzip", "lzma", "xz", "zstd"])
def test_text_through_every_compression(fs, url, comp):
    # Claiming seekable() for a compressor that cannot tell() (zip) made io.TextIOWrapper
    # fail to build: fs.open(p, "wt", compression="zip") raised UnsupportedOperation.
    for name, opener in ((f"/audit/tc/a.{comp}", lambda p: fs.open(p, "wt", compression=comp)),
                         (f"/audit/tc/b.{comp}",
                          lambda p: fsspec.open(url + p, "wt", compression=comp))):
        with opener(name) as f:
            f.write("línea 1\nlínea 2\n")
        with fs.open(name, "rt", compression=comp) as f:
            assert f.read() == "línea 1\nlínea 2\n"


def test_a_writer_collected_unclosed_says_so(fs, url):
    # fsspec.open(...).open() hands back the compressor; closing it leaves the file under
    # it open (fsspec's OpenFile must be closed too). CPython would commit a local file
    # when it is collected; dfs discards it -- and now warns, as for an unclosed file.
    import gc
    import warnings

    of = fsspec.open(f"{url}/audit/dropped.gz", "wb", compression="gzip")
    f = of.open()
    f.write(b"payload")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f.close()
        del f, of
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) and "/audit/dropped.gz" in str(w.message)
               and "discarded" in str(w.message) for w in caught)
    assert not fs.exists("/audit/dropped.gz")

    of = fsspec.open(f"{url}/audit/kept.gz", "wb", compression="gzip")
    f = of.open()
    f.write(b"payload")
    of.close()                                  # closes every layer: published
    assert fs.cat_file("/audit/kept.gz")[:2] == b"\x1f\x8b"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = fs.open("/audit/dropped.txt", "wt")
        t.write("x")
        del t
        gc.collect()
    assert any("/audit/dropped.txt" in str(w.message) for w in caught)
    assert not fs.exists("/audit/dropped.txt")


# -- dask (many partitions) and duckdb (globs) on the same tree ------------------------
def test_dask_many_partitions_then_duckdb_globs(fs, url):
    import dask
    import dask.dataframe as dd
    import duckdb
    import numpy as np

    n = 48_000
    df = pd.DataFrame({"id": np.arange(n), "k": np.arange(n) % 3, "v": np.arange(n) * 0.5})
    ddf = dd.from_pandas(df, npartitions=24)
    with dask.config.set(scheduler="threads"):
        ddf.to_parquet(f"{url}/audit/dk/pq", write_index=False)
        ddf.to_parquet(f"{url}/audit/dk/hive", partition_on=["k"], write_index=False)
        ddf.to_csv(f"{url}/audit/dk/csv/part-*.csv", index=False)
        ddf.to_parquet(f"{url}/audit/dk/pq", write_index=False, append=True)
        assert len(dd.read_parquet(f"{url}/audit/dk/pq").compute()) == 2 * n
        back = dd.read_parquet(f"{url}/audit/dk/hive", filters=[("k", "==", 1)]).compute()
    assert len(back) == n // 3 and len(fs.ls("/audit/dk/csv")) == 24
    hive = sorted(fs.ls("/audit/dk/hive", detail=False))
    assert hive == [f"/audit/dk/hive/k={k}" for k in range(3)]

    con = duckdb.connect()
    con.register_filesystem(fs)
    try:
        q = con.execute
        d = f"{url}/audit/dk"
        assert q(f"SELECT count(*) FROM read_parquet('{d}/pq/*.parquet')").fetchall() == [(2 * n,)]
        assert q(f"SELECT k, count(*) FROM read_parquet('{d}/hive/*/*.parquet', "
                 "hive_partitioning=true) GROUP BY k ORDER BY k").fetchall() == [
                     (k, n // 3) for k in range(3)]
        assert q(f"SELECT count(*) FROM read_parquet('{d}/hive/**/*.parquet')").fetchall() == [(n,)]
        total = q(f"SELECT sum(id) FROM read_csv('{d}/csv/part-*.csv')").fetchall()
        assert total == [(df.id.sum(),)]
        names = [r[0] for r in q(f"SELECT file FROM glob('{url}/audit/dk/csv/*.csv')").fetchall()]
        assert len(names) == 24 and all(x.startswith(f"{url}/audit/dk/csv/part-") for x in names)
        with pytest.raises(duckdb.Error, match="No files found"):
            q(f"SELECT * FROM read_parquet('{url}/audit/dk/nothing/*.parquet')").fetchall()
    finally:
        con.close()


# -- cat_ranges ------------------------------------------------------------------------
def test_cat_ranges_asks_the_namenode_once_per_file(fs, monkeypatch):
    data = os.urandom(2_500_000)
    fs.pipe_file("/audit/ranges.bin", data)
    fs.pipe_file("/audit/ranges2.bin", b"0123456789")
    calls: list[str] = []
    real = fs.client.nn.call

    def counting(method, request=None, **kw):
        calls.append(method)
        return real(method, request, **kw)

    monkeypatch.setattr(fs.client.nn, "call", counting)
    starts = [0, 1_000_000, -100, 2_400_000, 5, 0, 3]
    ends = [10, 2_100_000, None, 2_600_000, 3, 4, -3]
    paths = ["/audit/ranges.bin"] * 5 + ["/audit/ranges2.bin"] * 2
    got = fs.cat_ranges(paths, starts, ends)
    assert got == [data[0:10], data[1_000_000:2_100_000], data[-100:], data[2_400_000:], b"",
                   b"0123", b"3456"]
    assert calls.count("GetBlockLocations") == 2                   # was one per range: 7
    calls.clear()
    got = fs.cat_ranges(["/audit/nope", "/audit/nope", "/audit/ranges2.bin"], 0, 2)
    assert isinstance(got[0], FileNotFoundError) and isinstance(got[1], FileNotFoundError)
    assert got[2] == b"01" and calls.count("GetBlockLocations") == 2
    with pytest.raises(FileNotFoundError):
        fs.cat_ranges(["/audit/nope"], [0], [1], on_error="raise")


def test_os_errors_carry_errno_and_filename(fs):
    # e.errno was None on every dfs OSError: code written against local files
    # (`if e.errno == errno.ENOENT`) misread them.
    import errno
    fs.pipe_file("/audit/errno/f", b"x")
    cases = [
        (lambda: fs.info("/audit/errno/nope"), errno.ENOENT, "/audit/errno/nope"),
        (lambda: fs.open("/audit/errno/f", "xb"), errno.EEXIST, "/audit/errno/f"),
        (lambda: fs.cat_file("/audit/errno"), errno.EISDIR, "/audit/errno"),
        (lambda: fs.info("/audit/errno/f/x"), errno.ENOTDIR, None),
        (lambda: fs.rmdir("/audit/errno"), errno.ENOTEMPTY, "/audit/errno"),
    ]
    for call, code, name in cases:
        with pytest.raises(OSError) as info:
            call()
        e = info.value
        assert e.errno == code and e.strerror == os.strerror(code), (e, e.errno)
        assert name is None or e.filename == name
        assert str(e).endswith(os.strerror(code))            # the message is unchanged


# -- fsspec's caching layers and open_files ---------------------------------------------
def test_caching_layers_and_open_files(fs, url, tmp_path):
    data = os.urandom(2_300_000)
    fs.pipe_file("/audit/cache/a.bin", data)
    for proto in ("simplecache", "filecache", "blockcache"):
        opts = {proto: {"cache_storage": str(tmp_path / proto)}}
        with fsspec.open(f"{proto}::{url}/audit/cache/a.bin", "rb", **opts) as f:
            f.seek(1_500_000)
            assert f.read(1000) == data[1_500_000:1_501_000], proto
        with fsspec.open(f"{proto}::{url}/audit/cache/a.bin", "rb", **opts) as f:
            assert f.read() == data, proto
    with fsspec.open(f"simplecache::{url}/audit/cache/w.txt", "wt",
                     simplecache={"cache_storage": str(tmp_path / "w")}) as f:
        f.write("through the cache\n")
    assert fs.cat_file("/audit/cache/w.txt") == b"through the cache\n"

    files = fsspec.open_files(f"{url}/audit/nf/part-*.csv.gz", "wt", num=3, compression="infer",
                              name_function=lambda i: f"{i:04d}")
    assert [o.path for o in files] == [f"/audit/nf/part-{i:04d}.csv.gz" for i in range(3)]
    for i, o in enumerate(files):
        with o as f:
            f.write(f"row{i}\n")
    back = fsspec.open_files(f"{url}/audit/nf/part-*.csv.gz", "rt", compression="infer")
    assert [o.path for o in back] == [o.path for o in files]
    assert [o.open().read() for o in back] == ["row0\n", "row1\n", "row2\n"]


def test_put_get_trees_with_empty_directories_like_memory_filesystem(fs, tmp_path):
    # fsspec's abstract suite has no empty directories in its trees.
    from fsspec.implementations.memory import MemoryFileSystem
    src = tmp_path / "src"
    (src / "empty").mkdir(parents=True)
    (src / "sub").mkdir()
    (src / "sub" / "a").write_bytes(b"a")
    (src / "b").write_bytes(b"b")

    def local_tree(root):
        return sorted(os.path.relpath(p, root) + ("/" if os.path.isdir(p) else "")
                      for d, ds, fs_ in os.walk(root)
                      for p in (os.path.join(d, x) for x in ds + fs_))

    results = []
    mem = MemoryFileSystem(skip_instance_cache=True)
    mem.store, mem.pseudo_dirs = {}, [""]
    for f, r in ((fs, "/audit/putget"), (mem, "/putget")):
        f.makedirs(f"{r}/dst", exist_ok=True)
        f.put(str(src), f"{r}/new", recursive=True)
        f.put(f"{src}/", f"{r}/dst", recursive=True)
        f.put(str(src), f"{r}/dst", recursive=True)
        out = tmp_path / f"out-{type(f).__name__}"
        f.get(f"{r}/new", str(out / "g1"), recursive=True)
        (out / "g2").mkdir()
        f.get(f"{r}/new/", str(out / "g2"), recursive=True)
        f.get(f"{r}/new", str(out / "g2"), recursive=True)
        results.append((_tree(f, r), local_tree(out)))
    assert results[0] == results[1]
    assert "/dst/empty/" in results[0][0] and "g2/new/empty/" in results[0][1]


# -- reading like a local file -----------------------------------------------------------
def test_seek_tell_read_and_newlines_like_a_local_file(fs, tmp_path):
    from fsspec.caching import caches
    data = bytes(range(256)) * 9000 + b"a\r\nb\rc\nd"         # 2.2 MB: three blocks
    fs.pipe_file("/audit/rd.bin", data)
    (tmp_path / "rd.bin").write_bytes(data)

    def script(f):
        return [f.seek(1_000_000), f.tell(), f.read(300_000), f.tell(), f.seek(-5, 2), f.read(),
                f.read(), f.seek(10, 1), f.read(5), f.tell(), f.seek(0, 1), f.seek(5), f.read(0),
                f.readline()[:10], f.tell(), f.seekable(), f.readable(), f.writable()]

    with fs.open("/audit/rd.bin", "rb") as f, open(tmp_path / "rd.bin", "rb") as g:
        assert script(f) == script(g)
        with pytest.raises(ValueError):          # FileIO: OSError(EINVAL); BytesIO: ValueError
            f.seek(-1)
    for ct in sorted(c for c in caches if c not in (None, "parts")):
        with fs.open("/audit/rd.bin", "rb", cache_type=ct, block_size=300_000) as f, \
                open(tmp_path / "rd.bin", "rb") as g:
            assert script(f) == script(g), ct
    for nl in (None, "", "\n", "\r\n", "\r"):
        with fs.open("/audit/rd.bin", "rt", encoding="latin-1", newline=nl) as f, \
                open(tmp_path / "rd.bin", encoding="latin-1", newline=nl) as g:
            assert f.readlines()[-4:] == g.readlines()[-4:], nl
        with fs.open("/audit/nl.txt", "wt", newline=nl) as f, \
                open(tmp_path / "nl.txt", "w", newline=nl) as g:
            f.write("x\ny\r\nz\r")
            g.write("x\ny\r\nz\r")
        assert fs.cat_file("/audit/nl.txt") == (tmp_path / "nl.txt").read_bytes(), nl


@pytest.mark.parametrize("mode,comp", [("wb", None), ("wt", None), ("wb", "gzip")])
def test_fsspec_open_left_by_an_exception_publishes_nothing(fs, url, mode, comp):
    # fsspec.core.OpenFile.__exit__ closes its files whatever happened, and a close
    # publishes: the half-written file used to appear, complete, at its path.
    path = f"/audit/raised-{mode}-{comp}"
    with pytest.raises(RuntimeError):
        with fsspec.open(url + path, mode, compression=comp) as f:
            f.write(b"half" if "b" in mode else "half")
            raise RuntimeError("the job failed")
    assert not fs.exists(path)
    with fsspec.open(url + path, mode, compression=comp) as f:   # and without one, it does
        f.write(b"whole" if "b" in mode else "whole")
    with fsspec.open(url + path, "rb", compression=comp) as f:
        assert f.read() == b"whole"


def test_mv_and_transactions_like_local_filesystem(fs, tmp_path):
    from fsspec.implementations.local import LocalFileSystem
    local = LocalFileSystem()
    seen = {}
    for name, f, r in (("local", local, str(tmp_path)), ("dfs", fs, "/audit/mvtx")):
        for d in ("1/src", "1/dst", "2", "3/src/sub"):
            f.makedirs(f"{r}/{d}", exist_ok=True)
        # a directory moved onto an existing non-empty one goes into it (it raised
        # "Directory not empty": the namenode checked emptiness before overwrite)
        f.pipe_file(f"{r}/1/src/a", b"a")
        f.pipe_file(f"{r}/1/dst/other", b"o")
        f.mv(f"{r}/1/src", f"{r}/1/dst", recursive=True)
        # a file still open when the transaction ends is committed with what it buffered
        # (it was published empty, then "discarded" when collected)
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            with f.transaction:
                w = f.open(f"{r}/2/x", "wb")
                w.write(b"0123456789")
            del w
            gc.collect()
        assert not [w for w in got if issubclass(w.category, ResourceWarning)], [str(w) for w in got]
        # maxdepth does not lose what lies deeper (fsspec's generic mv copied to
        # maxdepth, then removed the whole source)
        f.pipe_file(f"{r}/3/src/a", b"a")
        f.pipe_file(f"{r}/3/src/sub/b", b"b")
        f.mv(f"{r}/3/src", f"{r}/3/dst", recursive=True, maxdepth=1)
        seen[name] = ({p[len(r):]: f.cat_file(p) for p in f.find(r)})
    assert seen["dfs"] == seen["local"] == {"/1/dst/other": b"o", "/1/dst/src/a": b"a", "/2/x": b"0123456789",
                                           "/3/dst/a": b"a", "/3/dst/sub/b": b"b"}


def test_a_closed_client_leaves_no_lease_thread_behind(nn):
    # Each client that had written kept its lease renewer ~20 s after its last writer
    # closed, and close() did not end it: a process making a client per task piled up
    # thousands of threads. (Each client's own renewer is looked at: other tests'
    # clients may have one lingering.)
    from dfs.client import DfsClient

    def renewing(cl):
        t = cl._lease_thread
        return t is not None and t.is_alive()
    clients = []
    for i in range(20):
        cl = DfsClient(nn)
        cl.write_bytes(f"/audit/lease{i % 4}", b"x" * 100, overwrite=True)
        cl.close()
        clients.append(cl)
    deadline = time.monotonic() + 2
    while any(map(renewing, clients)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(renewing, clients))
    kept = DfsClient(nn)
    w = kept.create("/audit/lease-open", overwrite=True)
    w.open()   # the file is created (a lease taken) now, not at its first block or close
    w.write(b"y")
    time.sleep(0.3)
    assert renewing(kept)       # a writer still open keeps its lease renewed
    w.close()
    kept.close()


def test_one_lease_renewer_serves_a_stream_of_writes_then_ends(nn):
    # A renewer was started and ended for every file written (150 us of CPU a file):
    # it now lingers LEASE_LINGER after the last writer closed, and is then gone
    # without client.close().
    import threading

    from dfs.client import DfsClient
    from dfs.client.client import LEASE_LINGER

    cl = DfsClient(nn)
    started = []
    real_start = threading.Thread.start

    def counting_start(t):
        if t.name == "dfs-lease":
            started.append(t)
        return real_start(t)

    threading.Thread.start = counting_start
    try:
        for i in range(10):
            cl.write_bytes(f"/audit/linger{i}", b"z" * 10, overwrite=True)
    finally:
        threading.Thread.start = real_start
    assert len(started) == 1
    deadline = time.monotonic() + LEASE_LINGER + 2
    while started[0].is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not started[0].is_alive()
    cl.write_bytes("/audit/linger-again", b"z", overwrite=True)   # a new one when needed
    assert cl._lease_thread is not None and cl._lease_thread is not started[0]
    cl.close()


def test_a_forked_childs_lease_renewer_ends_after_its_own_writers(nn):
    # The parent's open writers were copied into the child's lease set: once the child
    # wrote a file, its renewer never ended (a RenewLease every lease/3, for good).
    import os

    from dfs.client import DfsClient
    from dfs.client.client import LEASE_LINGER

    c = DfsClient(nn)
    w = c.create("/audit/fork-parent", overwrite=True)
    w.open()
    w.write(b"p")
    pid = os.fork()
    if pid == 0:   # the child: no assertion may raise out of here
        ok = False
        try:
            c.write_bytes("/audit/fork-child", b"child", overwrite=True)
            deadline = time.monotonic() + LEASE_LINGER + 5
            while c._lease_thread is not None and c._lease_thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            ok = not c._leases and not (c._lease_thread is not None and c._lease_thread.is_alive())
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    w.close()
    c.close()
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_writer_used_after_its_client_is_closed_says_so(nn):
    # "DatanodeError: cannot schedule new futures after shutdown" blamed a datanode.
    from dfs import errors
    from dfs.client import DfsClient

    c = DfsClient(nn)
    w = c.create("/audit/after-close", overwrite=True)
    w.open()
    w.write(b"x")
    c.close()
    with pytest.raises(errors.DfsError, match="its client was closed") as e:
        w.close()
    assert not isinstance(e.value, errors.DatanodeError)
    assert not DfsClient(nn).exists("/audit/after-close")
