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
* ``DFSFile`` (fsspec_file.py) reads whole chunks, keeps them in a small
  LRU, reads ahead on sequential access and fetches blocks in parallel;
  writes stream into the block pipeline and the file appears, complete, on
  close.
"""

from __future__ import annotations

import functools
import io
import os
import posixpath
import re
import socket
import stat as _stat
import threading
import time
from concurrent.futures import Future
from datetime import UTC, datetime

import xxhash
from fsspec.callbacks import DEFAULT_CALLBACK
from fsspec.spec import AbstractFileSystem, make_instance
from fsspec.utils import isfilelike, stringify_path

from dfs import config, errors
from dfs.client.client import DfsClient
from dfs.client.fsspec_file import (
    DEFAULT_BUFFER_SIZE,
    DFSFile,
    _fetch_pool,
    _read_parallel,
    _warn_discarded,
    _write_opts,
)
from dfs.client.ranges import read_ranges, resolve
from dfs.config import DEFAULT_NAMENODE, default_namenode, format_address, parse_namenode
from dfs.model import FileStatus
from dfs.tuning import tune_malloc

__all__ = ["DFSFileSystem", "DFSFile"]

_SLASHES = re.compile("/{2,}")
# The keyword that carries walk's error handler down to its subdirectories (see walk).
_WALK_ON_ERROR = "_dfs_walk_on_error"


class _TextWriter(io.TextIOWrapper):
    """A text-mode DFSFile being written: an exception in ``with``, or collection while
    unclosed, discards the file instead of publishing what was written so far."""

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and not self.closed:
            self.buffer.__exit__(exc_type, exc, tb)   # discards; the wrapper is then closed
            return None
        return super().__exit__(exc_type, exc, tb)

    def __del__(self):
        try:
            if not self.closed:
                self.buffer._abandon()
                _warn_discarded(self.buffer.path)
        except Exception:   # noqa: BLE001 - nothing to report to from a finalizer
            pass


class _CompressedWriter(io.BufferedIOBase):
    """A compressor (``z``) writing into a DFSFile (``raw``): close() finishes the
    compressed stream and commits the file; an exception in ``with`` or collection
    while unclosed discards it."""

    def __init__(self, z, raw):
        self._z, self._raw = z, raw

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        # As DFSFile's: io.TextIOWrapper then writes a UTF-16/32 BOM and can tell(); only
        # if the compressor can tell() (zip's cannot: the wrapper would fail to build).
        if self.closed:
            return False
        try:
            self._z.tell()
        except (OSError, ValueError, AttributeError):
            return False
        return True

    def write(self, data) -> int:
        return self._z.write(data)

    def flush(self) -> None:
        if not self._z.closed:     # IOBase.close() flushes after the compressor closed
            self._z.flush()

    def tell(self) -> int:
        return self._z.tell()

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._z.close()
        except BaseException:
            self._raw._abandon()
            raise
        finally:
            super().close()
        self._raw.close()

    def _abandon(self) -> None:
        self._raw._abandon()
        try:
            self._z.close()        # its trailer goes nowhere: the file is closed
        except Exception:   # noqa: BLE001
            pass
        super().close()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and not self.closed:
            self._abandon()
            return None
        return super().__exit__(exc_type, exc, tb)

    def __del__(self):
        try:
            if not self.closed:
                self._abandon()
                _warn_discarded(self._raw.path)
        except Exception:   # noqa: BLE001 - nothing to report to from a finalizer
            pass


# A length past the end of any file: the block locations from a start to the file's end.
_TO_END = 1 << 62


def _span(ranges) -> tuple[int, int]:
    """(start, length) of the block locations one reader of a file's ``ranges`` ((start,
    end) as fsspec's cat_ranges takes them) loads in its one GetBlockLocations: from the
    first start to the last end; to the file's end when a range ends there or is counted
    from it, from its beginning when one starts counted from its end."""
    lo, hi = None, 0
    for start, end in ranges:
        start = start or 0
        if start >= 0 and end is not None and 0 <= end <= start:
            continue                                    # empty
        lo = 0 if start < 0 else start if lo is None else min(lo, start)
        hi = _TO_END if end is None or end < 0 else max(hi, end)
    if lo is None:
        return 0, 0
    return lo, max(0, hi - lo)


def _has_magic(s: str) -> bool:
    return any(c in s for c in "*?[")


def _normalize_namenode(namenode: str) -> str:
    nn = str(namenode)
    if nn.startswith("dfs://"):
        nn = nn[6:].split("/", 1)[0]
    nn = nn.strip("/")
    if not nn:
        return default_namenode()
    # A malformed address (a port "abc", 0 or 70000, no host) is a ValueError now, as the
    # CLI's, not "cannot reach namenode" after the client's retries.
    return parse_namenode(nn, default_port=int(DEFAULT_NAMENODE.rpartition(":")[2]))


@functools.lru_cache(maxsize=256)
def _addresses(host: str) -> frozenset:
    try:
        infos = socket.getaddrinfo(host.strip("[]"), None, type=socket.SOCK_STREAM)
        return frozenset(ai[4][0] for ai in infos)
    except (OSError, UnicodeError):
        return frozenset()


def _same_namenode(a: str, b: str) -> bool:
    """``a`` and ``b`` (normalized HOST:PORT) name the same namenode: equal, or the same
    port on hosts that resolve to a common address (localhost vs 127.0.0.1)."""
    if a == b:
        return True
    ha, _, pa = a.rpartition(":")
    hb, _, pb = b.rpartition(":")
    return pa == pb and bool(_addresses(ha) & _addresses(hb))


class _StripProtocol:
    """``_strip_protocol``: on the class (fsspec parses URLs with it) a classmethod; on an
    instance it also refuses a URL that names another namenode, as HDFS's "Wrong FS":
    ``fs.open("dfs://other:8020/x")`` would otherwise read or write /x of fs's own
    cluster (duckdb hands every dfs:// URL to the one filesystem registered)."""

    def __get__(self, obj, cls=None):
        return cls._strip_url if obj is None else obj._strip_own_url


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
            # host= is a host: an IPv6 one needs brackets before a port ("[::1]:8020").
            bare = host.strip("[]")
            if port:
                namenode = format_address(bare, port)
            else:
                namenode = f"[{bare}]" if bare.count(":") > 1 else host
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
    _strip_protocol = _StripProtocol()

    @classmethod
    def _strip_url(cls, path):
        if isinstance(path, (list, tuple)):
            return [cls._strip_url(p) for p in path]
        path = stringify_path(path)
        if path.startswith("dfs://"):
            rest = path[6:]
            i = rest.find("/")
            path = rest[i:] if i >= 0 else "/"
        if not path.startswith("/"):
            path = "/" + path
        path = _SLASHES.sub("/", path)
        if "/." in path:     # "." and ".." components resolved, as local paths and Hadoop's Path
            path = posixpath.normpath(path)
        return path.rstrip("/") or "/"

    def _strip_own_url(self, path):
        if isinstance(path, (list, tuple)):
            return [self._strip_own_url(p) for p in path]
        path = stringify_path(path)
        if path.startswith("dfs://"):
            user, _, netloc = path[6:].split("/", 1)[0].rpartition("@")
            if netloc and not _same_namenode(_normalize_namenode(netloc), self.namenode):
                raise errors.InvalidArgumentError(
                    f"names namenode {_normalize_namenode(netloc)}, but this filesystem is "
                    f"connected to {self.namenode} (use fsspec.url_to_fs(url) or "
                    "DFSFileSystem(namenode=...))", path)
            if user and user != self.client.nn.caller.user:
                # Acting as this filesystem's user under a URL that names another
                # would run the superuser's calls on a URL that says bob.
                raise errors.InvalidArgumentError(
                    f"names user {user}, but this filesystem acts as {self.client.nn.caller.user} "
                    "(use fsspec.url_to_fs(url) or DFSFileSystem(user=...))", path)
        return self._strip_url(path)

    @staticmethod
    def _get_kwargs_from_urls(path):
        """``dfs://[USER@]HOST:PORT/path`` -> namenode (and user) keyword arguments."""
        if isinstance(path, str) and path.startswith("dfs://"):
            user, _, netloc = path[6:].split("/", 1)[0].rpartition("@")
            return {**({"namenode": netloc} if netloc else {}), **({"user": user} if user else {})}
        return {}

    def unstrip_protocol(self, name: str) -> str:
        if name.startswith("dfs://"):
            return name
        user = self._client_args["user"]   # given explicitly: the URL must say so to reopen
        return f"dfs://{user + '@' if user else ''}{self.namenode}{self._strip_protocol(name)}"

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

    # exists/isdir/isfile/walk answer "no" only when the namenode says so: any other
    # failure (an unreachable namenode: ConnectionError) is raised, where fsspec's own
    # versions swallow it and report a missing path or an empty tree.
    _ABSENT = (FileNotFoundError, NotADirectoryError)

    def exists(self, path, **kwargs) -> bool:
        try:
            self.client.stat(self._strip_protocol(path))
            return True
        except self._ABSENT:
            return False

    def isdir(self, path) -> bool:
        try:
            return self.client.stat(self._strip_protocol(path)).type == "directory"
        except self._ABSENT:
            return False

    def isfile(self, path) -> bool:
        try:
            return self.client.stat(self._strip_protocol(path)).type == "file"
        except self._ABSENT:
            return False

    def walk(self, path, maxdepth=None, topdown=True, on_error="omit", **kwargs):
        # fsspec's walk hands every OSError to on_error ("omit": an empty listing); only
        # a path that is not there (or no longer), or one the caller may not read, is
        # omitted here. find and glob walk.
        handle = kwargs.pop(_WALK_ON_ERROR, None)
        if handle is None:
            def handle(e: OSError) -> None:
                if on_error == "raise" or not isinstance(e, (*self._ABSENT, PermissionError)):
                    raise e
                if callable(on_error):
                    on_error(e)
        # fsspec's walk calls itself for each subdirectory without on_error (each
        # would omit an unreadable one silently, whatever the caller asked): the
        # handler rides down in the keywords it does pass on (to ls, which ignores it).
        return super().walk(path, maxdepth=maxdepth, topdown=topdown, on_error=handle,
                            **{_WALK_ON_ERROR: handle}, **kwargs)

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
        # maxdepth is ignored, as LocalFileSystem does: fsspec's own mv copies down to
        # maxdepth and then removes the whole source tree, deeper files included.
        single = isinstance(path1, str) and isinstance(path2, str) and not _has_magic(path1)
        if not single:
            return super().mv(path1, path2, recursive=recursive, **kwargs)
        src, dst = self._strip_protocol(path1), self._strip_protocol(path2)
        if src == dst:
            return
        if path2.endswith("/"):
            self.makedirs(dst, exist_ok=True)
            dst = self._join(dst, src)
        try:
            self.client.rename(src, dst, overwrite=False)   # atomic, one RPC
        except (FileExistsError, IsADirectoryError):
            if self.client.stat(dst).type != "directory":
                self.client.rename(src, dst, overwrite=True)
                return
            inner = self._join(dst, src)     # like mv: into the directory,
            try:
                self.client.rename(src, inner, overwrite=False)
            except FileExistsError:
                # ... replacing a file of that name there with a file (never a directory)
                if "directory" in (self.client.stat(src).type, self.client.stat(inner).type):
                    raise
                self.client.rename(src, inner, overwrite=True)

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
        block_size = config.block_size_of_copy(reader.status.block_size)
        if self._intrans:
            self._write_in_transaction(dst, reader.iter_range(), replication=reader.status.replication,
                                       dfs_block_size=block_size)
            return
        w = self.client.create(dst, overwrite=True, replication=reader.status.replication,
                               block_size=block_size, create_parent=True)
        try:
            for piece in reader.iter_range():
                w.write(piece)
        except BaseException:
            w.abort()
            raise
        w.close()

    # -- whole-file data --------------------------------------------------------
    def cat_file(self, path, start=None, end=None, **kwargs) -> bytes:
        reader = self._open_for(self._strip_protocol(path), start, end)   # one namenode RPC
        return self._cat_reader(reader, start, end)

    def _open_for(self, path: str, start, end):
        """A reader of ``path`` that loads, at first, the block locations of [start, end),
        or from ``start`` on, as far as they are known before the size is (not counted
        from the end): reading there asks nothing more of the namenode."""
        start = start or 0
        if start < 0:
            return self.client.open_read(path)
        if end is not None and end >= 0:
            return self.client.open_read(path, start=start, length=max(0, end - start))
        return self.client.open_read(path, start=start)

    def cat_ranges(self, paths, starts, ends, max_gap=None, on_error="return", **kwargs):
        """fsspec's, with one ``GetBlockLocations`` per distinct file instead of one per
        range, and each chunk fetched once however many ranges it holds (fsspec's
        blockcache, parquet precaching and kerchunk ask for many ranges of a file)."""
        if max_gap is not None or not isinstance(paths, list):
            return super().cat_ranges(paths, starts, ends, max_gap=max_gap, on_error=on_error,
                                      **kwargs)
        starts = starts if isinstance(starts, list) else [starts] * len(paths)
        ends = ends if isinstance(ends, list) else [ends] * len(paths)
        if len(starts) != len(paths) or len(ends) != len(paths):
            raise ValueError("paths, starts and ends must have the same length")
        by_file: dict[str, list[int]] = {}      # path -> indexes of its ranges
        out: list = [None] * len(paths)
        for i, path in enumerate(paths):
            try:
                by_file.setdefault(self._strip_protocol(path), []).append(i)
            except Exception as e:   # noqa: BLE001 - a URL of another namenode: that range's answer
                out[i] = e
        for p, indexes in by_file.items():
            try:
                first, length = _span([(starts[i], ends[i]) for i in indexes])
                reader = self.client.open_read(p, start=first, length=length)
            except Exception as e:   # noqa: BLE001 - the same answer for each range
                for i in indexes:
                    out[i] = e
                continue
            got = read_ranges(reader, [resolve(reader.size, starts[i], ends[i]) for i in indexes])
            for i, data in zip(indexes, got, strict=True):
                out[i] = data
        if on_error != "return":
            for data in out:
                if isinstance(data, Exception):
                    raise data
        return out

    @staticmethod
    def _cat_reader(reader, start, end) -> bytes:
        start, end = resolve(reader.size, start, end)
        if start >= end:
            return b""
        return _read_parallel(reader, start, end)

    def pipe_file(self, path, value, mode="overwrite", **kwargs):
        if mode not in ("overwrite", "create"):
            raise ValueError(f"mode must be 'overwrite' or 'create', not {mode!r}")
        if self._intrans:
            self._write_in_transaction(path, [value], create=mode == "create", **kwargs)
            return
        self.client.write_bytes(self._strip_protocol(path), value, overwrite=mode == "overwrite",
                                create_parent=True, **_write_opts(kwargs))

    def put_file(self, lpath, rpath, callback=DEFAULT_CALLBACK, mode="overwrite", **kwargs):
        rpath = self._strip_protocol(rpath)
        if os.path.isdir(lpath):
            self.makedirs(rpath, exist_ok=True)
            return
        with open(lpath, "rb") as f:
            callback.set_size(os.fstat(f.fileno()).st_size)
            if self._intrans:
                pieces = iter(lambda: f.read(4 << 20), b"")
                self._write_in_transaction(rpath, pieces, create=mode == "create",
                                           progress=callback.relative_update, **kwargs)
                return
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
        if self._intrans:
            self._write_in_transaction(p, [], create=not truncate, **kwargs)
            return
        try:
            self.client.create(p, overwrite=truncate, create_parent=True, **_write_opts(kwargs)).close()
        except FileExistsError:
            if truncate:
                raise
            self.client.set_times(p, time.time())   # made by another client since: touched

    def _write_in_transaction(self, path, pieces, *, create: bool = False, progress=None, **kwargs):
        """Write ``path`` through a file that ``fs.transaction`` commits at its end, or
        drops if it fails: inside a transaction nothing appears before then, whichever
        method wrote it (open, pipe, put, touch, cp), as in fsspec's own backends."""
        with self.open(path, "xb" if create else "wb", **kwargs) as f:
            for piece in pieces:
                f.write(piece)
                if progress:
                    progress(len(piece))

    # -- files --------------------------------------------------------------------
    def open(self, path, mode="rb", block_size=None, cache_options=None, compression=None, **kwargs):
        if compression is not None and "b" in mode and "r" not in mode:
            return self._open_compressed(path, mode, compression, block_size=block_size,
                                         cache_options=cache_options, **kwargs)
        f = super().open(path, mode, block_size=block_size, cache_options=cache_options,
                         compression=compression, **kwargs)
        if isinstance(f, io.TextIOWrapper) and (isinstance(f.buffer, _CompressedWriter) or (
                isinstance(f.buffer, DFSFile) and f.buffer.mode != "rb")):
            # fsspec's text wrapper closes (commits) on an exception in `with`, and its
            # finalizer commits an unclosed one: discard instead, as in binary mode.
            f = _TextWriter(f.detach(), encoding=f.encoding, errors=f.errors,
                            newline=kwargs.get("newline"))
        return f

    def _open_compressed(self, path, mode, compression, **kwargs):
        """A compressor over a DFSFile being written. fsspec's (GzipFile(fileobj=...))
        does not close the file under it, leaving the commit to the collector, which
        discards a dropped writer: here closing commits it, and an exception in
        ``with`` or collection while unclosed discards it, as for a plain DFSFile."""
        from fsspec.compression import compr
        from fsspec.core import get_compression

        compression = get_compression(self._strip_protocol(path), compression)
        raw = self.open(path, mode, **kwargs)
        if compression is None:
            return raw
        return _CompressedWriter(compr[compression](raw, mode=mode[0]), raw)

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
