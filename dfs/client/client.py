"""DfsClient: the one object every front end (CLI, fsspec, FUSE, Dask) uses.

Namespace calls go to the namenode over gRPC; file data goes through
``FileReader`` / ``FileWriter`` straight to datanodes. Thread-safe and
picklable (to its constructor arguments); gRPC channels are opened lazily
and rebuilt after a fork.
"""

from __future__ import annotations

import os
import queue
import select
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, BinaryIO

from dfs import config, errors
from dfs.client.namenode import NamenodeClient
from dfs.config import default_namenode
from dfs.model import BlockLocation, FileStatus
from dfs.rpc import convert
from dfs.rpc.v1 import namenode_pb2 as pb

if TYPE_CHECKING:   # imported on first use: `dfs ls` and the like never load the codecs
    from dfs.client.reader import FileReader
    from dfs.client.writer import FileWriter

# How often a client renews its leases when the namenode did not say its lease period
# (an older namenode: 60 s). A namenode that says it shortens this (renew_interval).
LEASE_RENEW_INTERVAL = 20.0
# The renewer waits this long after its client's last writer closed before it ends
# (HDFS's LeaseRenewer has a grace period too): a thread started and ended per file
# cost a stream of small writes 150 us of CPU and 250 us of wall time a file here.
# Short, for processes that make a client per task and drop it unclosed.
LEASE_LINGER = 1.0
# AbandonFile of a writer dropped unclosed, retries included: the lease thread renews
# the others' leases meanwhile (well within the namenode's 60 s).
ABANDON_BUDGET = 5.0
# ... tried again at each renewal while the namenode cannot be reached, at most this
# long: then its lease lapses once this client's other writers (if any) are closed.
ABANDON_RETRY_SECONDS = 120.0
_WAKE = object()   # on the lease thread's queue: a writer closed, or the client
# fsck of a large namespace: the tree walk takes seconds per million files, and its
# details (--files) stream for longer; the namenode answered a ping first.
FSCK_TIMEOUT = 300.0


