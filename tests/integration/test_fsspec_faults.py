"""DFSFileSystem under real failures: half-written files, namenode outages and
restarts, two writers of one path, datanodes SIGKILLed under pandas, rm under a
reader or a writer. Real `dfs` processes (dfs/testing/cluster.py)."""

from __future__ import annotations

import errno
import gc
import io
import os
import signal
import threading
import time
import warnings

import fsspec
import numpy as np
import pandas as pd
import pytest

from dfs import errors
from dfs.client.filesystem import DFSFileSystem
from dfs.testing.faults import MiB


def _fs(cluster, **kw) -> DFSFileSystem:
    """A filesystem with its own DfsClient (its own lease-holder name)."""
    return DFSFileSystem(namenode=cluster.namenode_address, skip_instance_cache=True, **kw)


def _other_client_can_create(cluster, path: str) -> None:
    """Another client creates ``path`` at once: no lease of the discarded writer lingers."""
    with _fs(cluster).open(path, "wb") as f:
        f.write(b"after")
    assert _fs(cluster).cat_file(path) == b"after"


# -- 1. a writer that fails is discarded -------------------------------------------
def test_exception_in_with_discards_the_file(shared_cluster):
    fs = _fs(shared_cluster)
    data = os.urandom(3 * MiB)          # past the buffer: blocks already in the pipeline
    with pytest.raises(RuntimeError):
        with fs.open("/disc/with.bin", "wb", block_size=512 << 10) as f:
            f.write(data)
            assert f._writer.bytes_written >= 2 * MiB
            raise RuntimeError("boom")
    assert f.closed and not fs.exists("/disc/with.bin")
    _other_client_can_create(shared_cluster, "/disc/with.bin")
    # an overwrite that fails keeps the old version
    fs.pipe_file("/disc/old.bin", b"old")
    with pytest.raises(RuntimeError):
        with fs.open("/disc/old.bin", "wb") as f:
            f.write(data)
            raise RuntimeError("boom")
    assert fs.cat_file("/disc/old.bin") == b"old"
    # text mode too (fsspec's TextIOWrapper would flush and commit)
    with pytest.raises(RuntimeError):
        with fs.open("/disc/t.txt", "wt") as t:
            t.write("line\n" * 1000)
            raise RuntimeError("boom")
    assert not fs.exists("/disc/t.txt")
    with fs.open("/disc/t.txt", "wt", newline="\r\n") as t:
        t.write("a\nb\n")
    assert fs.cat_file("/disc/t.txt") == b"a\r\nb\r\n"


def test_unclosed_writer_collected_is_discarded(shared_cluster):
    fs = _fs(shared_cluster)

    def write_and_drop(path: str, mode: str, data):
        f = fs.open(path, mode, block_size=512 << 10)
        f.write(data)           # raises before close() in real code; here: just dropped

    write_and_drop("/disc/gc.bin", "wb", os.urandom(3 * MiB))
    write_and_drop("/disc/gc-small.bin", "wb", b"small")
    write_and_drop("/disc/gc.txt", "wt", "text")
    gc.collect()
    for p in ("/disc/gc.bin", "/disc/gc-small.bin", "/disc/gc.txt"):
        assert not fs.exists(p), p
        _other_client_can_create(shared_cluster, p)
    # fsspec's discard() is the same: nothing appears
    f = fs.open("/disc/d.bin", "wb", autocommit=False)
    f.write(b"x" * MiB)
    f.close()
    f.discard()
    assert not fs.exists("/disc/d.bin")


