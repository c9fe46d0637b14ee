"""The mount's block cache: whole decoded chunks of committed file versions, and read-ahead.

A committed dfs block never changes, so a chunk is addressed by (block id,
chunk index) and never needs invalidating; the cache is a plain LRU bounded
in bytes. The kernel asks for 128 KiB at a time; we always fetch whole chunks
(one datanode request for a run of chunks), so a sequential reader costs one
fetch per chunk group, not one per kernel request. Read-ahead fetches the next
chunks on a small thread pool while the kernel is still being served from the
current ones. A chunk being fetched has a Future in ``_inflight``, so readers
of the same chunk wait for one fetch instead of starting their own; it is
resolved as soon as that chunk is decoded, not when its whole run is in (a
reader that caught up with the read-ahead waited up to 16 MiB for nothing).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor

from dfs.client.reader import FileReader
from dfs.rpc import convert

log = logging.getLogger(__name__)
GROUP = 16  # chunks per read-ahead request


class Version:
    """One committed version of a file, as the cache addresses it. Immutable."""

    def __init__(self, reader: FileReader):
        self.reader = reader
        self.status = convert.status_from_pb(reader.status)
        self.size = reader.size
        self.chunk = reader.chunk_size
        #: What identifies the content for the kernel's page cache (keep_cache).
        self.ident = (self.status.inode_id, self.status.size, self.status.mtime)

    def chunk_at(self, off: int) -> tuple[tuple[int, int], int, int, int, int]:
        """(cache key, block offset, chunk index, start, length) of the chunk holding ``off``
        (the reader loads the block's location first if need be)."""
        b = self.reader.block_at(off)
        ci = (off - b.offset) // self.chunk
        start = b.offset + ci * self.chunk
        return (
            (b.block.block_id, ci),
            b.offset,
            ci,
            start,
            min(self.chunk, b.offset + b.block.length - start),
        )


def block_signals() -> None:
    """Pool threads leave SIGINT/SIGTERM/SIGHUP to the mount's signal thread."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


class BlockCache:
    """Decoded chunks by (block id, chunk index), LRU-bounded in bytes. Thread-safe; entries
    are only added by fetches and dropped by eviction (blocks never change)."""

    def __init__(self, capacity: int, threads: int = 2):
        self.capacity = capacity
        self._lru: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._bytes = 0
        self._inflight: dict[tuple[int, int], Future] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(
            threads, thread_name_prefix="dfs-fuse-readahead", initializer=block_signals
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- reading --------------------------------------------------------
    def read(self, v: Version, off: int, size: int) -> bytes:
        """Bytes [off, off+size) of version ``v`` (short at its end)."""
        end = min(off + size, v.size)
        if off >= end:
            return b""
        locs = []
        pos = off
        while pos < end:
            loc = v.chunk_at(pos)
            locs.append(loc)
            pos = loc[3] + loc[4]
        chunks = self._get(v, locs)
        if len(chunks) == 1:
            start = locs[0][3]
            c = chunks[0]
            return c if (off == start and end - off == len(c)) else c[off - start : end - start]
        first, last = locs[0][3], locs[-1][3]
        chunks[0] = chunks[0][off - first :]
        chunks[-1] = chunks[-1][: end - last]
        return b"".join(chunks)

    def prefetch(self, v: Version, start: int, end: int) -> int:
        """Fetch the chunks of [start, end) in the background, unless cached or on their
        way, as far as their blocks' locations are loaded; -> how far that is.

        Read-ahead never asks the namenode: it rides on a read, which that call (on the
        reading thread, for a whole window) would delay, or fail (the namenode
        unreachable) though the read's own blocks were loaded."""
        end = v.reader.loaded_until(start, min(end, v.size))
        groups: list[list] = []
        locs = []
        pos = start
        while pos < end:   # loaded: chunk_at asks nobody
            loc = v.chunk_at(pos)
            locs.append(loc)
            pos = loc[3] + loc[4]
        with self._lock:
            for loc in locs:
                key = loc[0]
                if key in self._lru or key in self._inflight:
                    continue
                self._inflight[key] = Future()
                g = groups[-1] if groups else None
                if g and g[-1][1] == loc[1] and g[-1][2] + 1 == loc[2] and len(g) < GROUP:
                    g.append(loc)
                else:
                    groups.append([loc])
        for g in groups:
            self._pool.submit(self._fetch_group, v, g)
        return max(start, end)

    # -- internals ------------------------------------------------------
    def _get(self, v: Version, locs) -> list[bytes]:
        out: list = [None] * len(locs)
        mine: list[tuple[int, tuple]] = []
        waits: list[tuple[int, Future]] = []
        with self._lock:
            for i, loc in enumerate(locs):
                key = loc[0]
                data = self._lru.get(key)
                if data is not None:
                    self._lru.move_to_end(key)
                    out[i] = data
                elif key in self._inflight:
                    waits.append((i, self._inflight[key]))
                else:
                    self._inflight[key] = Future()
                    mine.append((i, loc))
        # Fetch our misses in runs of consecutive chunks of one block, on this thread.
        run: list[tuple[int, tuple]] = []
        try:
            for item in mine + [(-1, None)]:
                if run and (
                    item[1] is None
                    or item[1][1] != run[-1][1][1]
                    or item[1][2] != run[-1][1][2] + 1
                ):
                    data = self._fetch_group(v, [loc for _, loc in run])
                    for (i, _), d in zip(run, data, strict=False):
                        out[i] = d
                    run = []
                if item[1] is not None:
                    run.append(item)
        except BaseException as e:
            with self._lock:  # nobody may wait forever for a fetch that will not happen
                left = [self._inflight.pop(loc[0], None) for _, loc in mine]
            for f in left:
                if f is not None and not f.done():
                    f.set_exception(e)
            raise
        for i, fut in waits:
            out[i] = fut.result()
        return out

    def _fetch_group(self, v: Version, locs) -> list[bytes]:
        """Fetch a run of chunks; each is cached and handed to its waiters as soon as it
        is decoded, so a reader right behind the read-ahead waits for one chunk, not
        for the whole run."""
        keys = [loc[0] for loc in locs]
        data: list[bytes] = []
        try:
            for d in v.reader.fetch_chunks(locs[0][1], locs[0][2], locs[-1][2]):
                k = keys[len(data)]
                data.append(d)
                with self._lock:
                    if k not in self._lru:
                        self._lru[k] = d
                        self._bytes += len(d)
                    fut = self._inflight.pop(k, None)
                    while self._bytes > self.capacity and len(self._lru) > 1:
                        _, old = self._lru.popitem(last=False)
                        self._bytes -= len(old)
                if fut is not None:
                    fut.set_result(d)
        except BaseException as e:
            with self._lock:
                futs = [self._inflight.pop(k, None) for k in keys[len(data):]]
            for f in futs:
                if f is not None:
                    f.set_exception(e)
            if isinstance(e, Exception):
                log.debug("fetch of %d chunk(s) of %s failed: %s", len(keys), v.reader.path, e)
            raise
        return data
