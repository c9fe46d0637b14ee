"""Block replicas on disk. The datanode never holds a key: it stores records.

Layout under ``--data-dir``:

    datanode.json                 {"uuid": ..., "cluster_id": ...} identity, created at first start;
                                  cluster_id is the namenode's, taken at the first registration
    in_use.lock                   flock'd while a datanode runs here (dfs/datadir.py)
    current/XX/blk_<id>_<gs>.data   stored chunk records back to back (XX = id % 256, hex)
    current/XX/blk_<id>_<gs>.meta   the block index (below); its presence commits the replica
    tmp/                          replicas being written; emptied at every start
    spare/                        files for new replicas: deleted ones' (emptied later), a stock

Meta file (all integers big-endian):

    magic "DFSM" | version u16 | chunk_size u32 | chunks u32 | block_length u64
    chunks x (stored_length u32 | plain_length u32 | xxh3_64 u64)
    xxh3_64 of everything above (u64)

Writing a replica: records go to tmp/ and the meta file is written beside
them; the data file is renamed into current/, then the meta file (the commit
point); then meta, data and directory are fsynced, and only then is the
replica acknowledged. Renaming before the fsyncs lets one journal commit
carry all of it (three fsyncs cost ~0.6 ms here instead of ~0.9 ms). After a
crash, a data file without its meta is an unfinished write and is deleted; a
meta whose checksum fails or whose data file is shorter than the index says
is a corrupt replica, never served. A replica a crash caught between its
renames and its fsyncs was never acknowledged: the writer started that block
over under a new id, and the namenode deletes this one when it is reported.
A meta whose data file is gone (removed while the datanode was down) is a lost
replica: removed, and left out of the block report.

A write the disk refuses (read-only, immutable, I/O error, full) puts the store
in the failed state (``failed``, ``refused``): ``usage`` reports no room until
a probe write in tmp/ succeeds (after ENOSPC: until 1 MiB more is free), so the
namenode places nothing here meanwhile (docs/healing.md).

A data dir that cannot be read back is dead (``dead``), which a full or
read-only one is not: every heartbeat reads the identity file from the disk
itself (``read_back``), and after ``DEAD_AFTER`` failures in a row that mean a
dead or vanished disk (``unreadable_strikes``) the store forgets its replicas
-- no longer served, and the datanode's next block report is empty, so the
namenode copies them elsewhere (HDFS: a failed volume, with none tolerated).
Nothing is deleted; a restart loads whatever the disk holds then.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import fcntl
import itertools
import json
import logging
import mmap
import os
import re
import shutil
import stat
import struct
import threading
import time
import uuid as _uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import xxhash

from dfs import datadir
from dfs.datanode.filepool import STOCK, FilePool
from dfs.tuning import start_writeback

log = logging.getLogger("dfs.datanode")

_HEAD = struct.Struct(">4sHIIQ")
_ENTRY = struct.Struct(">IIQ")
_TAIL = struct.Struct(">Q")
_WRITEBACK = 4 << 20   # buffered fallback: start writeback every 4 MiB so the final fsync is short
_DIRECT_BUF = 8 << 20
_SPARE_BUFS = 8        # O_DIRECT buffers kept between replicas (8 x 8 MiB)
_ALIGN = 4096
_REPLICA_FILE = re.compile(r"blk_\d+_\d+\.(data|meta)")
IDENTITY_FILES = ("datanode.json", "datanode.json.tmp")   # either: the directory is a datanode's


@dataclass(frozen=True)
class ChunkEntry:
    stored_length: int
    plain_length: int
    checksum: int


@dataclass
class Replica:
    block_id: int
    genstamp: int
    length: int            # plaintext bytes
    data_path: str
    meta_path: str
    corrupt: bool = False
    stored_bytes: int = 0  # the data file's length (its records)
    # The data and index files' space on disk (whole file-system blocks, st_blocks): what
    # the node reports as used. A 100-byte file's replica takes ~8 KiB here, not 129 B.
    disk_bytes: int = 0


def _allocated(st: os.stat_result) -> int:
    """Bytes a file takes on disk (as du counts them), not its length."""
    return st.st_blocks * 512


def encode_meta(chunk_size: int, entries: list[ChunkEntry]) -> bytes:
    length = sum(e.plain_length for e in entries)
    body = _HEAD.pack(b"DFSM", 1, chunk_size, len(entries), length) + b"".join(
        _ENTRY.pack(e.stored_length, e.plain_length, e.checksum) for e in entries)
    return body + _TAIL.pack(xxhash.xxh3_64_intdigest(body))


def decode_meta(raw: bytes) -> tuple[int, int, list[ChunkEntry]]:
    """-> (chunk_size, block_length, entries). Raises ValueError if damaged."""
    if len(raw) < _HEAD.size + _TAIL.size:
        raise ValueError("meta file too short")
    body, (check,) = raw[:-_TAIL.size], _TAIL.unpack(raw[-_TAIL.size:])
    if xxhash.xxh3_64_intdigest(body) != check:
        raise ValueError("meta file checksum mismatch")
    magic, version, chunk_size, n, length = _HEAD.unpack_from(body)
    if magic != b"DFSM" or version != 1 or len(body) != _HEAD.size + n * _ENTRY.size:
        raise ValueError("meta file has a bad header")
    entries = [ChunkEntry(*_ENTRY.unpack_from(body, _HEAD.size + i * _ENTRY.size)) for i in range(n)]
    return chunk_size, length, entries


def open_regular(path: str, buffering: int = -1):
    """``path`` opened for reading, if it is a regular file: a FIFO in a replica's
    place (an accident) would block its reader for ever, and a device is not a replica.
    Otherwise OSError (EINVAL), which callers treat as a damaged replica."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)   # a FIFO opens at once, and is refused
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(_errno.EINVAL, "not a regular file", path)
        os.set_blocking(fd, True)
        # Through open() with this descriptor: the file's name stays its path (the
        # drop-behind thread reopens it by f.name; fdopen's name would be the number).
        return open(path, "rb", buffering=buffering, opener=lambda _p, _f: fd)
    except BaseException:
        os.close(fd)
        raise


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StorageError(Exception):
    """The local disk refused a write (full, I/O error): the replica is not stored."""

    def __init__(self, message: str, errno: int | None = None):
        super().__init__(message)
        self.errno = errno


