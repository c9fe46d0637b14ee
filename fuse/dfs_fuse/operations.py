"""DfsOperations: the FUSE callbacks, a thin adapter over DfsClient.

Paths arrive whole (libfuse's high-level API); every callback checks them
against NAME_MAX/PATH_MAX first, so over-long names fail with ENAMETOOLONG
before any RPC. Errors become errno through ``dfs.errors.errno_for``, the one
table. Permission checks are the kernel's (``default_permissions``) against
the modes, owners and groups we report; the namenode sees every call as the
mounting user. File content goes through files.py; attributes through
meta.py. Callbacks run on libfuse's worker threads, concurrently.

No hard links or symbolic links in dfs: link/symlink/mknod of anything but a
regular file fail with EPERM, as POSIX asks of a file system without them.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import stat as _stat
import time
from collections import OrderedDict

from dfs import config, errors
from dfs.client.writer import FileWriter
from dfs.rpc import convert
from dfs_fuse._binding import FUSE_CAP_HANDLE_KILLPRIV, FuseOSError, Operations, fuse_get_context
from dfs_fuse.cache import Version
from dfs_fuse.files import FileTable, MountContext, OpenFile
from dfs_fuse.hidden import HiddenReaper, is_hidden
from dfs_fuse.meta import parent_of, stat_dict
from dfs_fuse.writeback import Committer

log = logging.getLogger(__name__)

NAME_MAX = 255
PATH_MAX = 4096
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
KEEP_IDENTS = 4096
STATFS_TTL = 2.0
FRSIZE = 4096
FREE_INODES = 1 << 31


def _fuse_errors(fn):
    """Turn whatever a callback raises into an errno for the kernel."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FuseOSError:
            raise
        except errors.DfsError as e:
            raise FuseOSError(errors.errno_for(e)) from None
        except OSError as e:
            raise FuseOSError(e.errno or errno.EIO) from None
        except UnicodeError:   # a name dfs cannot hold that check_path did not see
            raise FuseOSError(errno.EILSEQ) from None
        except Exception:
            log.exception("%s failed", fn.__name__)
            raise FuseOSError(errno.EIO) from None

    return wrapper


