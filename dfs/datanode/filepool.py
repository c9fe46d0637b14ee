"""Emptied replica files kept for reuse, so a new replica need not allocate an inode.

Why: on ext4 without a journal (this machine's disk), allocating an inode
skips every inode of its group freed in the last 60-360 s, reading the inode
table to tell (``recently_deleted`` in fs/ext4/ialloc.c). A datanode that
deletes replicas and writes new ones, as a workload of small files does,
made each allocation scan thousands of them: perf showed ~45% of a
datanode's CPU there, 2-2.4 ms of kernel time per 4 KiB block. A deleted
replica's files are therefore truncated and moved into ``spare/``; a new
replica's files are renamed out of it. Renames and truncation are what an
unlink and a create did anyway, minus the inode bookkeeping. Other file
systems lose nothing by it.

Crash safety: a file is out of ``current/`` (uncommitted) before it is
emptied, and a spare's content is never read: it is opened with O_TRUNC on
reuse, and spares a crash left non-empty are emptied at start.
"""

from __future__ import annotations

import os
import threading

LIMIT = 4096   # spare files kept; more deletions than that unlink


class FilePool:
    """Thread-safe."""

    def __init__(self, directory: str, limit: int = LIMIT):
        self.dir = directory
        self.limit = limit
        os.makedirs(directory, exist_ok=True)
        self._lock = threading.Lock()
        self._free: list[str] = []
        self._next = 0
        for name in os.listdir(directory):
            if not name.isdigit():
                continue   # not one of ours: left alone
            path = os.path.join(directory, name)
            try:
                if os.stat(path).st_size:
                    os.truncate(path, 0)
            except OSError:
                continue
            self._next = max(self._next, int(name) + 1)
            self._free.append(name)

    def __len__(self) -> int:
        with self._lock:
            return len(self._free)

    def open_new(self, path: str, flags: int, mode: int = 0o600) -> int:
        """``os.open(path, flags | O_CREAT | O_EXCL)``, on a pooled inode when there is one."""
        with self._lock:
            name = self._free.pop() if self._free else None
        if name is not None:
            try:
                os.rename(os.path.join(self.dir, name), path)
            except OSError:
                pass   # the spare vanished: take the ordinary way
            else:
                try:
                    return os.open(path, flags | os.O_TRUNC, mode)
                except OSError:
                    os.unlink(path)   # e.g. O_DIRECT refused: the caller retries on a clean slate
                    raise
        return os.open(path, flags | os.O_CREAT | os.O_EXCL, mode)

    def recycle(self, path: str) -> None:
        """Remove ``path`` from its directory, keeping its inode empty for reuse.
        Raises FileNotFoundError as ``os.unlink`` would."""
        with self._lock:
            full = len(self._free) >= self.limit
            name = str(self._next)
            if not full:
                self._next += 1
        if full:
            os.unlink(path)
            return
        spare = os.path.join(self.dir, name)
        os.rename(path, spare)
        try:
            os.truncate(spare, 0)
        except OSError:
            os.unlink(spare)
            return
        with self._lock:
            self._free.append(name)