class DfsClient:
    def __init__(self, namenode: str | None = None, *, user: str | None = None,
                 retry_seconds: float | None = None, threads: int | None = None):
        self.namenode = namenode or default_namenode()
        self._args = dict(namenode=self.namenode, user=user, retry_seconds=retry_seconds, threads=threads)
        self.nn = NamenodeClient(self.namenode, user=user, retry_seconds=retry_seconds)
        self._threads = threads or max(2, min(4, os.cpu_count() or 2))
        self._pool_obj: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._lock, self._lock_pid = threading.Lock(), os.getpid()
        # The file ids of this client's writers holding a lease: what renewal needs, and
        # nothing that keeps a writer alive (one dropped unclosed must be collected).
        self._leases: set[int] = set()
        self._lease_thread: threading.Thread | None = None
        # The renewal period: the shortest any Create reply's lease period asked for.
        self._renew_every = LEASE_RENEW_INTERVAL
        # Wakes the lease thread: _WAKE (check whether any lease is left), or the file id
        # of a writer dropped unclosed (abandon it). A SimpleQueue: put from a finalizer.
        self._lease_jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False   # the renewer ends at once, without lingering

    def __reduce__(self):
        return (_rebuild, (self._args,))

    @property
    def _pool(self) -> ThreadPoolExecutor:
        if self._pool_obj is None or self._pool_pid != os.getpid():
            self._after_fork()
            with self._lock:
                if self._pool_obj is None or self._pool_pid != os.getpid():
                    self._pool_obj = ThreadPoolExecutor(self._threads, thread_name_prefix="dfs-codec")
                    self._pool_pid = os.getpid()
        return self._pool_obj

    def close(self) -> None:
        self._closed = True
        self._lease_jobs.put(_WAKE)
        self.nn.close()
        if self._pool_obj is not None and self._pool_pid == os.getpid():
            self._pool_obj.shutdown(wait=False)
        self._pool_obj = None

    # -- namespace ------------------------------------------------------
    def ping(self) -> None:
        self.nn.call("Ping")

    def stat(self, path: str) -> FileStatus:
        return convert.status_from_pb(self.nn.call("GetFileInfo", pb.PathRequest(path=path)).status)

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
            return True
        except (errors.DfsFileNotFoundError, errors.DfsNotADirectoryError):
            return False

    def listdir(self, path: str) -> list[FileStatus]:
        """Entries of a directory (or [status] of a file), all pages."""
        out: list[FileStatus] = []
        after = ""
        while True:
            r = self.nn.call("ListDir", pb.ListRequest(path=path, start_after=after, limit=5000))
            out += [convert.status_from_pb(e) for e in r.entries]
            if not r.has_more:
                return out
            after = out[-1].path.rpartition("/")[2]

    def mkdir(self, path: str, *, parents: bool = False, mode: int = 0o755) -> FileStatus:
        _check(path, config.mode_problem(mode))
        reply = self.nn.call("Mkdir", pb.MkdirRequest(path=path, parents=parents, mode=mode))
        return convert.status_from_pb(reply.status)

    def delete(self, path: str, *, recursive: bool = False, files_only: bool = False,
               inode_id: int = 0) -> bool:
        """With ``inode_id``: only while ``path`` holds that file (else not found)."""
        return self.nn.call("Delete", pb.DeleteRequest(path=path, recursive=recursive,
                                                       files_only=files_only, inode_id=inode_id)).value

    def rename(self, src: str, dst: str, *, overwrite: bool = False) -> FileStatus:
        reply = self.nn.call("Rename", pb.RenameRequest(src=src, dst=dst, overwrite=overwrite))
        return convert.status_from_pb(reply.status)

    def chmod(self, path: str, mode: int) -> FileStatus:
        _check(path, config.mode_problem(mode))
        reply = self.nn.call("SetPermission", pb.SetPermissionRequest(path=path, mode=mode))
        return convert.status_from_pb(reply.status)

    def chown(self, path: str, owner: str = "", group: str = "") -> FileStatus:
        reply = self.nn.call("SetOwner", pb.SetOwnerRequest(path=path, owner=owner, group=group))
        return convert.status_from_pb(reply.status)

    def set_replication(self, path: str, replication: int) -> FileStatus:
        _check(path, config.replication_problem(replication))
        return convert.status_from_pb(self.nn.call(
            "SetReplication", pb.SetReplicationRequest(path=path, replication=replication)).status)

    def set_times(self, path: str, mtime: float) -> FileStatus:
        _check(path, config.mtime_problem(mtime))
        return convert.status_from_pb(self.nn.call("SetTimes", pb.SetTimesRequest(path=path, mtime=mtime)).status)

    def content_summary(self, path: str) -> dict:
        s = self.nn.call("GetContentSummary", pb.PathRequest(path=path)).summary
        return {"length": s.length, "files": s.files, "directories": s.directories,
                "space_consumed": s.space_consumed}

    # -- data -----------------------------------------------------------
    def open_read(self, path: str, *, start: int = 0, length: int | None = None) -> FileReader:
        """A reader; with ``length``, it loads only the locations of the blocks in that range."""
        from dfs.client.reader import FileReader
        return FileReader(self, path, pool=self._pool, start=start, length=length)

    def create(self, path: str, *, overwrite: bool = False, replication: int = 0, block_size: int = 0,
               mode: int = 0o644, create_parent: bool = True, replaces: int = 0,
               keep_attributes: bool = False) -> FileWriter:
        """A writer; the file appears, complete, when it is closed. With ``replaces`` (a
        file's inode id, and overwrite) it appears only in place of that file: if the
        path holds anything else, at create or at close, StaleVersionError. With
        ``keep_attributes`` it is a new version of the file it replaces: it takes that
        file's mode, owner, group and replication as they are when it is closed (not
        ``mode`` and ``replication``; those serve when there is none). A bad
        replication, block size or mode is refused here, not at the first megabyte."""
        _check(path, config.replication_problem(replication) if replication else "")
        _check(path, config.block_size_problem(block_size) if block_size else "")
        _check(path, config.mode_problem(mode))
        from dfs.client.writer import FileWriter
        return FileWriter(self, path, overwrite=overwrite, replication=replication, block_size=block_size,
                          mode=mode, create_parent=create_parent, replaces=replaces,
                          keep_attributes=keep_attributes, pool=self._pool)

    def read_bytes(self, path: str, offset: int = 0, length: int | None = None) -> bytes:
        """``length`` bytes (to the end: None) from ``offset``."""
        if offset < 0 or (length is not None and length < 0):   # (fsspec's cat_file takes negative ones)
            raise errors.InvalidArgumentError(f"offset and length must be >= 0, not {offset}, {length}", path)
        # the first locations loaded are those the read starts with
        r = self.open_read(path, start=offset, length=length)
        return b"".join(r.iter_range(offset, length))

    def write_bytes(self, path: str, data: bytes, **kw) -> FileStatus:
        w = self.create(path, **kw)
        try:
            w.write(data)
        except BaseException:
            w.abort()
            raise
        return convert.status_from_pb(w.close())

    def upload(self, src: BinaryIO, path: str, *, progress: Callable[[int], None] | None = None, **kw) -> FileStatus:
        return self.write_pieces(iter(lambda: src.read(4 << 20), b""), path, progress=progress, **kw)

    def write_pieces(self, pieces: Iterable, path: str, *, progress: Callable[[int], None] | None = None,
                     **kw) -> FileStatus:
        """Write ``path`` from an iterable of bytes-like pieces (``create``'s keywords);
        if anything fails, nothing appears."""
        w = self.create(path, **kw)
        try:
            for piece in pieces:
                w.write(piece)
                if progress:
                    progress(len(piece))
        except BaseException:
            w.abort()
            raise
        return convert.status_from_pb(w.close())

    def download(self, path: str, dst: BinaryIO, *, progress: Callable[[int], None] | None = None) -> int:
        """Write the file to ``dst``. A sink that lends its buffer (``DirectFile``)
        gets the plaintext decrypted straight into it; anything else is written
        piece by piece from a read-ahead thread."""
        reader = self.open_read(path)
        if hasattr(dst, "reserve"):
            return reader.copy_to(dst, progress=progress)
        n = 0
        for piece in reader.iter_range():
            write_all(dst, piece)
            n += len(piece)
            if progress:
                progress(len(piece))
        return n

    def block_locations(self, path: str, start: int = 0, length: int | None = None) -> list[BlockLocation]:
        if start < 0 or (length is not None and length < 0):   # not protobuf's "Value out of range"
            raise ValueError(f"start and length must be >= 0, not {start}, {length}")
        req = pb.GetBlockLocationsRequest(path=path, offset=min(start, config.INT64_MAX),
                                          length=min(length or 0, config.INT64_MAX), all=length is None,
                                          stable=True)
        r = self.nn.call("GetBlockLocations", req)
        if r.status.is_dir:
            raise errors.DfsIsADirectoryError(path=path)
        return [BlockLocation(offset=b.offset, length=b.block.length, block_id=b.block.block_id,
                              names=[d.address for d in b.locations], racks=[d.rack for d in b.locations],
                              corrupt=b.corrupt) for b in r.blocks]

    def report_bad(self, block_id: int, address: str, reason: str = "") -> None:
        try:
            self.nn.call("ReportBadBlocks", pb.ReportBadBlocksRequest(
                replicas=[pb.BadReplica(block_id=block_id, address=address, reason=reason)]), timeout=5.0)
        except errors.DfsError:
            pass   # best effort: the scanner will find it too

    # -- admin ----------------------------------------------------------
    def fsck(self, path: str = "/", *, files: bool = False):
        """The health of ``path``'s tree; ``details`` holds every file (``files``) or
        only those not HEALTHY."""
        # A namespace's fsck may take long; a frozen namenode must not: its silence is
        # found by a call with the usual deadline first (SPEC §3: unreachable in 15 s).
        self.ping()
        return self.nn.call("Fsck", pb.FsckRequest(path=path, files=files), timeout=FSCK_TIMEOUT, stream=True)

    def report(self):
        return self.nn.call("Report", pb.ReportRequest())

    def safemode(self, action: str = "get", *, budget: float | None = None):
        return self.nn.call("Safemode", pb.SafemodeRequest(action=action), budget=budget)

    def decommission(self, address: str, cancel: bool = False):
        """Drain the datanode at ``address``; ``cancel``: put it back in service. The reply's
        ``stuck_blocks`` > 0: that many of its blocks cannot reach their replication on
        the ``in_service`` datanodes left (it stays decommissioning)."""
        return self.nn.call("Decommission", pb.DecommissionRequest(address=address, cancel=cancel))

    def _after_fork(self) -> None:
        """In a forked child, at its first use of what follows: a lock of its own (a thread
        the fork did not copy may hold the parent's for ever), and no leases: the parent's
        writers are the parent's to renew. Copied, their ids kept the child's renewer from
        ever ending (a RenewLease every lease/3 for the child's whole life)."""
        if self._lock_pid != os.getpid():
            self._lock, self._lock_pid = threading.Lock(), os.getpid()
            self._leases, self._lease_thread = set(), None
            self._lease_jobs = queue.SimpleQueue()

    # -- leases ---------------------------------------------------------
    def _lease_acquired(self, w: FileWriter) -> None:
        self._after_fork()
        with self._lock:
            self._leases.add(w.file_id)
            every = renew_interval(w.lease_period)
            if every < self._renew_every:
                self._renew_every = every
                self._lease_jobs.put(_WAKE)   # a running renewer was waiting for the longer one
            if self._lease_thread is None or not self._lease_thread.is_alive():
                self._lease_thread = threading.Thread(target=self._renew_leases, name="dfs-lease", daemon=True)
                self._lease_thread.start()

    def _lease_released(self, w: FileWriter) -> None:
        with self._lock:
            if w.file_id not in self._leases:   # took none (an empty file, an abort before Create)
                return
            self._leases.discard(w.file_id)
            if not self._leases:
                self._lease_jobs.put(_WAKE)   # the renewer ends LEASE_LINGER from now, not 20 s

    def _writer_dropped(self, file_id: int, path: str) -> None:
        """The finalizer of a writer collected without close() or abort(). It may run on
        any thread, in the middle of anything (a garbage collection): it takes no lock and
        makes no call, the lease thread abandons the file. Its id stays among the leases
        until then, so that thread cannot end first."""
        self._lease_jobs.put(file_id)   # first: a warning may be raised (-W error)
        warnings.warn(f"dfs: {path} was being written and never closed: abandoned, not published",
                      ResourceWarning, stacklevel=1)   # no caller: a garbage collection

    def _renew_leases(self) -> None:
        renewed = time.monotonic()   # the Create of the lease that started this renewed it
        dropped: list[tuple[int, float]] = []   # files of writers dropped unclosed, and when to give up
        idle_until: float | None = None   # no lease left: when to end, unless one is taken by then
        while True:
            due = renewed + self._renew_every   # read each time: a Create may have shortened it
            wake = due if idle_until is None else min(due, idle_until)
            try:
                job = self._lease_jobs.get(timeout=max(0.0, wake - time.monotonic()))
            except queue.Empty:
                job = None
            if isinstance(job, int) and not self._abandon(job):
                dropped.append((job, time.monotonic() + ABANDON_RETRY_SECONDS))
            if dropped and time.monotonic() >= due:
                dropped = [(f, end) for f, end in dropped if not self._abandon(f, give_up=time.monotonic() > end)]
            with self._lock:
                if not self._leases:
                    now = time.monotonic()
                    if job is _WAKE or idle_until is None:   # a writer just closed: linger from now
                        idle_until = now + LEASE_LINGER
                    if self._closed or now >= idle_until:
                        self._lease_thread = None
                        return
                    if now >= due:   # nothing to renew
                        renewed = now
                    continue
                idle_until = None
            if time.monotonic() >= due:
                renewed = time.monotonic()
                try:
                    self.nn.call("RenewLease", pb.RenewLeaseRequest(), timeout=5.0)
                except errors.DfsError:
                    pass

    def _abandon(self, file_id: int, give_up: bool = False) -> bool:
        """Drop the file of a writer dropped unclosed, and its lease; False: the namenode
        could not be reached (tried again at the next renewal: the lease is the client's,
        renewed for this file too as long as other writers are open), unless ``give_up``."""
        try:
            self.nn.call("AbandonFile", pb.AbandonBlockRequest(file_id=file_id), budget=ABANDON_BUDGET)
        except (errors.NamenodeUnreachableError, errors.SafeModeError):
            if not give_up:
                return False
        except errors.DfsError:
            pass   # e.g. its lease was recovered already: the namenode dropped it itself
        with self._lock:
            self._leases.discard(file_id)
        return True


