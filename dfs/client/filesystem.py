"""dfs as an fsspec filesystem: ``dfs://HOST:PORT/path`` for pandas, pyarrow, dask, duckdb.

``DFSFileSystem`` is registered through the ``fsspec.specs`` entry point, so
``fsspec.open("dfs://nn:8020/data.csv")`` works with nothing else imported.

Design notes (details in docs/fsspec.md):

* An instance holds only its constructor arguments. The ``DfsClient`` (gRPC
  channel, thread pool) is created lazily, once per process: after a fork
  (Dask process workers) or an unpickle the child builds its own.
* Every namespace call is one namenode RPC: ``info`` is one ``GetFileInfo``,
  ``rm(recursive=True)`` one ``Delete``, ``mv`` one atomic ``Rename``;
  ``cat_file`` is one ``GetBlockLocations`` plus the datanode reads.
* ``DFSFile`` reads whole chunks (the unit the datanodes store and the
  codec decodes), keeps them in a small LRU so a Parquet footer and the row
  groups after it never fetch the same chunk twice, reads ahead on
  sequential access and fetches blocks in parallel. Writes stream into the
  block pipeline as the buffer fills; the file appears, complete, on close
  (or at ``commit()`` inside an fsspec transaction).
"""

from __future__ import annotations

import os
import re
import stat as _stat
import threading
import time
from bisect import bisect_right
from collections import Counter, OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

import xxhash
from fsspec.callbacks import DEFAULT_CALLBACK
from fsspec.spec import AbstractBufferedFile, AbstractFileSystem, make_instance
from fsspec.utils import isfilelike, stringify_path

from dfs import errors
from dfs.client.client import DfsClient
from dfs.config import DEFAULT_NAMENODE, default_namenode
from dfs.model import FileStatus
from dfs.rpc import convert
from dfs.tuning import tune_malloc

__all__ = ["DFSFileSystem", "DFSFile"]

#: Read/write buffer of a file object when the caller passes ``block_size=None``
#: (every consumer does). Reads are served at chunk granularity regardless.
DEFAULT_BUFFER_SIZE = 4 << 20
#: Decoded chunks kept per open file (LRU).
DEFAULT_CACHE_BYTES = 64 << 20
#: How far ahead of a sequential reader chunks are fetched in the background.
DEFAULT_READAHEAD = 8 << 20
#: At most this many chunks travel in one datanode request.
RUN_CHUNKS = 16

_SLASHES = re.compile("/{2,}")


def _has_magic(s: str) -> bool:
    return any(c in s for c in "*?[")


# -- a per-process pool for parallel block fetches ------------------------------
_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0


def _fetch_pool() -> ThreadPoolExecutor:
    global _pool, _pool_pid
    pid = os.getpid()
    if _pool is None or _pool_pid != pid:
        with _pool_lock:
            if _pool is None or _pool_pid != pid:
                _pool = ThreadPoolExecutor(8, thread_name_prefix="dfs-fetch")
                _pool_pid = pid
    return _pool


def _normalize_namenode(namenode: str) -> str:
    nn = str(namenode)
    if nn.startswith("dfs://"):
        nn = nn[6:].split("/", 1)[0]
    nn = nn.strip("/")
    if not nn:
        return default_namenode()
    if ":" not in nn.rpartition("]")[2]:
        nn = f"{nn}:{DEFAULT_NAMENODE.rpartition(':')[2]}"
    return nn