# -- 3. two writers of one path ------------------------------------------------------
def test_create_of_a_path_another_client_writes_fails_at_open(shared_cluster):
    fs1, fs2 = _fs(shared_cluster), _fs(shared_cluster)
    f = fs1.open("/lease/a.bin", "wb")
    f.write(b"one" * 1000)
    with pytest.raises(errors.AlreadyBeingCreatedError) as e:
        fs2.open("/lease/a.bin", "wb")
    assert isinstance(e.value, FileExistsError) and isinstance(e.value, errors.LeaseError)
    assert "/lease/a.bin" in str(e.value) and "being created by another client" in str(e.value)
    assert errors.errno_for(e.value) == errno.EBUSY          # what the FUSE mount answers
    with pytest.raises(FileExistsError):
        fs2.pipe_file("/lease/a.bin", b"two")
    # the CLI: one line, exit 1
    src = os.path.join(shared_cluster.base, "two")
    with open(src, "wb") as out:
        out.write(b"two")
    r = shared_cluster.cli("put", "-f", src, "/lease/a.bin")
    lines = r.stderr.decode().strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert lines[0].startswith("dfs: put: /lease/a.bin: file is being created by another client")
    f.close()
    assert fs2.cat_file("/lease/a.bin") == b"one" * 1000
    # closed: an overwrite by anyone works again
    with fs2.open("/lease/a.bin", "wb") as g:
        g.write(b"two")
    assert fs1.cat_file("/lease/a.bin") == b"two"
    assert shared_cluster.cli("put", "-f", src, "/lease/a.bin").returncode == 0
    # xb on an existing file fails at open, before anything is written
    with pytest.raises(FileExistsError):
        fs1.open("/lease/a.bin", "xb")


# -- 6. rm of a file being written --------------------------------------------------
def test_rm_of_a_file_being_written_fails_its_writer(shared_cluster):
    fs, other = _fs(shared_cluster), _fs(shared_cluster)
    for size in (3 * MiB, 100):        # streaming blocks, and a small file sent at close
        f = fs.open("/rmw/f.bin", "wb", block_size=512 << 10)
        f.write(os.urandom(size))
        other.rm("/rmw/f.bin")
        with pytest.raises(FileNotFoundError, match="/rmw/f.bin: file is not open for writing"):
            f.write(os.urandom(2 * MiB))
            f.close()
        assert not fs.exists("/rmw/f.bin")
    # an overwrite under way: rm takes the old version and cuts the writer off
    fs.pipe_file("/rmw/g.bin", b"old")
    f = fs.open("/rmw/g.bin", "wb")
    f.write(b"new")
    other.rm("/rmw/g.bin")
    with pytest.raises(FileNotFoundError):
        f.close()
    assert not fs.exists("/rmw/g.bin")



def _write_until_it_fails(f, chunk: bytes, tries: int = 40) -> OSError:
    for _ in range(tries):
        try:
            f.write(chunk)
        except OSError as e:
            return e
    pytest.fail(f"{tries} writes after the file was removed all succeeded")


def _resource_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def test_a_failed_write_is_raised_again_by_later_writes_and_close(shared_cluster):
    # close() after a failed write (pandas, gzip and `finally:` all close) flushed what
    # was left into the aborted writer: ValueError("write to closed file"), not an
    # OSError, hid the real error; the handle stayed open and warned when collected.
    fs, other = _fs(shared_cluster), _fs(shared_cluster)
    chunk = os.urandom(MiB)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = fs.open("/wfail/a.bin", "wb")
        f.write(chunk * 8)
        f.flush()
        other.rm("/wfail/a.bin")
        first = _write_until_it_fails(f, chunk)
        assert isinstance(first, FileNotFoundError), repr(first)
        assert "/wfail/a.bin: file is not open for writing" in str(first)
        with pytest.raises(type(first)) as again:          # as io: the same failure again
            f.write(chunk)
        assert str(again.value) == str(first)
        with pytest.raises(type(first)) as at_close:       # close() says it once, and closes
            f.close()
        assert str(at_close.value) == str(first) and f.closed
        f.close()
        with pytest.raises(ValueError):                   # closed: as any closed file
            f.write(b"x")
        # never closed after its failure: collected quietly (it said what went wrong)
        g = fs.open("/wfail/b.bin", "wb")
        g.write(chunk * 8)
        g.flush()
        other.rm("/wfail/b.bin")
        _write_until_it_fails(g, chunk)
        # an interrupted write: the interrupt goes on through close(); a later write is an
        # OSError (the file was discarded), not the interrupt again
        h = fs.open("/wfail/c.bin", "wb")
        h._writer.write = lambda data: (_ for _ in ()).throw(KeyboardInterrupt())
        with pytest.raises(KeyboardInterrupt):
            try:
                h.write(chunk * 5)                        # past the buffer: sent
            finally:
                with pytest.raises(InterruptedError):
                    h.write(chunk)
                h.close()
        assert h.closed
        del f, g, h
        gc.collect()
    assert _resource_warnings(caught) == []
    for p in ("/wfail/a.bin", "/wfail/b.bin", "/wfail/c.bin"):
        assert not fs.exists(p)
        _other_client_can_create(shared_cluster, p)