def renew_interval(lease_period: float) -> float:
    """Seconds between a client's lease renewals under a namenode lease of ``lease_period``
    seconds (0: an older namenode that did not say: its 60 s). A third of it, as the 20 s
    default is of 60 s: a renewal lost (a call timing out, the namenode restarting) still
    leaves another before the lease lapses; HDFS's half leaves none."""
    if lease_period <= 0:
        return LEASE_RENEW_INTERVAL
    return min(LEASE_RENEW_INTERVAL, lease_period / 3)


def _check(path: str, problem: str) -> None:
    """A bad argument, refused before any RPC: protobuf's "Value out of range" named
    neither the argument nor the path, and the namenode's SQLite failed on 2^63."""
    if problem:
        raise errors.InvalidArgumentError(problem, path)


def _rebuild(args: dict) -> DfsClient:
    return DfsClient(**args)


def write_all(dst: BinaryIO, piece) -> None:
    """``dst.write(piece)`` until all of it is written. A raw file (sys.stdout.buffer
    under python -u or PYTHONUNBUFFERED, a pipe) may take part of a write and say
    so - after a SIGSTOP/SIGCONT, a pipe took 64 KiB of 1 MiB - and the rest would be
    lost; a non-blocking one may take none (None)."""
    view = memoryview(piece).cast("B")
    while view:
        n = dst.write(view)
        if n is None:   # non-blocking and full: wait until it takes more
            select.select([], [dst.fileno()], [])
            continue
        if n >= len(view):
            return
        view = view[n:]