def tgid_of(tid: int) -> int:
    """The process (thread group) of thread ``tid``: FUSE tells the calling thread's id,
    which is the process's only for its main thread. 0 stays 0 (the kernel's own calls);
    a thread gone already is taken as its own process."""
    if tid <= 0:
        return 0
    try:
        with open(f"/proc/{tid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Tgid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return tid


def check_path(path: str, *, creating: bool = False) -> str:
    raw = path.encode("utf-8", "surrogateescape")
    if len(raw) >= PATH_MAX or any(len(p) > NAME_MAX for p in raw.split(b"/")):
        raise FuseOSError(errno.ENAMETOOLONG)
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        # dfs names are UTF-8 (protobuf strings): a name that is not cannot exist there,
        # nor be made (EILSEQ, as file systems that only take UTF-8 names answer).
        raise FuseOSError(errno.EILSEQ if creating else errno.ENOENT) from None
    return path


class DfsOperations(Operations):
    """The callbacks mfusepy calls; state lives in ``ctx`` (shared caches) and ``files``."""

    use_ns = True  # integer nanoseconds in getattr/utimens (mfusepy)

    def __init__(self, ctx: MountContext, *, attr_timeout: float = 1.0, entry_timeout: float = 1.0):
        self.ctx = ctx
        self.client = ctx.client
        self.meta = ctx.meta
        self.ids = ctx.ids
        self.files = FileTable()
        self.committer = Committer(self.files) if ctx.writeback else None
        self.attr_timeout = attr_timeout
        self.entry_timeout = entry_timeout
        self._statfs: tuple[float, dict] | None = None
        self._replaced: OrderedDict[str, float] = OrderedDict()   # path -> when a new version was seen
        self.mounted = False   # init ran: the kernel sent us its first request
        ctx.room = self._room
        self.hidden = HiddenReaper(self._remove_hidden, lambda p: self.files.get(p) is not None)

    # -- lifecycle ------------------------------------------------------
    def init_with_config(self, conn, config) -> None:
        self.mounted = True
        if conn is not None:
            conn.want &= ~FUSE_CAP_HANDLE_KILLPRIV  # the kernel clears SUID/SGID for us
        if config is not None:
            config.attr_timeout = self.attr_timeout
            config.entry_timeout = self.entry_timeout
            config.negative_timeout = 0.0
            config.use_ino = 0  # libfuse's inode numbers stay put across new versions
            config.readdir_ino = 1
            config.hard_remove = 0  # unlink of an open file: libfuse renames it aside
            config.kernel_cache = 0
            config.auto_cache = 0

    def destroy(self, path) -> None:
        self.flush_all()

    def flush_all(self) -> None:
        """Commit every dirty file (unmount, signal): best effort, errors logged."""
        if self.committer is not None:
            self.committer.drain()
        for of in self.files.all():
            try:
                of.commit()
            except Exception as e:  # noqa: BLE001
                log.error("%s: not committed at unmount: %s", of.path, e)
        self.hidden.now()

    # -- attributes -----------------------------------------------------
    @_fuse_errors
    def getattr(self, path, fh=None):
        if fh is not None:
            of = self.files.handle(fh.fh).of
            path = of.path
        else:
            check_path(path)
            # A hidden file waiting to be removed (hidden.py) is still found by name: the
            # kernel asks this, by that name, before it opens the file for a process that
            # looked it up before it was replaced, once attributes expire (at once with
            # -o strict). ENOENT here failed that open, what the wait is for.
            of = self.files.get(path)
        over = of.overlay() if of is not None else None
        if over is not None:
            st, size, mtime = over
            return stat_dict(st, self.ids, 1, size=size, mtime=mtime)
        st = self.meta.get(path)
        return stat_dict(st, self.ids, self.meta.nlink(st))

    @_fuse_errors
    def readdir(self, path, fh):
        check_path(path)
        out = [(".", {"st_mode": _stat.S_IFDIR}, 0), ("..", {"st_mode": _stat.S_IFDIR}, 0)]
        gone = self.hidden.waiting()   # removed as far as a listing can tell
        for e in self.meta.listing(path):
            if gone.get(e.path) == e.inode_id:   # that file; not one put at the name since
                continue
            kind = _stat.S_IFDIR if e.is_dir else _stat.S_IFREG
            out.append((e.path.rpartition("/")[2], {"st_mode": kind}, 0))
        return out

    @_fuse_errors
    def statfs(self, path):
        now = time.monotonic()
        if self._statfs is None or self._statfs[0] < now:
            rep = self.client.report()
            live = [d for d in rep.datanodes if d.state == "live"]
            blocks = sum(d.capacity for d in live) // FRSIZE
            free = sum(d.remaining for d in live) // FRSIZE
            # dfs has no inode table to run out of: the files there are used, and a
            # fixed 2^31 more are free (it reported 2^31 used before: `df -i` 50%).
            st = dict(f_bsize=1 << 20, f_frsize=FRSIZE, f_blocks=blocks, f_bfree=free,
                      f_bavail=free, f_files=rep.files + FREE_INODES, f_ffree=FREE_INODES,
                      f_favail=FREE_INODES, f_namemax=NAME_MAX)
            self._statfs = (now + STATFS_TTL, st)
        return self._statfs[1]

    def _room(self) -> int | None:
        """Bytes the live datanodes have left (statfs's figure, refreshed every STATFS_TTL);
        None with no live datanode: nothing is full then, a write fails with EIO, not ENOSPC."""
        st = self.statfs("/")
        return st["f_bavail"] * FRSIZE if st["f_blocks"] else None

    @_fuse_errors
    def chmod(self, path, mode):
        self._writable(path)
        self._set_attr(path, lambda: self.client.chmod(path, mode & 0o7777))

    @_fuse_errors
    def chown(self, path, uid, gid):
        self._writable(path)
        owner = self.ids.user_name(uid) if uid != -1 else ""
        group = self.ids.group_name(gid) if gid != -1 else ""
        if owner or group:
            self._set_attr(path, lambda: self.client.chown(path, owner, group))

    @_fuse_errors
    def utimens(self, path, times=None):
        self._writable(path)
        mtime_ns = UTIME_NOW if times is None else times[1]
        if mtime_ns == UTIME_OMIT:
            return
        # dfs keeps microseconds: truncate, as the kernel does for a coarser file system
        # (rounding made `cp -p`'s copy up to 500 ns newer than its source: find -newer, make).
        mtime = time.time() if mtime_ns == UTIME_NOW else (mtime_ns // 1000) / 1e6
        # dfs keeps the years 1..9999: clamped, as a local file system clamps. Unchecked,
        # one set on a file being written was kept here and refused by the namenode at
        # Complete: the close failed with EINVAL and the data was not published.
        mtime = config.clamp_mtime(mtime)
        self._set_attr(path, lambda: self.client.set_times(path, mtime), mtime=mtime)

    def _set_attr(self, path: str, rpc, *, mtime: float | None = None) -> None:
        """Change attributes; for an open file under its lock, so no commit runs
        in between and the next version carries the change."""
        of = self.files.get(path)
        if of is None:
            self.meta.put(path, rpc())
            return
        with of.lock:
            if mtime is not None and of.set_mtime(mtime):
                return  # dirty: the commit sets it on the new version
            st = rpc()
            of.status = st
            self.meta.put(of.path, st)

    # -- namespace ------------------------------------------------------
    @_fuse_errors
    def mkdir(self, path, mode):
        self._writable(path, creating=True)
        parent = self.meta.get(parent_of(path))
        mode &= 0o7777
        if parent.mode & _stat.S_ISGID:
            mode |= _stat.S_ISGID  # as Linux does: subdirectories of a SGID directory inherit it
        self.hidden.now(path)
        st = self._own(path, self.client.mkdir(path, mode=mode), parent)
        self.hidden.replaced(path)
        self.meta.added(path, st)

    @_fuse_errors
    def rmdir(self, path):
        self._writable(path)
        self.hidden.now(path)
        self.client.delete(path, recursive=False)
        self.meta.removed(path, is_dir=True)

    @_fuse_errors
    def unlink(self, path):
        self._writable(path)
        of = self.files.get(path)
        if self.hidden.unlinked(path, open_here=of is not None):
            return   # libfuse's, of a file it hid: removed in a moment (hidden.py)
        if of is None:
            self.client.delete(path, recursive=False)
        else:
            with of.lock:  # not while a commit of it runs: that would bring it back
                self.client.delete(path, recursive=False)
                of.orphan = True
                of.discard()
        self.meta.removed(path, is_dir=False)
        self._forget_idents(path)

    def _remove_hidden(self, path: str, inode_id: int) -> None:
        try:
            self.client.delete(path, recursive=False, inode_id=inode_id)
        except errors.DfsFileNotFoundError:
            # gone, or another file has the name now: not ours to remove, and what the
            # cache holds of the name is not known any more
            self.meta.forget(path, parent=True)
            return
        except errors.DfsError as e:
            log.warning("%s: could not remove: %s", path, e)
        self.meta.removed(path, is_dir=False)

    @_fuse_errors
    def rename(self, old, new, flags=0):
        self._writable(old)
        check_path(new, creating=True)
        self.hidden.now(old)
        self.hidden.now(new)
        if flags & RENAME_EXCHANGE or flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE):
            raise FuseOSError(errno.EINVAL)
        moving = sorted(self.files.under(old), key=id)
        # libfuse hiding a file open here (unlinked, or renamed over): its name has the
        # pattern and the file is open here. A user's rename is neither (or not both).
        hiding = is_hidden(new) and any(of.path == old for of in moving)
        for of in moving:
            of.lock.acquire()
        try:
            for of in moving:
                # A stream's file takes its name at close: publish it under the old name first.
                if of.path == old and of.stream is not None:
                    of._commit()
            st = self.client.rename(old, new, overwrite=not flags & RENAME_NOREPLACE)
            self.files.moved(old, new)
            self.hidden.moved(old, new)
            if hiding:
                # libfuse's stand-in for unlinking an open file: it is removed at the last
                # close, so what is written to it from now on is never uploaded.
                self.hidden.made(new, st.inode_id)
                for of in moving:
                    of.orphan = of.orphan or of.path == new
        finally:
            for of in moving:
                of.lock.release()
        for p in (old, new):
            self.meta.forget(p, tree=True, parent=True)
        self.meta.put(new, st)
        self._forget_idents(old, new, tree=st.is_dir)

    def _forget_idents(self, *paths: str, tree: bool = False) -> None:
        """A rename, unlink or create here: what the kernel caches at these paths (and,
        ``tree``, under them) is no longer known. Not forgotten, the file moved onto a
        name would be taken for another client's replacement there (direct opens: a
        shared mmap of a file renamed over another here failed with ENODEV)."""
        with self.ctx.idents_lock:
            idents = self.ctx.kernel_idents
            for p in paths:
                idents.pop(p, None)
            if tree:   # every cached name is looked at: for directories only
                under = tuple(p.rstrip("/") + "/" for p in paths)
                for k in [k for k in idents if k.startswith(under)]:
                    del idents[k]

    @_fuse_errors
    def link(self, target, source):
        raise FuseOSError(errno.EPERM)

    @_fuse_errors
    def symlink(self, target, source):
        raise FuseOSError(errno.EPERM)

    @_fuse_errors
    def readlink(self, path):
        raise FuseOSError(errno.EINVAL)

    @_fuse_errors
    def mknod(self, path, mode, dev):
        if not _stat.S_ISREG(mode):
            raise FuseOSError(errno.EPERM)
        self._writable(path, creating=True)
        self._create_empty(path, mode)

    # -- files ----------------------------------------------------------
    @_fuse_errors
    def create(self, path, mode, fi):
        self._writable(path, creating=True)
        self._forget_idents(path)   # a new file here, ours: not another client's version
        try:
            st, successor = self._create_empty(path, mode, open_next=True)
        except errors.DfsFileExistsError as e:
            if fi.flags & os.O_EXCL or isinstance(e, errors.LeaseError):   # being written elsewhere: EBUSY
                raise
            return self.open(path, fi)  # created meanwhile by someone else: plain open

        def make() -> OpenFile:
            of = OpenFile(self.ctx, path, st)
            of.successor, made[0] = successor, True
            of.base_id = None   # a new file: its first version replaces whatever is there
            return of

        made = [False]
        h = self.files.open(path, make, writable=True, append=bool(fi.flags & os.O_APPEND))
        h.opener = tgid_of(fuse_get_context()[2])
        h.sync = bool(fi.flags & os.O_DSYNC)
        if not made[0]:
            successor.abort()   # another handle's OpenFile already stands for this path
        fi.direct_io = self._direct_write(fi.flags)
        fi.fh = h.fh
        return 0

    def _direct_write(self, flags: int) -> int:
        """Write-only handles skip the kernel's page cache (unless ``-o page_cache``):
        a buffered FUSE write copies every MiB into fresh page-cache pages first, the
        dearest part of a 1 GiB dd on this VM (docs/fuse.md). A write-only descriptor
        cannot be mapped, so direct I/O takes nothing from it."""
        return int(bool(self.ctx.direct_read) and flags & os.O_ACCMODE == os.O_WRONLY)

    def _create_empty(self, path: str, mode: int, *, open_next: bool = False):
        """Create an empty file; with ``open_next`` also begin its next version, in the
        same namenode call (the writes that usually follow replace the empty file):
        -> (status, writer of the next version)."""
        self.hidden.now(path)   # a file hidden here waits at the name: gone, as far as we tell
        parent = self.meta.get(parent_of(path))
        if open_next:
            raw, successor = FileWriter.create_empty_and_open(self.client, path, mode=mode & 0o7777)
        else:
            w = self.client.create(path, overwrite=False, mode=mode & 0o7777, create_parent=False)
            raw, successor = w.close(), None
        st = self._own(path, convert.status_from_pb(raw), parent)
        self.hidden.replaced(path)
        self.meta.added(path, st)
        return (st, successor) if open_next else st

    @_fuse_errors
    def open(self, path, fi):
        check_path(path)
        flags = fi.flags
        writable = flags & os.O_ACCMODE != os.O_RDONLY
        if writable and self.ctx.readonly:
            raise FuseOSError(errno.EROFS)
        trunc = writable and bool(flags & os.O_TRUNC)
        if flags & os.O_TRUNC and not writable:
            # Linux truncates on open(O_RDONLY | O_TRUNC) too (the kernel checked write
            # permission); with atomic_o_trunc it leaves that to us.
            self.truncate(path, 0)

        def make() -> OpenFile:
            if trunc:
                return OpenFile(self.ctx, path, self.meta.get(path))
            v = Version(self.client.open_read(path))
            if v.status.is_dir:
                raise errors.DfsIsADirectoryError(path=path)
            self.meta.put(path, v.status)
            return OpenFile(self.ctx, path, v.status, v)

        h = self.files.open(path, make, writable=writable, append=bool(flags & os.O_APPEND))
        h.opener = tgid_of(fuse_get_context()[2]) if writable else 0
        h.sync = writable and bool(flags & os.O_DSYNC)
        try:
            if trunc:
                h.of.truncate(0, opening=True)
            if not writable:
                h.of.pin(h)
            churning = not writable and self._churning(path, h)
            # a direct open leaves the kernel's pages and their ident as they are
            fi.keep_cache = 0 if churning else self._keep_cache(path, h.of)
            direct = self.ctx.direct_read
            if churning or not writable and direct and h.of.size >= direct:
                # A big sequential read through the page cache costs a kernel copy
                # and a fresh page per 4 KiB (~2 s per GiB on this VM, more than
                # the rest of the read); the block cache and read-ahead are ours.
                fi.direct_io = 1
            elif writable:
                fi.direct_io = self._direct_write(flags)
        except BaseException:
            self.files.release(h.fh)
            raise
        fi.fh = h.fh
        return 0

    def _churning(self, path: str, h) -> bool:
        """Should this read-only open read past the kernel's page cache? The cache is one
        per inode (versions' pages mixed in it) and clamps reads to the size the kernel
        last heard, for up to the attribute timeout (reads of a new version ended short).
        So: while another descriptor here has another version open, and for twice the
        attribute timeout after an open found a version the kernel had not cached."""
        v = h.pinned
        if v is None:
            return False
        now = time.monotonic()
        with self.ctx.idents_lock:
            known = self.ctx.kernel_idents.get(path)
            if known is not None and known != v.ident:
                self._replaced[path] = now
                self._replaced.move_to_end(path)
                while len(self._replaced) > KEEP_IDENTS:
                    self._replaced.popitem(last=False)
            recent = now - self._replaced.get(path, -1e9) < 2 * self.attr_timeout + 0.5
        return recent or self.files.other_version_open(h)

    def _keep_cache(self, path: str, of: OpenFile) -> int:
        """Keep the kernel's cached pages only when they are of the version it cached them from."""
        with of.lock:
            v = of.version
            dirty = v is None or of.dirty or of.stream is not None
        idents = self.ctx.kernel_idents
        with self.ctx.idents_lock:
            if dirty:
                idents.pop(path, None)
                return 0
            keep = idents.get(path) == v.ident
            idents[path] = v.ident
            idents.move_to_end(path)
            while len(idents) > KEEP_IDENTS:
                idents.popitem(last=False)
        return int(keep)

    @_fuse_errors
    def read(self, path, size, offset, fi):
        h = self.files.handle(fi.fh)
        return h.of.read(offset, size, h)

    @_fuse_errors
    def write(self, path, data, offset, fi):
        h = self.files.handle(fi.fh)
        if self.ctx.readonly:
            raise FuseOSError(errno.EROFS)
        self._kill_suid(h.of)
        n = h.of.append(data) if h.append else h.of.write(offset, data)
        if h.sync:
            # O_SYNC / O_DSYNC (O_SYNC includes its bit): the write returns once it is
            # committed, as if fsync followed it. The kernel sends that FSYNC itself
            # only for buffered writes, and write-only handles are direct.
            h.of.commit()
        return n

    def _kill_suid(self, of: OpenFile) -> None:
        """A write by an unprivileged caller clears set-user-ID (and set-group-ID with
        group execute), as the kernel's should_remove_suid: for buffered writes the
        kernel asks by a chmod of its own, for direct ones (write-only handles) it
        leaves that to the file system."""
        mode = _stat.S_IMODE(of.status.mode)
        kill = mode & _stat.S_ISUID | (mode & _stat.S_ISGID if mode & _stat.S_IXGRP else 0)
        if kill and fuse_get_context()[0] != 0:
            self.chmod(of.path, mode & ~kill)

    @_fuse_errors
    def truncate(self, path, length, fh=None):
        self._writable(path)
        of = self.files.get(path)
        if of is not None:
            with of.lock:
                of.truncate(length)
                if of.writers == 0:   # open only for reading: no close will commit it
                    of.commit()
            return
        st = self.meta.get(path)
        if st.is_dir:
            raise FuseOSError(errno.EISDIR)
        if length == st.size:
            return
        of = OpenFile(self.ctx, path, st)
        try:
            of.truncate(length)
            of.commit()
        finally:
            of.discard()

    @_fuse_errors
    def fallocate(self, path, mode, offset, length, fi):
        if mode != 0:
            raise FuseOSError(errno.EOPNOTSUPP)
        of = self.files.handle(fi.fh).of
        with of.lock:
            if offset + length > of.size:
                of.truncate(offset + length)

    @_fuse_errors
    def flush(self, path, fi):
        h = self.files.handle(fi.fh)
        if h.writable and self._by_opener(h):
            if self.committer is not None:
                self.committer.submit(h.of)
            else:
                h.of.commit_at_close()

    @_fuse_errors
    def fsync(self, path, datasync, fi):
        h = self.files.handle(fi.fh)
        if h.writable:
            h.of.commit()

    @_fuse_errors
    def release(self, path, fi):
        fh = fi.fh
        h = self.files.handle(fh)
        try:
            if h.writable and self.committer is not None:
                self.committer.submit(h.of)
            elif h.writable:
                h.of.commit()
        except Exception as e:  # noqa: BLE001 - nobody is left to tell; the data is dropped
            log.error("%s: changes lost at close: %s", h.of.path, e)
        finally:
            self.files.release(fh)

    def _by_opener(self, h) -> bool:
        """Is this flush (a close) by the process that opened the handle?

        Every close() of a descriptor flushes, and descriptors are shared: a forked
        child or a shell command that inherited one closes its copy when it exits,
        often while the opener is half-way through writing. Committing then would
        publish a half-written file; only the opener's closes commit, and release
        (the last close, whoever's) still does."""
        if not h.opener:
            return True
        caller = tgid_of(fuse_get_context()[2])
        if caller and caller != h.opener:
            log.debug("%s: close by pid %d, opened by %d: not committed now", h.of.path,
                      caller, h.opener)
            return False
        return True

    # -- helpers --------------------------------------------------------
    def _writable(self, path: str, *, creating: bool = False) -> None:
        check_path(path, creating=creating)
        if self.ctx.readonly:
            raise FuseOSError(errno.EROFS)

    def _own(self, path: str, st, parent):
        """Give a new file or directory the caller's owner (and group, unless in a SGID dir)."""
        uid, gid, _ = fuse_get_context()
        owner = self.ids.user_name(uid)
        owner = owner if owner != st.owner else ""
        group = ""
        if not parent.mode & _stat.S_ISGID and self.ids.gid_of(st.group) != gid:
            group = self.ids.group_name(gid)
        if not (owner or group):
            return st
        try:
            return self.client.chown(path, owner, group)
        except errors.DfsPermissionError:
            log.warning(
                "%s: cannot give it to %s:%s (the mount's user is not the namenode's superuser)",
                path,
                owner or st.owner,
                group or st.group,
            )
            return st