class DFSFileSystem(AbstractFileSystem):
    """fsspec filesystem for a dfs cluster.

    ``DFSFileSystem(namenode="HOST:PORT")``; without it the namenode comes from a
    ``dfs://HOST:PORT/...`` URL (``fsspec.open``/``url_to_fs``), fsspec's config
    (``FSSPEC_DFS_NAMENODE``, ``~/.config/fsspec/``), ``$DFS_NAMENODE``, then
    ``127.0.0.1:8020``. ``host=``/``port=`` are accepted as an alternative.
    """

    protocol = ("dfs",)
    root_marker = "/"
    blocksize = DEFAULT_BUFFER_SIZE

    def __init__(self, namenode: str | None = None, *, host: str | None = None, port: int | None = None,
                 user: str | None = None, retry_seconds: float | None = None, threads: int | None = None,
                 **storage_options):
        super().__init__(**storage_options)
        if namenode is None and host:
            namenode = f"{host}:{port}" if port else host
        self.namenode = _normalize_namenode(namenode) if namenode else default_namenode()
        self._client_args = dict(user=user, retry_seconds=retry_seconds, threads=threads)
        self._client_obj: DfsClient | None = None
        self._client_pid = 0
        self._client_lock = threading.Lock()

    # -- instance plumbing ----------------------------------------------------
    def __reduce__(self):
        # Ship the resolved namenode: a worker's $DFS_NAMENODE must not change the cluster.
        opts = {k: v for k, v in self.storage_options.items() if k not in ("host", "port")}
        opts["namenode"] = self.namenode
        return make_instance, (type(self), (), opts)

    @property
    def client(self) -> DfsClient:
        """This process's DfsClient (created on first use, rebuilt after a fork)."""
        pid = os.getpid()
        if self._client_pid != pid:
            # A lock held by another thread at fork time would never be released here.
            self._client_lock = threading.Lock()
            self._client_obj = None
            self._client_pid = pid
        c = self._client_obj
        if c is None:
            with self._client_lock:
                c = self._client_obj
                if c is None:
                    tune_malloc()   # keep freed chunk buffers for reuse (dfs/tuning.py)
                    c = self._client_obj = DfsClient(self.namenode, **self._client_args)
        return c

    @property
    def fsid(self) -> str:
        return f"dfs_{self.namenode}"

    # -- URLs -------------------------------------------------------------------
    @classmethod
    def _strip_protocol(cls, path):
        if isinstance(path, (list, tuple)):
            return [cls._strip_protocol(p) for p in path]
        path = stringify_path(path)
        if path.startswith("dfs://"):
            rest = path[6:]
            i = rest.find("/")
            path = rest[i:] if i >= 0 else "/"
        if not path.startswith("/"):
            path = "/" + path
        path = _SLASHES.sub("/", path)
        return path.rstrip("/") or "/"

    @staticmethod
    def _get_kwargs_from_urls(path):
        if isinstance(path, str) and path.startswith("dfs://"):
            netloc = path[6:].split("/", 1)[0]
            if netloc:
                return {"namenode": netloc}
        return {}

    def unstrip_protocol(self, name: str) -> str:
        if name.startswith("dfs://"):
            return name
        return f"dfs://{self.namenode}{self._strip_protocol(name)}"

    # -- metadata ---------------------------------------------------------------
    def _info_from_status(self, st: FileStatus) -> dict:
        is_dir = st.type == "directory"
        out = {
            "name": st.path,
            "size": 0 if is_dir else st.size,
            "type": st.type,
            "mtime": st.mtime,
            "created": st.ctime or st.mtime,
            "mode": (_stat.S_IFDIR if is_dir else _stat.S_IFREG) | st.mode,
            "permission": f"{st.mode:04o}",
            "owner": st.owner,
            "group": st.group,
            "replication": st.replication,
            "block_size": st.block_size,
            "file_id": st.inode_id,
            "islink": False,
            "nlink": 1,
        }
        if is_dir:
            out["children"] = st.children
            out["checksum"] = None
        else:
            # A file's bytes never change once it is closed: every create, overwrite
            # included, makes a new file id. (file id, size) therefore identifies the
            # content exactly; it changes whenever the content is replaced.
            out["checksum"] = f"dfs1-{st.inode_id:x}-{st.size:x}"
        return out

    def info(self, path, **kwargs) -> dict:
        return self._info_from_status(self.client.stat(self._strip_protocol(path)))

    def ls(self, path, detail=True, **kwargs):
        entries = [self._info_from_status(st) for st in self.client.listdir(self._strip_protocol(path))]
        return entries if detail else [e["name"] for e in entries]

    def exists(self, path, **kwargs) -> bool:
        try:
            self.client.stat(self._strip_protocol(path))
            return True
        except (FileNotFoundError, NotADirectoryError):
            return False

    def ukey(self, path) -> str:
        info = self.info(path)
        if info["type"] == "directory":
            return f"dfs1-dir-{info['file_id']:x}-{info['mtime']!r}"
        return info["checksum"]

    def checksum(self, path) -> int:
        return xxhash.xxh3_64_intdigest(f"{self.namenode}|{self.ukey(path)}".encode())

    def created(self, path) -> datetime:
        return datetime.fromtimestamp(self.info(path)["created"], tz=UTC)

    def modified(self, path) -> datetime:
        return datetime.fromtimestamp(self.info(path)["mtime"], tz=UTC)

    def chmod(self, path, mode: int) -> None:
        self.client.chmod(self._strip_protocol(path), mode & 0o7777)

    def chown(self, path, owner: str = "", group: str = "") -> None:
        self.client.chown(self._strip_protocol(path), owner, group)

    def set_replication(self, path, replication: int) -> None:
        self.client.set_replication(self._strip_protocol(path), replication)

    def du(self, path, total=True, maxdepth=None, withdirs=False, **kwargs):
        if total and maxdepth is None and not withdirs and isinstance(path, str) and not _has_magic(path):
            p = self._strip_protocol(path)
            try:
                return self.client.content_summary(p)["length"]   # one RPC for a whole tree
            except NotADirectoryError:
                pass
        return super().du(path, total=total, maxdepth=maxdepth, withdirs=withdirs, **kwargs)

    # -- directories ------------------------------------------------------------
    def mkdir(self, path, create_parents=True, **kwargs):
        p = self._strip_protocol(path)
        mode = kwargs.get("mode", 0o755)
        try:
            self.client.mkdir(p, parents=False, mode=mode)
        except FileNotFoundError:
            if not create_parents:
                raise
            self.client.mkdir(p, parents=True, mode=mode)

    def makedirs(self, path, exist_ok=False):
        p = self._strip_protocol(path)
        if not exist_ok:
            return self.mkdir(p, create_parents=True)
        try:
            self.client.mkdir(p, parents=True)    # succeeds on an existing directory
        except FileExistsError:
            if not self.isdir(p):
                raise

    def rmdir(self, path):
        p = self._strip_protocol(path)
        if self.client.stat(p).type != "directory":
            raise errors.DfsNotADirectoryError(path=p)
        self.client.delete(p, recursive=False)

    def rm_file(self, path):
        self.client.delete(self._strip_protocol(path), recursive=False)

    _rm = rm_file

    def rm(self, path, recursive=False, maxdepth=None):
        if isinstance(path, str) and not _has_magic(path) and maxdepth is None:
            p = self._strip_protocol(path)
            if p != "/":
                self.client.delete(p, recursive=recursive)   # one RPC, recursive included
                return
            if not recursive:
                raise errors.DfsIsADirectoryError("cannot remove the root directory", p)
            for child in self.client.listdir("/"):
                self.client.delete(child.path, recursive=True)
            return
        paths = self.expand_path(path, recursive=recursive, maxdepth=maxdepth)
        if recursive and maxdepth is None:
            done: list[str] = []
            for p in paths:        # sorted: a directory comes before its contents
                if any(p.startswith(d.rstrip("/") + "/") for d in done):
                    continue
                try:
                    self.client.delete(p, recursive=True)
                except FileNotFoundError:
                    continue
                done.append(p)
            return
        for p in reversed(paths):
            self.client.delete(p, recursive=False)

    # -- moving and copying -----------------------------------------------------
    def mv(self, path1, path2, recursive=False, maxdepth=None, **kwargs):
        single = isinstance(path1, str) and isinstance(path2, str) and not _has_magic(path1)
        if not single or maxdepth is not None:
            return super().mv(path1, path2, recursive=recursive, maxdepth=maxdepth, **kwargs)
        src, dst = self._strip_protocol(path1), self._strip_protocol(path2)
        if src == dst:
            return
        if path2.endswith("/"):
            self.makedirs(dst, exist_ok=True)
            dst = self._join(dst, src)
        try:
            self.client.rename(src, dst, overwrite=False)   # atomic, one RPC
        except (FileExistsError, IsADirectoryError):
            if self.client.stat(dst).type == "directory":
                self.client.rename(src, self._join(dst, src), overwrite=False)   # like mv: into the dir
            else:
                self.client.rename(src, dst, overwrite=True)

    @staticmethod
    def _join(directory: str, src: str) -> str:
        return directory.rstrip("/") + "/" + src.rstrip("/").rpartition("/")[2]

    def cp_file(self, path1, path2, **kwargs):
        src, dst = self._strip_protocol(path1), self._strip_protocol(path2)
        try:
            reader = self.client.open_read(src)
        except IsADirectoryError:
            self.makedirs(dst, exist_ok=True)
            return
        w = self.client.create(dst, overwrite=True, replication=reader.status.replication,
                               block_size=reader.status.block_size, create_parent=True)
        try:
            for piece in reader.iter_range():
                w.write(piece)
        except BaseException:
            w.abort()
            raise
        w.close()

    # -- whole-file data --------------------------------------------------------
    def cat_file(self, path, start=None, end=None, **kwargs) -> bytes:
        reader = self.client.open_read(self._strip_protocol(path))   # one namenode RPC
        size = reader.size
        start = 0 if start is None else (max(0, size + start) if start < 0 else start)
        end = size if end is None else (max(0, size + end) if end < 0 else min(end, size))
        if start >= end:
            return b""
        return _read_parallel(reader, start, end)

    def pipe_file(self, path, value, mode="overwrite", **kwargs):
        if mode not in ("overwrite", "create"):
            raise ValueError(f"mode must be 'overwrite' or 'create', not {mode!r}")
        self.client.write_bytes(self._strip_protocol(path), value, overwrite=mode == "overwrite",
                                create_parent=True, **_write_opts(kwargs))

    def put_file(self, lpath, rpath, callback=DEFAULT_CALLBACK, mode="overwrite", **kwargs):
        rpath = self._strip_protocol(rpath)
        if os.path.isdir(lpath):
            self.makedirs(rpath, exist_ok=True)
            return
        with open(lpath, "rb") as f:
            callback.set_size(os.fstat(f.fileno()).st_size)
            self.client.upload(f, rpath, progress=callback.relative_update, overwrite=mode != "create",
                               create_parent=True, **_write_opts(kwargs))

    def get_file(self, rpath, lpath, callback=DEFAULT_CALLBACK, outfile=None, **kwargs):
        if outfile is None and isfilelike(lpath):
            outfile = lpath
        try:
            reader = self.client.open_read(self._strip_protocol(rpath))
        except IsADirectoryError:
            if outfile is None:
                os.makedirs(lpath, exist_ok=True)
            return
        callback.set_size(reader.size)
        own = outfile is None
        if own:
            parent = os.path.dirname(os.fspath(lpath))
            if parent:
                os.makedirs(parent, exist_ok=True)
            outfile = open(lpath, "wb")
        try:
            for piece in reader.iter_range():
                outfile.write(piece)
                callback.relative_update(len(piece))
        except BaseException:
            if own:
                outfile.close()
                os.unlink(lpath)
            raise
        if own:
            outfile.close()

    def touch(self, path, truncate=True, **kwargs):
        p = self._strip_protocol(path)
        if not truncate:
            try:
                self.client.set_times(p, time.time())
                return
            except FileNotFoundError:
                pass
        self.client.create(p, overwrite=truncate, create_parent=True, **_write_opts(kwargs)).close()

    # -- files --------------------------------------------------------------------
    def _open(self, path, mode="rb", block_size=None, autocommit=True, cache_options=None, **kwargs):
        return DFSFile(self, path, mode, block_size=block_size, autocommit=autocommit,
                       cache_options=cache_options, **kwargs)

    # -- locality -------------------------------------------------------------
    def get_block_locations(self, path, start: int = 0, length: int | None = None) -> list[dict]:
        """Blocks overlapping [start, start+length), as ``dfs locate --json`` prints them (SPEC §4).

        Each: ``{offset, length, block_id, hosts, names, racks}``, replicas nearest first.
        """
        locs = self.client.block_locations(self._strip_protocol(path), start, length)
        return [b.to_json() for b in locs]

    def get_block_locations_many(self, paths, start: int = 0,
                                 length: int | None = None) -> dict[str, list[dict]]:
        """``{path: get_block_locations(path)}`` for many files, fetched concurrently.

        ``paths`` may contain globs and directories (expanded to the files under them).
        """
        if isinstance(paths, str):
            paths = [paths]
        pool = _fetch_pool()
        futures: dict[str, Future] = {}
        for p in paths:
            sp = self._strip_protocol(p)
            if _has_magic(sp):
                for f, info in self.glob(sp, detail=True).items():
                    if info["type"] == "file":
                        futures[f] = pool.submit(self.get_block_locations, f, start, length)
            else:
                futures[sp] = pool.submit(self.get_block_locations, sp, start, length)
        out: dict[str, list[dict]] = {}
        for path, fut in futures.items():
            try:
                out[path] = fut.result()
            except IsADirectoryError:     # a directory: every file below it
                out.update(self.get_block_locations_many(self.find(path), start, length))
        return out