def test_a_failed_compressed_write_raises_its_oserror_from_fsspec_open(shared_cluster):
    # fsspec's OpenFile closes the compressor, which writes its trailer into the file
    # whose writer had failed: ValueError("write to closed file") replaced the error.
    other = _fs(shared_cluster)
    url = f"dfs://{shared_cluster.namenode_address}/wfail/g.gz"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(OSError) as e:
            with fsspec.open(url, "wb", compression="gzip") as g:
                g.write(os.urandom(8 * MiB))
                g.flush()
                other.rm("/wfail/g.gz")
                for _ in range(40):
                    g.write(os.urandom(MiB))
        del g
        gc.collect()
    assert isinstance(e.value, FileNotFoundError), repr(e.value)
    assert "/wfail/g.gz: file is not open for writing" in str(e.value)
    assert _resource_warnings(caught) == []
    assert not other.exists("/wfail/g.gz")

def test_rmdir_of_a_directory_holding_only_a_file_being_written_refuses(shared_cluster):
    """The unfinished file is a child (as in HDFS): a non-recursive removal of its
    directory is "Directory not empty" and the writer goes on to close normally."""
    fs, other = _fs(shared_cluster), _fs(shared_cluster)
    data = os.urandom(3 * MiB)
    f = fs.open("/rmd/d/f.bin", "wb", block_size=512 << 10)
    f.write(data[:2 * MiB])                            # blocks already on datanodes
    assert other.ls("/rmd/d") == []                    # invisible until closed
    for remove in (other.rmdir, other.rm):
        with pytest.raises(OSError, match="Directory not empty") as e:
            remove("/rmd/d")
        assert e.value.errno == errno.ENOTEMPTY
    f.write(data[2 * MiB:])
    f.close()
    assert other.cat_file("/rmd/d/f.bin") == data
    other.rm("/rmd", recursive=True)
    assert not other.exists("/rmd")


# -- 2. a namenode outage is an error, not "no such file" ---------------------------
def test_namenode_outage_raises_from_every_lookup(make_cluster):
    c = make_cluster()
    fs = _fs(c, retry_seconds=1)
    fs.pipe_file("/tree/a/x.csv", b"1")
    fs.pipe_file("/tree/b.csv", b"2")
    assert fs.find("/tree") == ["/tree/a/x.csv", "/tree/b.csv"]
    c.kill(c.namenode)
    calls = {
        "exists": lambda: fs.exists("/tree/b.csv"),
        "isdir": lambda: fs.isdir("/tree"),
        "isfile": lambda: fs.isfile("/tree/b.csv"),
        "walk": lambda: list(fs.walk("/tree")),
        "find": lambda: fs.find("/tree"),
        "glob": lambda: fs.glob("/tree/**/*.csv"),
        "ls": lambda: fs.ls("/tree"),
        "du": lambda: fs.du("/tree"),
        "expand_path": lambda: fs.expand_path("/tree", recursive=True),
    }
    for name, call in calls.items():
        t0 = time.monotonic()
        with pytest.raises(ConnectionError, match=f"cannot reach namenode {c.namenode_address}"):
            call()
        assert time.monotonic() - t0 < 15, name
    c.restart(c.namenode)
    c.wait_for_datanodes(3)
    assert fs.isdir("/tree") and fs.isfile("/tree/b.csv") and not fs.exists("/tree/nope")
    assert fs.glob("/tree/**/*.csv") == ["/tree/a/x.csv", "/tree/b.csv"]


