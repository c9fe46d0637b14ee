"""Open files: what a path holds while this mount has handles on it, and how it is committed.

dfs files are write-once: a new version is created with ``create(overwrite=
True)``, written front to back, and swapped in atomically when it is closed.
POSIX programs write anywhere, any time. An ``OpenFile`` bridges the two; all
handles this mount has open on one path share it, so they see each other's
writes at once. Its content is

    [0, streamed)            already sent down a FileWriter (``stream``)
    staged pages             full 1 MiB pages (staging.py), written here
    [.., base_len)           elsewhere: the committed version (``version``)
    beyond                   zeros, up to ``size``

A file written in order from byte 0 *streams*: once ``STREAM_AFTER`` pages
are complete, a FileWriter is started and every completed page is pushed to
it, so the upload runs through the datanode pipeline while the application
is still writing and memory stays bounded. Anything else - a write behind
what was streamed, a read of it, a truncate into it - first *commits* (the
current content becomes a new version: like an fsync) and the file carries on
staged, reading unchanged ranges from that version.

``commit`` runs on flush (a close by the descriptor's opener, see
operations.py), fsync and release: close-to-open consistency - once close()
returns, every client sees the new content. The
new version keeps any mtime set while it was dirty, and the namenode gives it
the mode, owner, group and replication the file has at that moment
(``keep_attributes``), whoever changed them meanwhile. Every method takes
``lock`` (an RLock). ``FileTable`` maps paths and handle numbers to OpenFiles
under its own lock, the innermost one: it may be taken while an OpenFile's
lock is held, never the other way round.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from dfs import config, errors
from dfs.model import FileStatus
from dfs.rpc import convert
from dfs_fuse.cache import BlockCache, Version
from dfs_fuse.meta import Ids, MetaCache
from dfs_fuse.staging import PAGE, ZERO_PAGE, PageBudget, Pages

log = logging.getLogger(__name__)
STREAM_AFTER = 2  # complete pages from byte 0 before a file starts streaming
RA_SLACK = 1 << 20  # reads this close to the last one still count as sequential


@dataclass
class MountContext:
    """What every open file shares: the client, the caches and the mount's settings."""

    client: object
    meta: MetaCache
    cache: BlockCache
    budget: PageBudget
    ids: Ids
    readahead: int = 32 << 20
    direct_read: int = 0  # read-only opens of files this big skip the kernel's page cache
    streaming: bool = True
    readonly: bool = False
    writeback: bool = False
    kernel_idents: OrderedDict = field(default_factory=OrderedDict)
    idents_lock: threading.Lock = field(default_factory=threading.Lock)   # guards kernel_idents
    room: Callable[[], int | None] | None = None   # bytes the cluster has left (operations.py)