def _write_opts(kwargs: dict) -> dict:
    out = {}
    if kwargs.get("replication"):
        out["replication"] = int(kwargs["replication"])
    if kwargs.get("dfs_block_size"):
        out["block_size"] = int(kwargs["dfs_block_size"])
    if kwargs.get("permissions") is not None:
        out["mode"] = int(kwargs["permissions"])
    return out


def _block_ranges(reader, start: int, end: int) -> list[tuple[int, int]]:
    out = []
    for b in reader.blocks:
        lo, hi = max(start, b.offset), min(end, b.offset + b.block.length)
        if lo < hi:
            out.append((lo, hi))
    return out


def _read_parallel(reader, start: int, end: int) -> bytes:
    """[start, end) of a file, fetching its blocks concurrently."""
    ranges = _block_ranges(reader, start, end)
    if len(ranges) <= 1:
        return reader.read_range(start, end - start)
    pool = _fetch_pool()
    futures = [pool.submit(reader.read_range, lo, hi - lo) for lo, hi in ranges[1:]]
    first = reader.read_range(ranges[0][0], ranges[0][1] - ranges[0][0])
    return b"".join([first, *(f.result() for f in futures)])


class _ChunkCache:
    """Decoded chunks of one open file: fetched whole, kept LRU, read ahead.

    Units are the file's chunks (the piece a datanode stores and the codec
    decodes), keyed by their offset in the file. A miss fetches the missing
    units in runs (contiguous, within one block, at most RUN_CHUNKS), the
    first run on the calling thread and the others concurrently; a unit that
    is already being fetched (by read-ahead) is waited for, never fetched twice.
    A reader opened on a window of the file (``window=``) is widened to the
    whole file the first time a read leaves it.
    """

    def __init__(self, reader, reopen, *, max_bytes: int, readahead: int):
        self.reader = reader
        self._reopen = reopen
        self.size = reader.size
        self.max_bytes = max_bytes
        self.readahead = readahead
        self.lock = threading.Lock()
        self.cache: OrderedDict[int, bytes | memoryview] = OrderedDict()
        self.cached_bytes = 0
        self.inflight: dict[int, Future] = {}
        self.last_end = -1
        self.fetch_counts: Counter[int] = Counter()   # unit offset -> times fetched
        self.requests = 0                               # datanode requests made
        self._build_units()

    def _build_units(self) -> None:
        cs = self.reader.chunk_size
        starts, ends, blocks = [], [], []
        for b in self.reader.blocks:
            off, blen = b.offset, b.block.length
            for lo in range(0, blen, cs):
                starts.append(off + lo)
                ends.append(off + min(blen, lo + cs))
                blocks.append(off)
        self.starts, self.ends, self.block_of = starts, ends, blocks
        self.covered = self.reader.covered

    def _units(self, start: int, end: int) -> list[tuple[int, int, int]]:
        """(start, end, block offset) of the units overlapping [start, end) (lock held)."""
        lo, hi = self.covered
        if start < lo or end > hi:
            self.reader = self._reopen()
            self._build_units()
        first = max(bisect_right(self.starts, start) - 1, 0)
        last = bisect_right(self.starts, end - 1) - 1
        return [(self.starts[i], self.ends[i], self.block_of[i]) for i in range(first, last + 1)]

    # -- fetching ---------------------------------------------------------------
    def _runs(self, units) -> list[list[tuple[int, int, int]]]:
        """Units neither cached nor in flight, grouped into fetchable runs (lock held)."""
        runs: list[list[tuple[int, int, int]]] = []
        for u in units:
            if u[0] in self.cache or u[0] in self.inflight:
                continue
            if runs and runs[-1][-1][1] == u[0] and runs[-1][-1][2] == u[2] and len(runs[-1]) < RUN_CHUNKS:
                runs[-1].append(u)
            else:
                runs.append([u])
        return runs

    def _start(self, run, pool) -> Future:
        fut: Future = Future()
        for u in run:
            self.inflight[u[0]] = fut
        if pool is not None:
            pool.submit(self._fetch_run, self.reader, run, fut)
        return fut

    def _fetch_run(self, reader, run, fut: Future) -> None:
        try:
            lo, hi = run[0][0], run[-1][1]
            # A chunk-aligned range within one block comes back as one piece per chunk.
            got = list(reader.iter_range(lo, hi - lo, prefetch=False))
            if [len(g) for g in got] == [e - s for s, e, _ in run]:
                pieces = {u[0]: g for u, g in zip(run, got, strict=True)}
            else:
                data = memoryview(b"".join(got))
                pieces = {s: data[s - lo:e - lo] for s, e, _ in run}
        except BaseException as e:
            with self.lock:
                for u in run:
                    self.inflight.pop(u[0], None)
            fut.set_exception(e)
            return
        with self.lock:
            self.requests += 1
            for s, piece in pieces.items():
                self.fetch_counts[s] += 1
                self.inflight.pop(s, None)
                self.cache[s] = piece
                self.cached_bytes += len(piece)
            while self.cached_bytes > self.max_bytes and len(self.cache) > 1:
                _, old = self.cache.popitem(last=False)
                self.cached_bytes -= len(old)
        fut.set_result(pieces)

    # -- reading ------------------------------------------------------------------
    def read(self, start: int, end: int) -> bytes:
        end = min(end, self.size)
        if start >= end:
            return b""
        pool = _fetch_pool()
        with self.lock:
            units = self._units(start, end)
            have: dict[int, bytes | memoryview] = {}
            for s, _, _ in units:          # pinned now: eviction cannot take them from us
                piece = self.cache.get(s)
                if piece is not None:
                    self.cache.move_to_end(s)
                    have[s] = piece
            waiting = {u[0]: self.inflight[u[0]] for u in units if u[0] in self.inflight}
            runs = self._runs(units)
            started = [(self.reader, run, self._start(run, pool if i else None))
                       for i, run in enumerate(runs)]
            for _, run, fut in started:
                waiting.update(dict.fromkeys((u[0] for u in run), fut))
            if start == self.last_end and self.readahead:      # sequential: fetch ahead
                ahead_end = min(self.size, end + self.readahead, self.covered[1])
                if ahead_end > end:
                    ahead = [u for u in self._units(end, ahead_end) if u[0] > units[-1][0]]
                    for run in self._runs(ahead):
                        self._start(run, pool)
            self.last_end = end
        if started:
            self._fetch_run(*started[0])       # the first run on this thread, the rest in parallel
        pieces: list = []
        for s, e, _ in units:
            piece = have.get(s)
            if piece is None:
                piece = waiting[s].result()[s]
            a, b = max(start, s) - s, min(end, e) - s
            pieces.append(piece if (a, b) == (0, len(piece)) else memoryview(piece)[a:b])
        if len(pieces) == 1:
            return pieces[0] if isinstance(pieces[0], bytes) else bytes(pieces[0])
        return b"".join(pieces)

    def close(self) -> None:
        with self.lock:
            self.cache.clear()
            self.cached_bytes = 0


