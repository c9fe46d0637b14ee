"""Metadata as the kernel sees it: the attribute cache, owner names <-> ids, stat dicts.

``MetaCache`` keeps namenode ``FileStatus`` answers by path for ``ttl``
seconds (the same short timeout the kernel is given; 0 in ``-o strict``), and
is filled by directory listings, so ``ls -l`` costs one ListDir instead of one
GetFileInfo per entry. A lookup that misses the cache and finds a file lists
its directory too (at most once per ``ttl``, up to ``PREFETCH_LIMIT``
entries), as NFS's READDIRPLUS does: a program stat-ing the files of a
directory one by one then costs one ListDir, not one call each. A lookup
that finds nothing lists nothing: a directory being filled (each new name is
looked up first) is never re-listed. Changes made through this mount update
or drop entries at once; changes made elsewhere show after ``ttl``.
Thread-safe.

Owners and groups are names in dfs and numbers in the kernel. ``Ids`` maps a
name to the local user or group of that name, an all-digit name to that
number, and any other name to the mounting user (so a cluster whose users do
not exist here stays usable by whoever mounted it). The reverse map uses the
local name, or the number as a string.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat as _stat
import threading
import time
from dataclasses import replace

from dfs import errors
from dfs.model import FileStatus

MAX_ENTRIES = 200_000   # cached statuses before expired ones are swept out
PREFETCH_LIMIT = 10_000   # directories up to this many entries are listed on a file's lookup
BLKSIZE = 1 << 20  # st_blksize: cp, stdio and Python size their buffers by it


class Ids:
    """Owner and group names <-> local uid/gid (module docstring). Memoized; thread-safe
    enough (a race computes a value twice)."""

    def __init__(self, user: str):
        self.user = user
        try:
            pw = pwd.getpwnam(user)
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
        except KeyError:
            self.uid, self.gid = os.getuid(), os.getgid()
        self._memo: dict[tuple[str, object], object] = {}

    def _memoized(self, kind: str, key, compute):
        try:
            return self._memo[kind, key]
        except KeyError:
            if len(self._memo) > 4096:
                self._memo.clear()
            value = self._memo[kind, key] = compute(key)
            return value

    def uid_of(self, name: str) -> int:
        return self._memoized("uid", name, self._uid_of)

    def gid_of(self, name: str) -> int:
        return self._memoized("gid", name, self._gid_of)

    def user_name(self, uid: int) -> str:
        return self._memoized("user", uid, self._user_name)

    def group_name(self, gid: int) -> str:
        return self._memoized("group", gid, self._group_name)

    def _uid_of(self, name: str) -> int:
        if _numeric_id(name):
            return int(name)
        try:
            return pwd.getpwnam(name).pw_uid
        except KeyError:
            return self.uid

    def _gid_of(self, name: str) -> int:
        if _numeric_id(name):
            return int(name)
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            return self.gid

    def _user_name(self, uid: int) -> str:
        if uid == self.uid:
            return self.user
        try:
            return pwd.getpwuid(uid).pw_name
        except KeyError:
            return str(uid)

    @staticmethod
    def _group_name(gid: int) -> str:
        try:
            return grp.getgrgid(gid).gr_name
        except KeyError:
            return str(gid)


def parent_of(path: str) -> str:
    return path.rpartition("/")[0] or "/"


class MetaCache:
    """FileStatus by path for ``ttl`` seconds. Thread-safe."""

    def __init__(self, client, ttl: float):
        self.client = client
        self.ttl = ttl
        self._stat: dict[str, tuple[float, FileStatus]] = {}
        self._listed: dict[str, float] = {}   # directory -> when its listing's entries expire
        self._lock = threading.Lock()

    # -- lookups --------------------------------------------------------
    def get(self, path: str) -> FileStatus:
        # No negative entries: a file another client has just created must be found at
        # once (the kernel's negative_timeout is 0 too).
        if self.ttl > 0:
            with self._lock:
                hit = self._stat.get(path)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
        st = self.client.stat(path)
        self.put(path, st)
        if self.ttl > 0 and not st.is_dir:
            self._prefetch(parent_of(path))
        return st

    def _prefetch(self, directory: str) -> None:
        """List ``directory`` (module docstring) unless that was done within ``ttl``
        or it is too big to list; failures are left to the lookups that follow."""
        now = time.monotonic()
        with self._lock:
            if self._listed.get(directory, 0.0) > now:
                return
            hit = self._stat.get(directory)
            if hit is None or hit[0] <= now or hit[1].children > PREFETCH_LIMIT:
                return
            self._listed[directory] = now + self.ttl   # one lister at a time
        try:
            self.listing(directory)
        except errors.DfsError:
            pass

    def listing(self, path: str) -> list[FileStatus]:
        """A fresh listing of directory ``path``; fills the cache with its entries."""
        entries = self.client.listdir(path)
        if self.ttl > 0:
            expiry = time.monotonic() + self.ttl
            prefix = path.rstrip("/") + "/"
            with self._lock:
                for e in entries:
                    self._stat[prefix + e.path.rpartition("/")[2]] = (expiry, e)
                self._listed[path] = expiry
        return entries

    @staticmethod
    def nlink(st: FileStatus) -> int:
        # The namenode counts a directory's subdirectories: no listing per stat (a
        # directory being filled used to be listed whole each time its cache expired).
        return 2 + st.subdirs if st.is_dir else 1

    # -- updates from our own operations ---------------------------------
    def put(self, path: str, st: FileStatus) -> None:
        if self.ttl > 0:
            with self._lock:
                self._stat[path] = (time.monotonic() + self.ttl, st)
                if len(self._stat) > MAX_ENTRIES:
                    self._sweep()

    def _sweep(self) -> None:
        """Drop expired entries, and the oldest half if that is not enough. Lock held."""
        now = time.monotonic()
        d = self._stat
        for k in [k for k, v in d.items() if v[0] <= now]:
            del d[k]
        if len(d) > MAX_ENTRIES // 2:
            for k in list(d)[: len(d) // 2]:
                del d[k]
        self._listed = {k: v for k, v in self._listed.items() if v > now}

    def added(self, path: str, st: FileStatus) -> None:
        """``path`` was just created as ``st``: remember it, and what it did to its parent."""
        if self.ttl <= 0:
            return
        self.put(path, st)
        with self._lock:
            self._patch(parent_of(path), +1, st.is_dir, st.mtime)

    def removed(self, path: str, is_dir: bool) -> None:
        """``path`` was just deleted through this mount."""
        with self._lock:
            self._drop(path, tree=is_dir)
            self._patch(parent_of(path), -1, is_dir, time.time())

    def touched(self, path: str, mtime: float) -> None:
        """A file in ``path``'s directory was replaced at ``mtime``: patch the parent."""
        with self._lock:
            self._patch(parent_of(path), 0, False, mtime)

    def _patch(self, parent: str, delta: int, is_dir: bool, mtime: float) -> None:
        """Update a cached directory after our own change to its entries, rather than drop
        it: the kernel re-reads a directory's attributes after every change in it, and a
        miss costs a GetFileInfo. Lock held."""
        hit = self._stat.get(parent)
        if hit is not None:
            p = hit[1]
            self._stat[parent] = (
                hit[0],
                replace(p, mtime=max(p.mtime, mtime), children=max(0, p.children + delta),
                        subdirs=max(0, p.subdirs + delta) if is_dir else p.subdirs),
            )

    def forget(self, path: str, *, tree: bool = False, parent: bool = False) -> None:
        with self._lock:
            self._drop(path, tree=tree)
            if parent:
                self._stat.pop(parent_of(path), None)

    def _drop(self, path: str, *, tree: bool) -> None:
        self._stat.pop(path, None)
        if tree:
            prefix = path.rstrip("/") + "/"
            for k in [k for k in self._stat if k.startswith(prefix)]:
                del self._stat[k]