_FULL = (_errno.ENOSPC, _errno.EDQUOT)
FULL_MARGIN = 1 << 20   # a full disk is writable again once this much more is free

# Errors reading the data dir back that mean its disk is dead or gone. Not, e.g.,
# EMFILE or ENOMEM: the process is short of something, the disk holds its replicas.
_DEAD_DISK = {_errno.EIO, _errno.ENOENT, _errno.ENOTDIR, _errno.ENXIO, _errno.ENODEV,
              _errno.ESTALE, getattr(_errno, "EUCLEAN", _errno.EIO)}
DEAD_AFTER = 2   # failed read checks in a row (a heartbeat apart): one glitch kills no disk


def unreadable_strikes(strikes: int, err: OSError | None) -> int:
    """The count of read checks failed in a row, after one more that raised ``err``
    (None: it read fine). Errors that say nothing about the disk neither count nor
    reset it. Pure."""
    if err is None:
        return 0
    return strikes + 1 if err.errno in _DEAD_DISK else strikes


def read_back(path: str) -> None:
    """Read (the first 4 KiB of) ``path`` from the disk itself where the file system
    allows (O_DIRECT): a dead disk's cached pages would still read. Raises OSError."""
    buf = mmap.mmap(-1, _ALIGN)   # page-aligned, as O_DIRECT wants
    try:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECT", 0))
        except OSError as e:
            if e.errno != _errno.EINVAL:
                raise
            fd = os.open(path, os.O_RDONLY)   # no O_DIRECT here (tmpfs)
        try:
            os.preadv(fd, [buf], 0)
        finally:
            os.close(fd)
    finally:
        buf.close()