class OpenFile:
    """One path's content while this mount has it open (module docstring). Mutated only
    under ``lock``; ``handles``/``writers``/``pending`` belong to the FileTable's lock."""

    def __init__(
        self, ctx: MountContext, path: str, status: FileStatus, version: Version | None = None
    ):
        self.ctx = ctx
        self.lock = threading.RLock()
        self.path = path
        self.status = status
        self.handles = 0
        self.writers = 0  # handles open for writing: one of them will commit
        self.pending = 0  # queued background commits (-o writeback)
        self.queued = False  # a background commit is queued and has not started
        self.size = status.size
        self.base_len = status.size
        # The committed version this content was built on (the namenode's inode id of
        # it; its length is base_len, or was before a truncate): a commit may only
        # replace that file (_writer). None: the content replaces whatever is
        # there (a file created here, or truncated to 0, as O_TRUNC does).
        self.base_id = status.inode_id if version is None else version.status.inode_id
        self.version = version
        self.pages = Pages(ctx.budget)
        self.stream = None
        self.streamed = 0
        self.successor = None  # a writer of the next version, begun with the file (create)
        self.dirty = False
        self.mtime = status.mtime
        self.pending_mtime: float | None = None
        self.orphan = False  # unlinked (or hidden by libfuse): never committed again
        self.broken: BaseException | None = None  # streamed data was lost
        self.gen = 0   # counts changes made here: a handle's pinned version is void after one

    # -- attributes -----------------------------------------------------
    def overlay(self) -> tuple[FileStatus, int, float] | None:
        """(status, size, mtime) while this file's content differs from the namenode's."""
        with self.lock:
            if not (self.dirty or self.stream is not None or self.pending_mtime is not None):
                return None
            mtime = self.pending_mtime if self.pending_mtime is not None else self.mtime
            return self.status, self.size, mtime

    def _version(self) -> Version:
        if self.version is None:
            v = Version(self.ctx.client.open_read(self.path))
            if not self.dirty and self.stream is None and v.ident != self._ident():
                # Replaced by another client since we last looked: take the new content.
                self.status, self.size, self.base_len = v.status, v.size, v.size
                self.base_id = v.status.inode_id
            self.version = v
        return self.version

    def _ident(self):
        st = self.status
        return (st.inode_id, st.size, st.mtime)

    def _clean(self) -> bool:
        """Nothing written here that is not committed: reads are of a committed version."""
        return not (self.dirty or self.stream is not None or self.pages)

    def pin(self, h: Handle) -> None:
        """A read-only descriptor keeps the version it opened, as one on a local disk
        keeps the file it opened when another is renamed over it: a later open here of
        a version another client made switched it mid-read (reads mixed the two, or
        ended short). Changes made through this mount (``gen``) still show in it. It
        lasts as long as that version's blocks: reads after another client's replacement
        deleted them are stale (``_stale_if_gone``)."""
        with self.lock:
            if self._clean():
                h.pinned, h.pin_gen = self._version(), self.gen

    def _pinned(self, h: Handle):
        return h.pinned if h.pinned is not None and h.pin_gen == self.gen and self._clean() else None

    def revalidate(self) -> None:
        """A new open: forget the committed version so the next read looks it up again."""
        with self.lock:
            if not self.dirty and self.stream is None and self.pending_mtime is None:
                self.version = None

    # -- reading --------------------------------------------------------
    def read(self, off: int, size: int, h: Handle) -> bytes:
        with self.lock:
            self._check()
            v = self._pinned(h)
            if v is not None:
                end = min(off + size, v.size)
            else:
                if self.stream is not None and off < self.streamed:
                    self._commit()
                if self.version is None and self._clean():
                    # A new open (revalidate) of a file another client replaced: its size
                    # is the new version's, not the one an older open here knew. Clamping
                    # to the old one gave the new open a short file (a short read is EOF).
                    with self._stale_if_gone():
                        self._version()
                end = min(off + size, self.size)
                if off < end:
                    staged = self.pages and any(
                        i in self.pages for i in range(off // PAGE, (end - 1) // PAGE + 1)
                    )
                    if staged or end > self.base_len:
                        return self._read_mixed(off, end)
                    with self._stale_if_gone():
                        v = self._version()
        if off >= end:
            return b""
        with self._stale_if_gone():
            return self._serve(v, off, end, h)

    @contextlib.contextmanager
    def _stale_if_gone(self, applies: bool = True):
        """The file this was opened on is gone: another client replaced or removed it (or
        its directory), and the namenode has forgotten the version read here, the datanodes
        deleted its blocks, or the next version being written went with the name. To a
        descriptor opened before that it is stale (ESTALE, as NFS answers), not a missing
        file: read(2) and close(2) of an open file never say ENOENT (``cat: -: No such
        file or directory``). The client says DfsFileNotFoundError (whose errno the CLI
        and fsspec keep). ``applies``: False for content tied to no version (a file
        created here, or truncated to 0: ``base_id`` None), whose commit is made at the
        path, whatever is there: ENOENT then says its directory is gone."""
        try:
            yield
        except errors.DfsFileNotFoundError as e:
            if not applies:
                raise
            raise errors.StaleVersionError(
                "replaced or removed by another client since it was opened here", self.path
            ) from e

    def _serve(self, v, off: int, end: int, h: Handle) -> bytes:
        """Clean range of a committed version: served without holding the lock."""
        cache = self.ctx.cache
        seq = h.next_off - RA_SLACK <= off <= h.next_off + RA_SLACK
        h.next_off = max(h.next_off, end) if seq else end
        if seq and self.ctx.readahead:
            window = self.ctx.readahead
            if end + window // 2 > h.ra_end:
                start = max(h.ra_end, off)
                ahead = min(v.size, end + window)
                if v.reader.loaded_until(off, end) < end:
                    # This read asks the namenode anyway: for the read-ahead's blocks too,
                    # in the same call (of small blocks, the reader's own few ahead fall
                    # short of the window). Read-ahead alone never asks (prefetch).
                    v.reader.blocks_in(off, ahead)
                h.ra_end = cache.prefetch(v, start, ahead)
        return cache.read(v, off, end - off)

    def _read_mixed(self, off: int, end: int) -> bytes:
        out = []
        pos = off
        while pos < end:
            i, po = divmod(pos, PAGE)
            take = min(PAGE - po, end - pos)
            if i in self.pages:
                out.append(self.pages.read(i, po, take))
            elif pos < self.base_len:
                n = min(take, self.base_len - pos)
                out.append(self._read_base(pos, n))
                if n < take:
                    out.append(ZERO_PAGE[: take - n])
            else:
                out.append(ZERO_PAGE[:take])
            pos += take
        return b"".join(out)

    # -- writing --------------------------------------------------------
    def _fresh(self) -> None:
        """Before the first change of a clean file reopened here (revalidate): load the
        current version, so the change applies to it and not to what we last saw."""
        clean = not self.dirty and self.stream is None
        if clean and self.version is None and self.base_id is not None:
            try:
                self._version()
            except errors.DfsFileNotFoundError:
                pass   # removed elsewhere: the commit says so (ESTALE), not this write

    def append(self, data: bytes) -> int:
        """An O_APPEND write: at our size, the truth whatever the kernel cached, once
        the current version is known."""
        with self.lock:
            self._check()
            self._fresh()
            return self.write(self.size, data)

    def write(self, off: int, data: bytes) -> int:
        with self.lock:
            self._check()
            self._fresh()
            if self.stream is not None and off < self.streamed:
                self._commit()
            end = off + len(data)
            if off > self.size:
                self._may_grow(off - self.size)
            if (
                self.stream is not None
                and off == self.streamed == self.size
                and len(data) % PAGE == 0
                and not self.pages
            ):
                # Whole pages right at the end of a stream (dd bs=1M): straight down the pipeline.
                self._stream_write(data)
                self.streamed = self.size = end
                self._modified()
                return len(data)
            view = memoryview(data)
            pos = off
            while pos < end:
                i, po = divmod(pos, PAGE)
                take = min(PAGE - po, end - pos)
                if i not in self.pages:
                    whole = po == 0 and (
                        take == PAGE or pos + take >= max(self.size, self.base_len)
                    )
                    self.pages.new(i, b"" if whole else self._base_page(i))
                self.pages.write(i, po, view[pos - off : pos - off + take])
                pos += take
            self.size = max(self.size, end)
            self._modified()
            self._push()
            return len(data)

    def truncate(self, length: int, *, opening: bool = False) -> None:
        """``opening``: an open with O_TRUNC, which marks mtime for update even when the
        size stays (POSIX open(); a truncate to the same size need not)."""
        with self.lock:
            self._check()
            if length:
                self._fresh()
            if length == self.size:
                if length == 0:
                    self.base_id = None
                if self.dirty or self.stream is not None:
                    self._modified()
                elif opening:
                    self.pending_mtime = time.time()   # set at close unless writes follow
                return
            if length > self.size:
                self._may_grow(length - self.size)
            if self.stream is not None and length < self.streamed:
                self._commit()
            if length == 0:
                self.base_id = None   # O_TRUNC: replaces whatever is there, the last close wins
            if length < self.size:
                self.base_len = min(self.base_len, length)
                i, po = divmod(length, PAGE)
                self.pages.drop_from(i + 1 if po else i)
                if po:
                    self.pages.zero_from(i, po)
            self.size = length
            self._modified()

    def _may_grow(self, hole: int) -> None:
        """dfs has no sparse files: a hole (truncate or fallocate up, a write past the
        end) is written out as zeros by the commit, on every replica. One the cluster
        could not hold fails now with ENOSPC, instead of the commit writing zeros for
        hours (truncate -s 1P) while the caller waits, unkillable, in the kernel."""
        room = self.ctx.room() if self.ctx.room is not None else None
        if room is not None and hole * max(1, self.status.replication) > room:   # None: no live
            raise OSError(errno.ENOSPC, "a hole this big does not fit in the cluster (no sparse files)")

    def set_mtime(self, mtime: float) -> bool:
        """Remember an mtime set while dirty (the commit would overwrite it); False if clean."""
        with self.lock:
            if not (self.dirty or self.stream is not None):
                return False
            self.pending_mtime = mtime
            return True

    def _modified(self) -> None:
        self.gen += 1
        self.dirty = True
        self.mtime = time.time()
        self.pending_mtime = None

    def _base_page(self, i: int) -> bytes:
        start = i * PAGE
        if start >= self.base_len:
            return b""
        return self._read_base(start, min(PAGE, self.base_len - start))

    def _read_base(self, off: int, n: int) -> bytes:
        """Bytes of the committed version this content is built on. Another client's
        commit (or removal) of the file deletes that version's blocks: what is built on
        it is stale, as its commit would say (ESTALE), not a missing file. An O_APPEND
        write that read-modify-writes the last page got ENOENT, when the other client's
        new version came between this open and that read (two mounts appending, loaded)."""
        with self._stale_if_gone():
            return self.ctx.cache.read(self._version(), off, n)

    def _push(self) -> None:
        """Send completed pages down the stream, starting one for a file written in order."""
        if self.stream is None:
            if (
                self.base_len
                or self.orphan
                or not self.ctx.streaming
                or self.size < STREAM_AFTER * PAGE
            ):
                return
            w = self._writer()
            if self.base_id is not None:   # an existing empty file, appended to: checked now
                try:
                    with self._stale_if_gone():
                        w.open()
                except BaseException:
                    w.abort()
                    raise
            self.stream = w
            self.streamed = 0
        while self.streamed + PAGE <= self.size:
            i = self.streamed // PAGE
            self._stream_write(self.pages.take(i) if i in self.pages else ZERO_PAGE)
            self.streamed += PAGE

    def _stream_write(self, data) -> None:
        try:
            with self._stale_if_gone(self.base_id is not None):
                self.stream.write(data)
        except BaseException as e:
            self._break(e)
            raise

    def _writer(self):
        if self.successor is not None:
            w, self.successor = self.successor, None
            return w
        st = self.status
        # A version built on base_id (keeps some of it, or appends at its end) may only
        # replace base_id: the namenode refuses it (StaleVersionError, ESTALE), at create
        # and again at complete, if another client replaced or removed that file meanwhile
        # (ours on top of the old content would be a lost update, acknowledged to the
        # other writer). Without base_id (a new file, O_TRUNC) the last close wins.
        # Either way it is a new version of the file there, which the namenode gives
        # that file's mode, owner, group and replication as they are at complete: a
        # chmod, chown or setrep made by anyone while this was written holds (restored
        # here from our status, another client's was undone at every commit).
        return self.ctx.client.create(
            self.path,
            overwrite=True,
            mode=st.mode & 0o7777,
            replication=st.replication,
            block_size=config.block_size_of_copy(st.block_size),
            create_parent=False,
            replaces=self.base_id or 0,
            keep_attributes=True,
        )

    # -- committing -----------------------------------------------------
    def commit(self) -> None:
        with self.lock:
            self._commit()

    def _commit(self) -> None:
        self._check()
        if self.orphan:
            return  # unlinked while open: the open descriptors still read what is staged
        if not (self.dirty or self.stream is not None):
            if self.pending_mtime is not None:
                self._set_status(self.ctx.client.set_times(self.path, self.pending_mtime))
                self.pending_mtime = None
            return
        w, start = (self.stream, self.streamed) if self.stream is not None else (self._writer(), 0)
        self.stream = None
        # A local disk's mtime is the last write's (or one set by utimens meanwhile), not
        # the close's: carried by the Complete call, no set_times afterwards.
        w.mtime = self.pending_mtime if self.pending_mtime is not None else self.mtime
        try:
            # The version this builds on removed by another client, with its directory
            # (Create finds no parent), or with the version being written (a removal
            # takes the name's writers: AddBlock or Complete finds no file): ESTALE, as
            # when the namenode finds it replaced. It said ENOENT for the directory.
            with self._stale_if_gone(self.base_id is not None):
                if not start and self.base_id is not None:
                    w.open()   # the lease, and the namenode's check of base_id, before any data
                pos = start
                while pos < self.size:
                    i = pos // PAGE
                    take = min(PAGE, self.size - pos)
                    if i in self.pages:
                        data = self.pages.read(i, 0, take)
                    elif pos < self.base_len:
                        n = min(take, self.base_len - pos)
                        data = self._read_base(pos, n)
                        if n < take:
                            data += ZERO_PAGE[: take - n]
                    else:
                        data = ZERO_PAGE[:take]
                    w.write(data)
                    pos += take
                st = convert.status_from_pb(w.close())
        except BaseException as e:
            w.abort()
            if start:
                self._break(e)
            raise
        self.pages.clear()
        self.version, self.streamed, self.dirty = None, 0, False
        self.size = self.base_len = st.size
        self.base_id = st.inode_id
        self.status = st
        # Our own new version: the next open invalidates the kernel's pages (keep_cache
        # 0) and is not taken for another client's replacement (no direct I/O, so a
        # read-only mmap of a file just changed in place here still works).
        with self.ctx.idents_lock:
            self.ctx.kernel_idents.pop(self.path, None)
        if self.pending_mtime is not None and abs(st.mtime - self.pending_mtime) > 1e-6:
            # not set by Complete: the file was made by a Create (empty, never opened)
            st = self.ctx.client.set_times(self.path, self.pending_mtime)
        self.pending_mtime = None
        self._set_status(st)

    def commit_at_close(self) -> None:
        """A close's commit (flush). If it fails, close() reports the failure, so what it
        could not commit is dropped here, as a failed stream's is (``_break``): a later
        release or unmount must not publish content whose close said it was lost (the
        namenode back by then). Writes and closes on the file fail from then on, until
        every handle is closed; the committed version stays what it was."""
        with self.lock:
            try:
                self._commit()
            except Exception as e:
                if self.broken is None and self.dirty:
                    self._break(e)
                raise

    def drop_successor(self) -> None:
        """Give up the next version begun at create (the file moved, or was not written)."""
        with self.lock:
            if self.successor is not None:
                w, self.successor = self.successor, None
                w.abort()

    def _set_status(self, st: FileStatus) -> None:
        self.status = st
        self.ctx.meta.put(self.path, st)
        self.ctx.meta.touched(self.path, st.mtime)

    def _break(self, e: BaseException) -> None:
        log.error("%s: write failed, data since the last commit is lost: %s", self.path, e)
        self.broken = (
            e if isinstance(e, errors.DfsError) else errors.DatanodeError(str(e), self.path)
        )
        self.discard()

    def _check(self) -> None:
        if self.broken is not None:
            raise self.broken

    def discard(self) -> None:
        """Drop staged content and any stream (the file was unlinked, or failed)."""
        with self.lock:
            if self.stream is not None:
                self.stream.abort()
                self.stream = None
            self.drop_successor()
            self.pages.clear()
            self.streamed = 0
            self.dirty = False


class Handle:
    """One open file description (``fi.fh``)."""

    __slots__ = ("fh", "of", "writable", "append", "sync", "next_off", "ra_end", "opener", "pinned", "pin_gen")

    def __init__(self, fh: int, of: OpenFile, writable: bool, append: bool):
        self.fh, self.of, self.writable, self.append = fh, of, writable, append
        self.sync = False   # opened O_SYNC/O_DSYNC: every write is committed before it returns
        self.next_off = 0
        self.ra_end = 0
        self.opener = 0  # pid (thread group) of the process that opened it; 0: unknown
        self.pinned = None  # read-only: the version it opened (OpenFile.pin)
        self.pin_gen = 0


class FileTable:
    """Open files by path and handles by number. Thread-safe; its lock is the innermost."""

    def __init__(self):
        self._by_path: dict[str, OpenFile] = {}
        self._handles: dict[int, Handle] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def get(self, path: str) -> OpenFile | None:
        with self._lock:
            return self._by_path.get(path)

    def handle(self, fh: int) -> Handle:
        with self._lock:
            h = self._handles.get(fh)
        if h is None:
            raise errors.InvalidArgumentError("bad file handle")
        return h

    def open(self, path: str, make, *, writable: bool, append: bool) -> Handle:
        """A handle on ``path``'s OpenFile; ``make()`` builds one if needed (outside the lock)."""
        with self._lock:
            of = self._by_path.get(path)
            if of is not None and of.broken is not None:
                # A failed close left it broken for the descriptors open then; a new
                # open starts again from the committed version. (The kernel releases
                # a closed descriptor later: a close and an open right after found it.)
                of = None
            if of is not None:
                of.handles += 1
                of.writers += writable
        if of is None:
            fresh = make()
            with self._lock:
                of = self._by_path.get(path)
                if of is None or of.broken is not None:
                    of = self._by_path[path] = fresh
                of.handles += 1
                of.writers += writable
        else:
            of.revalidate()
        with self._lock:
            h = Handle(next(self._ids), of, writable, append)
            self._handles[h.fh] = h
        return h

    def other_version_open(self, h: Handle) -> bool:
        """Is another handle on ``h``'s file pinned to another version than ``h``'s?"""
        with self._lock:
            return any(o.of is h.of and o.pinned is not None and o.pinned.ident != h.pinned.ident
                       for o in self._handles.values() if o is not h)

    def release(self, fh: int) -> None:
        with self._lock:
            h = self._handles.pop(fh, None)
            if h is None:
                return
            h.of.handles -= 1
            h.of.writers -= h.writable
        self._maybe_drop(h.of)

    def hold(self, of: OpenFile) -> None:
        """Keep ``of`` in the table, handles or not, until ``unhold`` (a queued commit)."""
        with self._lock:
            of.pending += 1

    def unhold(self, of: OpenFile) -> None:
        with self._lock:
            of.pending -= 1
        self._maybe_drop(of)

    def _maybe_drop(self, of: OpenFile) -> None:
        with self._lock:
            if of.handles > 0 or of.pending > 0:
                return
            if self._by_path.get(of.path) is of:
                del self._by_path[of.path]
        of.discard()

    def under(self, path: str) -> list[OpenFile]:
        prefix = path.rstrip("/") + "/"
        with self._lock:
            return [of for p, of in self._by_path.items() if p == path or p.startswith(prefix)]

    def moved(self, old: str, new: str) -> None:
        prefix = old.rstrip("/") + "/"
        ofs: list[OpenFile] = []
        with self._lock:
            moved = [p for p in self._by_path if p == old or p.startswith(prefix)]
            for p in moved:
                of = self._by_path.pop(p)
                of.path = new + p[len(old) :]
                self._by_path[of.path] = of
                ofs.append(of)
        for of in ofs:  # a next version begun under the old name would land there
            of.drop_successor()

    def all(self) -> list[OpenFile]:
        with self._lock:
            return list(self._by_path.values())
