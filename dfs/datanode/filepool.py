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

Stock: a node that only writes (no deletions to recycle) still allocated
two inodes per replica on the write's critical path. With ``stock`` set, a
background thread keeps that many empty files at hand: when fewer than half
remain it makes the difference in batches, so a burst of small writes
takes ready inodes. It runs at normal priority: as SCHED_IDLE it held the
GIL (between its syscalls) and the spare directory's lock (inside them)
while starved by other processes, freezing every thread of the datanode
for 250-465 ms at a time under load (measured, 1 ms sleeper in the same
process; 12-27 ms at normal priority) -- a writer's pipeline stalled behind
its own housekeeping. The allocations still cost CPU, but off the write's path, and made
in a row by one thread they cost less than one at a time between a write's
network waits (measured: ~1.35 -> ~1.2 ms of datanode CPU per 4 KiB block
right after mass deletions). Stock files are ordinary spares (empty,
numbered): disk usage is unchanged, and a restart picks them up like
recycled ones.

Emptying happens off the caller's thread. ``recycle`` only renames the
file into ``spare/``; a keeper thread truncates it. Truncating a 64 MiB
replica whose pages are still being written back waits for that writeback.
The datanode's heartbeat thread deletes the replicas the namenode
invalidates. When it truncated a 2 GiB delete's files itself on a busy
disk, no heartbeat went out for over 6 s, and the namenode declared all
three datanodes of the benchmark cluster dead ("no live datanodes", EIO in
dd). HDFS deletes replicas on a separate disk service for the same reason.
The rename still happens at once, so a replica is gone from ``current/``
before its deletion is reported.

Crash safety: a file is out of ``current/`` (uncommitted) before it is
emptied, and a spare's content is never read: it is opened with O_TRUNC on
reuse, and spares a crash left non-empty are emptied again after a start.
"""

from __future__ import annotations

import os
import threading

LIMIT = 4096   # spare files kept; more deletions than that unlink
STOCK = 128    # empty files a datanode keeps ready (BlockStore); refilled below STOCK // 2
_BATCH = 16    # stock files made between checks for stop


def refill_count(free: int, stock: int) -> int:
    """How many files the stock keeper should make now, with ``free`` spares at hand:
    none while at least half the stock remains, else enough to fill it up again."""
    return stock - free if stock > 0 and free < (stock + 1) // 2 else 0


class FilePool:
    """Thread-safe. ``close()`` stops the keeper thread, if one runs."""

    def __init__(self, directory: str, limit: int = LIMIT, stock: int = 0):
        self.dir = directory
        self.limit = limit
        self.stock = min(stock, limit)
        os.makedirs(directory, exist_ok=True)
        self._lock = threading.Condition()
        self._free: list[str] = []        # empty spares, ready for open_new
        self._emptying: list[str] = []    # recycled spares the keeper has yet to empty
        self._busy = False                # the keeper is emptying some right now
        self._next = 0
        self._wake = threading.Event()
        self._closed = False
        self._keeper: threading.Thread | None = None
        self.made = 0   # files the stock keeper created
        for name in os.listdir(directory):
            if not name.isdigit():
                continue   # not one of ours: left alone
            try:
                size = os.stat(os.path.join(directory, name)).st_size
            except OSError:
                continue
            self._next = max(self._next, int(name) + 1)
            (self._emptying if size else self._free).append(name)
        if self.stock or self._emptying:
            self._start_keeper()

    def _start_keeper(self) -> None:
        with self._lock:
            if self._keeper is None and not self._closed:
                self._keeper = threading.Thread(target=self._keep, name="spare-keeper", daemon=True)
                self._keeper.start()
        self._wake.set()

    def close(self) -> None:
        """Stop the keeper. Spares it has not emptied yet stay on disk, and the next
        start empties them."""
        self._closed = True
        self._wake.set()

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until every recycled file has been emptied (or unlinked). -> False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._emptying and not self._busy, timeout)

    def _keep(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closed:
                return
            self._empty_recycled()
            if self.stock:
                self.fill()

    def _empty_recycled(self) -> None:
        while not self._closed:
            with self._lock:
                if not self._emptying:
                    return
                names, self._emptying, self._busy = self._emptying, [], True
            try:
                for name in names:
                    self._empty(name)
            finally:
                with self._lock:
                    self._busy = False
                    self._lock.notify_all()

    def _empty(self, name: str) -> None:
        """Truncate one recycled spare and offer it for reuse; unlink it past the limit,
        or if it cannot be truncated."""
        path = os.path.join(self.dir, name)
        with self._lock:
            keep = len(self._free) < self.limit
        try:
            if keep:
                os.truncate(path, 0)
                with self._lock:
                    self._free.append(name)
                return
        except OSError:
            pass
        try:
            os.unlink(path)
        except OSError:
            pass   # e.g. a read-only disk: emptied after the next start

    def fill(self) -> int:
        """Make empty spares up to the stock if fewer than half of it remain. -> files made."""
        made = 0
        while not self._closed:
            with self._lock:   # started below half: then on up to the full stock
                free = len(self._free)
                want = self.stock - free if made else refill_count(free, self.stock)
                names = [str(n) for n in range(self._next, self._next + max(0, min(want, _BATCH)))]
                self._next += len(names)
            if not names:
                return made
            done = []
            for name in names:
                try:
                    fd = os.open(os.path.join(self.dir, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                 0o600)
                    os.close(fd)
                except OSError:
                    break   # disk full or the like: try again when next woken
                done.append(name)
            with self._lock:
                self._free[:0] = done   # at the bottom: recycled inodes (warm in cache) go first
            made += len(done)
            self.made += len(done)
            if len(done) < len(names):
                return made
        return made

    def __len__(self) -> int:
        with self._lock:
            return len(self._free)

    def open_new(self, path: str, flags: int, mode: int = 0o600) -> int:
        """``os.open(path, flags | O_CREAT | O_EXCL)``, on a pooled inode when there is one."""
        with self._lock:
            name = self._free.pop() if self._free else None
            if refill_count(len(self._free), self.stock):
                self._wake.set()
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
        """Remove ``path`` from its directory, keeping its inode for reuse once the
        keeper thread has emptied it. Raises FileNotFoundError as ``os.unlink`` would."""
        with self._lock:
            name = str(self._next)
            self._next += 1
        os.rename(path, os.path.join(self.dir, name))
        with self._lock:
            self._emptying.append(name)
        if self._keeper is None:
            self._start_keeper()
        else:
            self._wake.set()