class ReplicaWriter:
    """Writes one replica into tmp/ and commits it with ``finalize``.

    Records are gathered in page-aligned buffers and written with O_DIRECT
    in 8 MiB pieces on the store's disk thread, while the next buffer fills
    (double buffering: receiving never waits for the disk unless the disk
    is the slower side). On this machine buffered writes cost ~1.8 s of
    kernel CPU per GiB (page-cache copies and reclaim) against ~0.2 s
    direct, and with three datanodes and a client on two cores that CPU is
    the write path's ceiling (docs/transport.md). File systems without
    O_DIRECT (tmpfs) get ordinary buffered writes. A replica that never fills
    a buffer (a small file) is written buffered at finalize: one synchronous
    O_DIRECT write of it would cost more than the fsync that follows, and its
    buffers are only mapped when first needed.
    """

    def __init__(self, store: BlockStore, block_id: int, genstamp: int, chunk_size: int):
        self.store, self.block_id, self.genstamp, self.chunk_size = store, block_id, genstamp, chunk_size
        tag = next(store._tags)
        self.tmp_data = os.path.join(store.tmp, f"blk_{block_id}_{genstamp}.{tag}.data")
        self.tmp_meta = os.path.join(store.tmp, f"blk_{block_id}_{genstamp}.{tag}.meta")
        self._bufs: list[mmap.mmap | None] = []
        self.fd = -1
        try:
            self.fd = store.pool.open_new(self.tmp_data, os.O_WRONLY | getattr(os, "O_DIRECT", 0))
            if hasattr(os, "O_DIRECT"):
                self._bufs = [None, None]
        except OSError:
            try:
                self.fd = store.pool.open_new(self.tmp_data, os.O_WRONLY)
            except OSError as e:   # a read-only or failed disk: refused like a full one
                raise store.refused(e, f"creating block {block_id}") from None
        self._submitted = False
        self._cur = 0
        self._fill = 0
        self._pending: Future | None = None
        self.entries: list[ChunkEntry] = []
        self.stored = 0
        self._flushed = 0

    def _write_all(self, view) -> None:
        view = memoryview(view)
        try:
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
        except OSError as e:
            raise self.store.refused(e, f"writing block {self.block_id}") from None

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def write(self, entry: ChunkEntry, record) -> None:
        view = memoryview(record).cast("B")
        if not self._bufs:
            self._write_all(view)
            if self.stored + len(view) - self._flushed >= _WRITEBACK:
                start_writeback(self.fd, self._flushed, self.stored + len(view) - self._flushed)
                self._flushed = self.stored + len(view)
        else:
            while view:
                buf = self._bufs[self._cur]
                if buf is None:
                    buf = self._bufs[self._cur] = self.store.take_buffer()
                take = min(len(view), _DIRECT_BUF - self._fill)
                buf[self._fill:self._fill + take] = view[:take]
                self._fill += take
                view = view[take:]
                if self._fill == _DIRECT_BUF:
                    self._wait()                       # the other buffer is free again
                    self._pending = self.store.disk.submit(self._write_all, buf)
                    self._submitted = True
                    self._cur ^= 1
                    self._fill = 0
        self.entries.append(entry)
        self.stored += entry.stored_length

    def finalize(self) -> Replica:
        self._wait()
        if self._bufs and self._fill and not self._submitted:
            fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) & ~os.O_DIRECT)
            self._write_all(memoryview(self._bufs[self._cur])[:self._fill])
        elif self._bufs and self._fill:
            buf = self._bufs[self._cur]
            padded = (self._fill + _ALIGN - 1) // _ALIGN * _ALIGN
            buf[self._fill:padded] = bytes(padded - self._fill)
            self._write_all(memoryview(buf)[:padded])
            os.ftruncate(self.fd, self.stored)
        self._release()
        meta_fd = -1
        try:
            meta_fd = self.store.pool.open_new(self.tmp_meta, os.O_WRONLY)
            raw = encode_meta(self.chunk_size, self.entries)
            if os.write(meta_fd, raw) != len(raw):
                raise OSError("short write of the meta file")
            return self.store._commit(self, meta_fd)
        except OSError as e:
            raise self.store.refused(e, f"committing block {self.block_id}") from None
        finally:
            if meta_fd >= 0:
                os.close(meta_fd)
            os.close(self.fd)
            self.fd = -1

    def _release(self, reuse: bool = True) -> None:
        for b in self._bufs:
            if b is None:
                continue
            if reuse and self.store.give_buffer(b):
                continue
            try:
                b.close()
            except BufferError:
                pass   # a failed write's traceback still views it; the GC frees it
        self._bufs = []

    def abort(self) -> None:
        try:
            self._wait()
        except StorageError:
            pass
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self._release(reuse=False)
        for p in (self.tmp_data, self.tmp_meta):
            try:
                self.store.pool.recycle(p)
            except FileNotFoundError:
                pass