def stat_dict(
    st: FileStatus, ids: Ids, nlink: int, *, size: int | None = None, mtime: float | None = None
) -> dict:
    """The attributes mfusepy copies into struct stat (times in ns: ``use_ns``)."""
    is_dir = st.is_dir
    size = (st.size if size is None else size) if not is_dir else 4096
    mtime_ns = int(round((st.mtime if mtime is None else mtime) * 1e6)) * 1000
    ctime_ns = max(mtime_ns, int(round(st.ctime * 1e6)) * 1000)
    return {
        "st_mode": (_stat.S_IFDIR if is_dir else _stat.S_IFREG) | (st.mode & 0o7777),
        "st_nlink": nlink,
        "st_uid": ids.uid_of(st.owner),
        "st_gid": ids.gid_of(st.group),
        "st_size": size,
        "st_blocks": (size + 511) // 512,
        "st_blksize": BLKSIZE,
        "st_atime": mtime_ns,
        "st_mtime": mtime_ns,
        "st_ctime": ctime_ns,
    }


def _numeric_id(name: str) -> bool:
    """A name that is a local uid or gid as written: ASCII digits, no leading zero, below
    2**32 - 1 (the kernel's -1). str.isdigit() took '²' (int() refused it: every call on
    the file failed with EIO) and Arabic-Indic digits, and 4294967296 wrapped to root."""
    return name.isascii() and name.isdigit() and (name == "0" or not name.startswith("0")) \
        and int(name) < 0xFFFFFFFF