# -- 4. reads right after a namenode restart ----------------------------------------
def test_read_right_after_namenode_sigkill_and_restart(make_cluster):
    c = make_cluster()
    fs = _fs(c, retry_seconds=30)
    data = os.urandom(5 * MiB + 12345)                 # 6 blocks
    fs.pipe_file("/nr/f.bin", data)
    reader = fs.open("/nr/f.bin", "rb", cache_options={"readahead": 0, "max_bytes": MiB})
    assert reader.read(MiB) == data[:MiB]
    c.kill(c.namenode)
    c.restart(c.namenode)
    # at once: the datanodes have not re-registered, let alone reported their blocks
    assert _fs(c, retry_seconds=30).cat_file("/nr/f.bin") == data
    with _fs(c, retry_seconds=30).open("/nr/f.bin", "rb") as f:
        assert f.read() == data
    assert reader.read() == data[MiB:]
    reader.close()


def test_cli_read_waits_for_datanodes_that_re_register_late_after_a_namenode_restart(make_cluster, tmp_path):
    """The namenode restarts while every datanode is stopped (SIGSTOP) for ~10 s, longer
    than the client's own retry_seconds (8 s by default): its SafeModeError replies say
    how long datanodes may still take (up to its dead-node timeout), and the reader
    waits that long instead of failing at 8 s."""
    c = make_cluster(dead_timeout=30.0)
    data = os.urandom(3 * MiB + 777)
    src = tmp_path / "f.bin"
    src.write_bytes(data)
    assert c.cli("put", str(src), "/f.bin").returncode == 0
    for d in c.datanodes:
        c.pause(d)
    try:
        c.kill(c.namenode)
        c.restart(c.namenode)
        timer = threading.Timer(10.0, lambda: [c.resume(d) for d in c.datanodes])
        timer.start()
        t0 = time.monotonic()
        r = c.cli("cat", "/f.bin", timeout=90)
        took = time.monotonic() - t0
    finally:
        timer.cancel()
        for d in c.datanodes:
            c.resume(d)
    assert r.returncode == 0, r.stderr
    assert r.stdout == data and took >= 8, took
    # an unreachable namenode is still given up on after retry_seconds
    c.kill(c.namenode)
    t0 = time.monotonic()
    r = c.cli("cat", "/f.bin", env={"DFS_RETRY_SECONDS": "2"})
    assert r.returncode == 1 and b"cannot reach namenode" in r.stderr and time.monotonic() - t0 < 15


# -- 5. pandas while a datanode is SIGKILLed -----------------------------------------
class _Tripwire(io.RawIOBase):
    """A file object that runs ``action`` once ``at`` bytes have been read through it."""

    def __init__(self, f, at: int, action):
        self.f, self.at, self.action, self.done = f, at, action, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, pos, whence=0):
        return self.f.seek(pos, whence)

    def tell(self):
        return self.f.tell()

    def read(self, n=-1):
        out = self.f.read(n)
        self.done += len(out)
        if self.action is not None and self.done >= self.at:
            action, self.action = self.action, None
            action()
        return out

    def readinto(self, b):
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


def _kill_next_server(c, f, killed: list, pos: int | None = None):
    """SIGKILL the datanode the reader will ask first for the block after ``pos``
    (default: its position), a block it has not read yet."""
    reader = f._chunks.reader
    pos = f.tell() if pos is None else pos
    later = [b for b in reader.blocks if b.offset > pos] or reader.blocks[-1:]
    first = later[0].locations[0].address
    node = next(d for d in c.datanodes if d.address == first)
    c.kill(node, signal.SIGKILL)
    killed.append(node)