class IdentityError(ValueError):
    """datanode.json parses, but does not say who this datanode is."""


def parse_identity(ident: object) -> tuple[str, str]:
    """datanode.json's content -> (uuid, cluster id or "" before the first registration).
    A hand-edited one of the wrong shape is refused at start: a uuid of 5 was taken, and
    every heartbeat then failed with a TypeError, for ever, the node "listening"."""
    if not isinstance(ident, dict):
        raise IdentityError(f"not a JSON object: {type(ident).__name__}")
    uuid, cluster_id = ident.get("uuid"), ident.get("cluster_id", "")
    if not isinstance(uuid, str) or not uuid.strip() or not uuid.isprintable():
        raise IdentityError(f'"uuid" is {json.dumps(uuid)[:40]}: a non-empty string of printable '
                            'characters expected')   # it is in log lines: "a\nb" split one
    if not isinstance(cluster_id, str):
        raise IdentityError(f'"cluster_id" is {json.dumps(cluster_id)[:40]}: a string expected')
    return uuid, cluster_id


class BlockStore:
    """The replicas of one datanode. Thread-safe."""

    def __init__(self, data_dir: str):
        self.root = data_dir
        self.current = os.path.join(data_dir, "current")
        self.tmp = os.path.join(data_dir, "tmp")
        # Only our own (or an empty) directory: tmp/ is emptied below and stray data
        # files are deleted by _load. The identity is written before anything else,
        # so a directory we started to fill is always recognised as ours.
        self._dir_lock = datadir.open_data_dir(data_dir, "datanode", IDENTITY_FILES)
        self.uuid, self.cluster_id = self._identity()
        os.makedirs(self.current, exist_ok=True)
        try:
            shutil.rmtree(self.tmp)   # unfinished writes of a previous life
        except FileNotFoundError:
            pass
        except OSError as e:   # e.g. immutable: said as such, not as "tmp: File exists"
            raise datadir.DataDirError(self.tmp, "cannot remove the unfinished writes in it: "
                                       f"{e.strerror or e}", e.errno or _errno.EIO) from None
        os.makedirs(self.tmp)
        self.pool = FilePool(os.path.join(data_dir, "spare"), stock=STOCK)   # files for new replicas
        self.disk = ThreadPoolExecutor(4, thread_name_prefix="disk")   # O_DIRECT writes
        self._tags = itertools.count()   # tmp/ names; tmp/ is emptied at every start
        self._lock = threading.Lock()
        self._made: set[str] = set()     # subdirectories of current/ known to exist
        self._spare_bufs: list[mmap.mmap] = []
        self.replicas: dict[int, Replica] = {}
        # Why the data dir refuses writes ("" while it takes them), and the free space
        # when it filled up: until it is writable again the datanode reports no room,
        # so the namenode places no replica here (HDFS: a failed volume).
        self.failed = ""
        self._full_free: int | None = None
        self.on_failed = lambda: None   # the datanode beats at once: no more blocks sent here
        self.dead = ""      # why the data dir cannot be read back; for good, until a restart
        self.dead_since = 0.0   # time.monotonic() when it died (the namenode is told for how long)
        self._strikes = 0   # read checks failed in a row
        self._load()

    def _identity(self) -> tuple[str, str]:
        """-> (uuid, cluster id or "" before the first registration)."""
        path = os.path.join(self.root, "datanode.json")
        if not os.path.exists(path):
            self._write_identity({"uuid": str(_uuid.uuid4())})
        try:
            with open(path) as f:
                return parse_identity(json.load(f))
        except (ValueError, RecursionError) as e:   # json's errors are ValueErrors too
            why = f" ({e})" if isinstance(e, IdentityError) else ""   # (nesting 100,000 deep)
            raise datadir.DataDirError(path, f"damaged datanode identity file{why}") from None

    def _write_identity(self, ident: dict) -> None:
        path = os.path.join(self.root, "datanode.json")
        try:
            with open(path + ".tmp", "w") as f:
                json.dump(ident, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(path + ".tmp", path)
            _fsync_dir(self.root)
        except OSError as e:
            # A full disk fails the flush, which names no file; nor is a half-written
            # datanode.json.tmp left behind.
            with contextlib.suppress(OSError):
                os.unlink(path + ".tmp")
            raise OSError(e.errno, e.strerror, path) from None

    def join_cluster(self, cluster_id: str) -> None:
        """Record the namenode's cluster id at the first registration: from then on this
        directory's replicas belong to that cluster, and no other namenode takes them."""
        self._write_identity({"uuid": self.uuid, "cluster_id": cluster_id})
        self.cluster_id = cluster_id

    def _make_dir(self, d: str) -> None:
        os.makedirs(d, exist_ok=True)
        _fsync_dir(self.current)   # the new entry is durable before a replica in it is
        self._made.add(d)

    def _dir_for(self, block_id: int) -> str:
        return os.path.join(self.current, f"{block_id % 256:02x}")

    def _load(self) -> None:
        for sub in os.listdir(self.current):
            d = os.path.join(self.current, sub)
            if not os.path.isdir(d):
                continue
            names = set(os.listdir(d))
            for name in names:
                if not _REPLICA_FILE.fullmatch(name) or not name.endswith(".meta"):
                    continue   # not ours: left alone
                stem = name[:-5]
                _, bid, gs = stem.split("_")
                data = os.path.join(d, stem + ".data")
                rep = Replica(int(bid), int(gs), 0, data, os.path.join(d, name))
                if stem + ".data" not in names:
                    # Lost (removed by hand while we were down): the presence check's rule.
                    # Not loaded, so not in the block report: the namenode copies it again.
                    log.warning("replica of block %d is gone from disk (data file missing)", rep.block_id)
                    self._unlink(rep)
                    continue
                try:
                    rep.disk_bytes = _allocated(os.stat(rep.meta_path))
                    _, rep.length, entries = self.read_meta(rep)
                    rep.stored_bytes = sum(e.stored_length for e in entries)
                    st = os.stat(data)
                    rep.disk_bytes += _allocated(st)
                    size = st.st_size
                    if size != rep.stored_bytes:
                        raise ValueError(f"data file holds {size} bytes, its index says {rep.stored_bytes}")
                except (OSError, ValueError) as e:
                    rep.corrupt = True
                    log.warning("replica of block %d is corrupt: %s", rep.block_id,
                                getattr(e, "strerror", None) or e)
                old = self.replicas.get(rep.block_id)
                if old is not None and old.genstamp > rep.genstamp:
                    self._unlink(rep)
                    continue
                if old is not None:
                    self._unlink(old)
                self.replicas[rep.block_id] = rep
            for name in names:
                if _REPLICA_FILE.fullmatch(name) and name.endswith(".data") and name[:-5] + ".meta" not in names:
                    os.unlink(os.path.join(d, name))   # data never committed
                    log.warning("removed %s: a data file without its meta (never committed, "
                                "or its meta was lost)", os.path.join(d, name))

    @staticmethod
    def read_meta(rep: Replica) -> tuple[int, int, list[ChunkEntry]]:
        with open_regular(rep.meta_path) as f:
            return decode_meta(f.read())

    def take_buffer(self) -> mmap.mmap:
        """A page-aligned O_DIRECT buffer: a kept one, or a new mapping."""
        with self._lock:
            if self._spare_bufs:
                return self._spare_bufs.pop()
        return mmap.mmap(-1, _DIRECT_BUF)

    def give_buffer(self, buf: mmap.mmap) -> bool:
        """Keep a buffer for the next replica. Unmapping one per replica cost a TLB
        shootdown across CPUs, and a fresh mapping costs first-touch page faults."""
        with self._lock:
            if len(self._spare_bufs) < _SPARE_BUFS:
                self._spare_bufs.append(buf)
                return True
        return False

    def writer(self, block_id: int, genstamp: int, chunk_size: int) -> ReplicaWriter:
        return ReplicaWriter(self, block_id, genstamp, chunk_size)

    def _commit(self, w: ReplicaWriter, meta_fd: int) -> Replica:
        d = self._dir_for(w.block_id)
        if d not in self._made:
            self._make_dir(d)
        stem = os.path.join(d, f"blk_{w.block_id}_{w.genstamp}")
        with self._lock:
            if self.dead:   # its replicas were reported gone: none comes back
                raise OSError(_errno.EIO, f"the data dir is dead ({self.dead})")
            old = self.replicas.get(w.block_id)
            try:
                os.replace(w.tmp_data, stem + ".data")
            except FileNotFoundError:
                if os.path.isdir(d):
                    raise
                # Removed since it was made (an operator's rm -r: the presence check
                # reports its replicas lost): every block placed here would fail.
                self._make_dir(d)
                os.replace(w.tmp_data, stem + ".data")
            os.replace(w.tmp_meta, stem + ".meta")
        try:
            os.fsync(meta_fd)
            os.fsync(w.fd)
            _fsync_dir(d)
        except OSError:
            for p in (stem + ".meta", stem + ".data"):   # meta first: uncommits it
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
            raise
        try:
            on_disk = _allocated(os.fstat(w.fd)) + _allocated(os.fstat(meta_fd))
        except OSError:
            on_disk = w.stored
        with self._lock:
            rep = Replica(w.block_id, w.genstamp, sum(e.plain_length for e in w.entries),
                          stem + ".data", stem + ".meta", stored_bytes=w.stored, disk_bytes=on_disk)
            self.replicas[w.block_id] = rep
            if old is not None and old.genstamp != w.genstamp:
                self._unlink(old)
        return rep

    def get(self, block_id: int) -> Replica | None:
        with self._lock:
            return self.replicas.get(block_id)

    def mark_corrupt(self, block_id: int) -> None:
        with self._lock:
            rep = self.replicas.get(block_id)
            if rep is not None:
                rep.corrupt = True

    def snapshot(self) -> list[Replica]:
        with self._lock:
            return list(self.replicas.values())

    def drop_lost(self, rep: Replica) -> bool:
        """Forget ``rep`` if its data or meta file is gone (checked here with a stat, so
        a stale listing can never drop a good replica) and remove what is left of it.
        False if both files are there, or ``rep`` was deleted or replaced meanwhile."""
        with self._lock:
            if self.replicas.get(rep.block_id) is not rep:
                return False
            if os.path.exists(rep.data_path) and os.path.exists(rep.meta_path):
                return False
            del self.replicas[rep.block_id]
        self._unlink(rep)
        return True

    def delete(self, block_id: int) -> bool:
        with self._lock:
            rep = self.replicas.pop(block_id, None)
        if rep is None:
            return False
        self._unlink(rep)
        return True

    def _unlink(self, rep: Replica) -> None:
        for p in (rep.meta_path, rep.data_path):   # meta first: uncommits the replica
            try:
                self.pool.recycle(p)
            except FileNotFoundError:
                pass
            except OSError as e:   # e.g. a read-only disk: the files stay, loaded (and
                # reported, and deleted again) at the next start
                log.warning("cannot remove %s: %s", p, e.strerror or e)
                return

    def report(self) -> list[Replica]:
        """Healthy replicas, for a full block report."""
        with self._lock:
            return [r for r in self.replicas.values() if not r.corrupt]

    def corrupt_ids(self) -> list[int]:
        with self._lock:
            return [r.block_id for r in self.replicas.values() if r.corrupt]

    def refused(self, e: OSError, doing: str) -> StorageError:
        """The disk refused a write: remember it (no room is reported until it is
        writable again) and -> the error for the writer."""
        why = e.strerror or str(e)
        full = e.errno in _FULL
        with self._lock:
            first = not self.failed
            self.failed = why
            if full:
                try:
                    self._full_free = shutil.disk_usage(self.root).free
                except OSError:
                    self._full_free = 0
            else:
                self._full_free = None
        if first:
            log.warning("data dir %s refuses writes: %s (%s); reporting no free space until it "
                        "is writable again", self.root, why, doing)
            self.on_failed()
        return StorageError(f"{self.root}: {why} ({doing})", e.errno)

    def _writable_again(self, free: int) -> bool:
        """A full disk: enough has been freed. Otherwise: a probe file can be written,
        fsynced and removed in tmp/ (read-only remount undone, I/O errors gone)."""
        if self._full_free is not None:
            return free >= self._full_free + FULL_MARGIN
        probe = os.path.join(self.tmp, "probe")
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, b"probe")
                os.fsync(fd)
            finally:
                os.close(fd)
            os.unlink(probe)
            return True
        except OSError:
            return False

    def check_readable(self) -> bool:
        """The read check (each heartbeat): -> whether the data dir can be read back.
        The ``DEAD_AFTER``-th failure in a row kills the store: it forgets its replicas
        (not served, not reported), for good -- a restart loads them again."""
        if self.dead:
            return False
        try:
            read_back(os.path.join(self.root, "datanode.json"))
            err = None
        except OSError as e:
            err = e
        self._strikes = unreadable_strikes(self._strikes, err)
        if err is None or self._strikes < DEAD_AFTER:
            return err is None
        with self._lock:
            self.dead = err.strerror or str(err)
            self.dead_since = time.monotonic()
            lost = len(self.replicas)
            self.replicas.clear()
        log.error("data dir %s is dead: it cannot be read back (%s); its %d replicas are no longer "
                  "served or reported (the namenode copies them elsewhere) until a restart",
                  self.root, self.dead, lost)
        return False

    def usage(self) -> tuple[int, int, int]:
        """(capacity, used by replicas, remaining) in bytes; remaining is 0 while the
        data dir refuses writes; capacity and remaining are 0 while it cannot be read back
        (and used too, once it is dead)."""
        if not self.check_readable():
            with self._lock:   # no statfs: a removed data dir has none
                return 0, sum(r.disk_bytes for r in self.replicas.values()), 0
        du = shutil.disk_usage(self.root)
        with self._lock:
            used = sum(r.disk_bytes for r in self.replicas.values())
            failed = self.failed
        if failed:
            if not self._writable_again(du.free):
                return du.total, used, 0
            with self._lock:
                self.failed, self._full_free = "", None
            log.warning("data dir %s takes writes again (was: %s)", self.root, failed)
        return du.total, used, du.free