class DFSFile(AbstractBufferedFile):
    """A file of a dfs cluster opened through fsspec (modes rb, wb, xb, ab).

    Extra keyword arguments: ``replication``, ``dfs_block_size``, ``permissions``
    (writing); ``prefer_hosts`` (reading: try replicas on these hosts first) and
    ``window=(offset, length)`` (reading: load only the locations of the blocks in
    that range, widened to the whole file if a read leaves it; for tasks that
    read one split of a large file).
    ``cache_options``: ``max_bytes`` (LRU size) and ``readahead`` (bytes).
    """

    def __init__(self, fs: DFSFileSystem, path, mode="rb", block_size=None, autocommit=True,
                 cache_type=None, cache_options=None, size=None, replication=0, dfs_block_size=0,
                 permissions=None, prefer_hosts=None, window=None, **kwargs):
        path = fs._strip_protocol(path)
        self._writer = None
        self._chunks: _ChunkCache | None = None
        self._write_opts = _write_opts(dict(replication=replication, dfs_block_size=dfs_block_size,
                                            permissions=permissions))
        block_size = block_size or DEFAULT_BUFFER_SIZE
        opts = dict(cache_options or {})
        if mode == "rb":
            def reopen(start=0, length=None):
                r = fs.client.open_read(path, start=start, length=length)
                if prefer_hosts:
                    _prefer(r, prefer_hosts)
                return r

            # One RPC: status, block locations (all, or those of `window`), the file's key.
            reader = reopen(*window) if window else reopen()
            self._chunks = _ChunkCache(reader, reopen,
                                       max_bytes=int(opts.pop("max_bytes", DEFAULT_CACHE_BYTES)),
                                       readahead=int(opts.pop("readahead", DEFAULT_READAHEAD)))
            self._details = fs._info_from_status(convert.status_from_pb(reader.status))
            super().__init__(fs, path, mode, block_size, autocommit, cache_type=cache_type or "none",
                             cache_options=opts if cache_type else None, size=reader.size, **kwargs)
            return
        if mode == "xb" and fs.exists(path):
            raise errors.DfsFileExistsError(path=path)   # early; the namenode enforces it again, atomically
        self._append_from = None
        if mode == "ab":
            try:
                self._append_from = fs.client.open_read(path)
            except FileNotFoundError:
                pass
        super().__init__(fs, path, mode, block_size, autocommit, cache_type=cache_type or "none",
                         cache_options=None, **kwargs)
        if self._append_from is not None:
            self.loc = self._append_from.size

    # -- reading ----------------------------------------------------------------
    def _fetch_range(self, start, end):
        return self._chunks.read(start, end)

    @property
    def chunk_stats(self) -> dict:
        """Datanode requests made and how often each chunk was fetched (for tests and tuning)."""
        c = self._chunks
        return {"requests": c.requests, "chunks_fetched": sum(c.fetch_counts.values()),
                "max_fetches_per_chunk": max(c.fetch_counts.values(), default=0),
                "chunks": len(c.starts)}

    # -- writing ----------------------------------------------------------------
    def _initiate_upload(self):
        if self._append_from is not None:
            st = self._append_from.status
            opts = {"replication": st.replication, "block_size": st.block_size, "mode": st.mode,
                    **self._write_opts}
        else:
            opts = self._write_opts
        self._writer = self.fs.client.create(self.path, overwrite=self.mode != "xb", create_parent=True,
                                             **opts)
        if self._append_from is not None:
            # No append on the storage layer: copy the old bytes into the new version,
            # which replaces the file atomically when it is committed.
            try:
                for piece in self._append_from.iter_range():
                    self._writer.write(piece)
            except BaseException:
                self._writer.abort()
                raise

    def _upload_chunk(self, final=False):
        data = self.buffer.getvalue()
        if data:
            try:
                self._writer.write(data)
            except BaseException:
                self._writer.abort()
                raise
        if final and self.autocommit:
            self.commit()
        return True

    def commit(self):
        """Complete the file: it appears, whole, at its path (atomically replacing any old one)."""
        if self._writer is None:   # never flushed (a transaction closed before close())
            self._initiate_upload()
        self._writer.close()

    def discard(self):
        """Give the file up: nothing appears at its path."""
        if self._writer is not None:
            self._writer.abort()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and self.mode != "rb" and not self.closed:
            # An exception inside `with fs.open(..., "wb")`: never publish a partial file.
            self.discard()
            self.closed = True
            return
        self.close()

    def close(self):
        if self.closed:
            return
        try:
            super().close()
        finally:
            if self._chunks is not None:
                self._chunks.close()


def _prefer(reader, hosts) -> None:
    """Order each block's replicas so those on ``hosts`` are tried first."""
    hosts = set(hosts)
    for b in reader.blocks:
        locs = list(b.locations)
        ordered = sorted(locs, key=lambda d: d.address.rpartition(":")[0] not in hosts)
        if ordered != locs:
            del b.locations[:]
            b.locations.extend(ordered)