def test_pandas_reads_complete_while_a_datanode_is_sigkilled(make_cluster):
    c = make_cluster()
    fs = _fs(c, retry_seconds=20)
    url = f"dfs://{c.namenode_address}"
    n = 120_000
    frame = pd.DataFrame({"id": range(n), "x": [i * 0.5 for i in range(n)],
                          "s": [f"row-{i:07d}-{'y' * (i % 13)}" for i in range(n)]})
    frame.to_csv(f"{url}/pd/t.csv", index=False, storage_options={"retry_seconds": 20})
    frame.to_parquet(f"{url}/pd/t.parquet", row_group_size=20_000, compression=None,
                     storage_options={"retry_seconds": 20})
    csv_bytes = fs.cat_file("/pd/t.csv")
    assert fs.size("/pd/t.csv") > 3 * MiB and fs.size("/pd/t.parquet") > 2 * MiB   # several blocks

    killed: list = []
    opts = {"readahead": 0, "max_bytes": MiB}
    with fs.open("/pd/t.csv", "rb", cache_options=opts) as f:
        back = pd.read_csv(_Tripwire(f, MiB // 2, lambda: _kill_next_server(c, f, killed)))
        assert killed and not killed[0].alive
        assert killed[0].address in f._chunks.reader._dead    # it was asked, and failed over
    pd.testing.assert_frame_equal(back, frame)
    with fs.open("/pd/t.csv", "rb", cache_options=opts) as f:   # the raw bytes too
        assert f.read() == csv_bytes

    c.restart(killed[0])
    c.wait_for_datanodes(3)
    killed.clear()
    with fs.open("/pd/t.parquet", "rb", cache_options=opts) as f:
        # after the footer (the file's end), before the row groups: kill block 1's first server
        back = pd.read_parquet(_Tripwire(f, 1, lambda: _kill_next_server(c, f, killed, pos=0)))
        assert killed and not killed[0].alive
        assert killed[0].address in f._chunks.reader._dead
    pd.testing.assert_frame_equal(back, frame)


class _WriteTripwire(io.RawIOBase):
    """A sink that runs ``action`` once ``at`` bytes have been written through it."""

    def __init__(self, f, at: int, action):
        self.f, self.at, self.action, self.done = f, at, action, 0

    def writable(self):
        return True

    def tell(self):
        return self.f.tell()

    def write(self, b):
        n = self.f.write(b)
        self.done += n
        if self.action is not None and self.done >= self.at:
            action, self.action = self.action, None
            action()
        return n


def test_pandas_to_parquet_completes_while_a_datanode_is_sigkilled(make_cluster):
    c = make_cluster()
    fs = _fs(c, retry_seconds=20)
    n = 150_000
    frame = pd.DataFrame({"id": range(n), "s": [f"v{i * 7919 % 100_003:06d}" for i in range(n)]})
    with fs.open("/pdw/t.parquet", "wb", block_size=256 << 10) as f:
        # 1.5 MiB in: blocks are streaming through pipelines of all three datanodes
        frame.to_parquet(_WriteTripwire(f, 3 * MiB // 2, lambda: c.kill(c.datanodes[0], signal.SIGKILL)),
                         row_group_size=25_000, compression=None)
        assert not c.datanodes[0].alive and f._writer.bytes_written >= 3 * MiB // 2
    assert fs.size("/pdw/t.parquet") > 3 * MiB
    pd.testing.assert_frame_equal(pd.read_parquet(f"dfs://{c.namenode_address}/pdw/t.parquet"), frame)


# -- 5. rm under a reader --------------------------------------------------------------
def test_rm_while_another_handle_reads_never_gives_wrong_bytes(make_cluster):
    c = make_cluster()
    fs = _fs(c, retry_seconds=5)
    data = os.urandom(4 * MiB)
    fs.pipe_file("/rr/f.bin", data)
    blocks = [b["block_id"] for b in fs.get_block_locations("/rr/f.bin")]
    outcomes = []
    for finish_first in (True, False):
        f = fs.open("/rr/f.bin", "rb", cache_options={"readahead": 0, "max_bytes": MiB})
        assert f.read(MiB) == data[:MiB]
        fs.rm("/rr/f.bin")
        fs.pipe_file("/rr/f.bin", os.urandom(len(data)))      # new bytes at the same path
        if not finish_first:
            # the old replicas leave the datanodes
            old = list(blocks)
            c.wait_for(lambda old=old: not any(c.replica_files(b) for b in old), 30, "replicas to be deleted")
        try:
            rest = f.read()
        except (OSError, errors.DfsError) as e:
            msg = str(e)
            assert "/rr/f.bin" in msg and ("no readable replica" in msg or "No such file" in msg
                                           or "changed while being read" in msg), msg
            outcomes.append("error")
        else:
            assert rest == data[MiB:]                          # never the new file's bytes
            outcomes.append("read")
        f.close()
        data = fs.cat_file("/rr/f.bin")
        blocks = [b["block_id"] for b in fs.get_block_locations("/rr/f.bin")]
    assert outcomes[1] == "error"                             # nothing left to read from


def test_empty_file_written_through_open_costs_two_rpcs(shared_cluster):
    fs = _fs(shared_cluster)
    calls: list[str] = []
    real = fs.client.nn.call
    fs.client.nn.call = lambda method, request=None, **kw: calls.append(method) or real(method, request, **kw)
    with fs.open("/empty/e.bin", "wb"):
        assert calls == ["Create"]                 # created at open (lease taken)
    assert calls == ["Create", "Complete"]         # its unused first block goes with Complete
    fs.client.nn.call = real
    assert fs.cat_file("/empty/e.bin") == b"" and fs.info("/empty/e.bin")["size"] == 0
    assert shared_cluster.fsck("/empty")["status"] == "HEALTHY"


def test_compressed_writes_commit_when_the_compressor_closes(shared_cluster):
    # GzipFile(fileobj=...) does not close the DFSFile under it: closing the compressor
    # must commit it (it is not left to the collector, which now discards).
    import gzip
    fs = _fs(shared_cluster)
    with fs.open("/gz/a.gz", "wb", compression="gzip") as g:
        g.write(b"hello" * 100_000)
    assert gzip.decompress(fs.cat_file("/gz/a.gz")) == b"hello" * 100_000
    with fs.open("/gz/t.txt.gz", "wt", compression="infer") as t:
        t.write("text\n" * 1000)
    with fs.open("/gz/t.txt.gz", "rt", compression="infer") as t:
        assert t.read() == "text\n" * 1000
    g = fs.open("/gz/b.gz", "wb", compression="gzip")
    g.write(b"x")
    g.close()
    assert gzip.decompress(fs.cat_file("/gz/b.gz")) == b"x"
    # an exception inside `with`, or a compressed writer dropped unclosed: discarded
    with pytest.raises(RuntimeError):
        with fs.open("/gz/c.gz", "wb", compression="gzip") as g:
            g.write(os.urandom(3 * MiB))
            raise RuntimeError("boom")
    g = fs.open("/gz/d.gz", "wb", compression="gzip")
    g.write(b"dropped")
    del g
    gc.collect()
    assert not fs.exists("/gz/c.gz") and not fs.exists("/gz/d.gz")
    _other_client_can_create(shared_cluster, "/gz/d.gz")
    with pytest.raises(RuntimeError):
        with fs.open("/gz/e.txt.gz", "wt", compression="infer") as t:
            t.write("text\n" * 1000)
            raise RuntimeError("boom")
    assert not fs.exists("/gz/e.txt.gz")


def test_io_failures_are_oserrors_with_an_errno(make_cluster):
    """Code written for any fsspec backend catches OSError (HDFS's BlockMissingException
    is an IOException): a read with no replica left, a write with no datanode."""
    c = make_cluster()
    fs = _fs(c, retry_seconds=1)
    fs.pipe_file("/io/f", b"x" * 1000)
    for dn in c.datanodes:
        c.kill(dn)
    t0 = time.monotonic()
    with pytest.raises(OSError, match="no readable replica") as e:
        fs.cat_file("/io/f")
    assert isinstance(e.value, errors.BlockMissingError) and e.value.errno == errno.EIO
    assert time.monotonic() - t0 < 15
    with pytest.raises(OSError) as e:
        fs.pipe_file("/io/g", b"y")
    assert e.value.errno in (errno.EIO, errno.ENOSPC)
    assert not fs.exists("/io/g")
    for err, want in ((errors.SafeModeError(), errno.EROFS), (errors.NoSpaceError(), errno.ENOSPC),
                      (errors.LeaseError(), errno.EBUSY), (errors.StaleVersionError(), errno.ESTALE),
                      (errors.ChecksumError(), errno.EIO), (errors.DecryptionError(), errno.EIO)):
        assert isinstance(err, OSError) and err.errno == want == errors.errno_for(err)



def test_pandas_writes_with_every_datanode_dead_raise_the_real_oserror(make_cluster):
    # pandas closes its handle whatever happened: that close raised ValueError("write to
    # closed file") over the NoDatanodesError of the write before it.
    c = make_cluster(dead_timeout=600)   # still live to the namenode: each write tries them
    for dn in c.datanodes:
        c.kill(dn)
    fs = _fs(c, retry_seconds=1)
    df = pd.DataFrame({"x": np.random.default_rng(1).random(1_500_000)})   # ~30 MB of CSV
    url = f"dfs://{c.namenode_address}/pd"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name, write in (("df.csv", lambda u: df.to_csv(u, index=False)),
                            ("df.parquet", lambda u: df.to_parquet(u, compression=None))):
            with pytest.raises(OSError, match="no datanode left for the block") as e:
                write(f"{url}/{name}")
            assert isinstance(e.value, errors.NoDatanodesError), repr(e.value)
            assert e.value.errno == errno.EIO
            assert e.value.__context__ is not e.value     # not raised again by the close
            assert not fs.exists(f"/pd/{name}")
        gc.collect()
    assert _resource_warnings(caught) == []

def test_a_reader_of_a_replaced_file_never_reads_on_in_the_new_one(make_cluster):
    # Its next read after the old blocks were deleted failed once ("file changed"), and
    # every read after that returned the NEW file's bytes (the reader had adopted its
    # block list), with the old size.
    c = make_cluster()
    fs = _fs(c)
    fs.pipe_file("/rep/f", b"".join(bytes([65 + i]) * MiB for i in range(8)), block_size=MiB)
    f = fs.open("/rep/f", "rb", cache_type="none")
    assert f.read(4) == b"AAAA"
    fs.pipe_file("/rep/f", b"".join(bytes([97 + i]) * MiB for i in range(8)), block_size=MiB)
    results = []
    deadline = time.monotonic() + 30
    while results.count("changed") < 3 and time.monotonic() < deadline:
        k = 1 + len(results) % 7
        f.seek(k * MiB)
        try:
            got = f.read(4)
            assert got == bytes([65 + k]) * 4, (k, got)     # the file it opened, or nothing
            results.append(got)
        except FileNotFoundError as e:
            assert "file changed while being read" in str(e)
            results.append("changed")
        time.sleep(0.1)
    # Each read gave the opened file's bytes or "changed" (the old blocks go replica by
    # replica, on each datanode's heartbeat: a block not yet deleted still reads right).
    assert results.count("changed") >= 3, results
