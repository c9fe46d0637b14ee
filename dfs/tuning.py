"""Process-wide tuning for bulk data paths (called once by each entry point).

glibc hands every allocation above 128 KiB to mmap and gives it back with
munmap at once, so each 1 MiB chunk buffer costs page faults and zeroing:
on this machine that made a `get` spend 5x more time in the kernel than in
Python. Raising the mmap and trim thresholds keeps freed chunk buffers in
the heap for reuse (BASELINES.md, "Allocation, not arithmetic").

One arena for every thread, for the same reason: glibc gives each new thread
(libfuse's workers, the pools' threads) an arena of its own, up to 8 per
core, and a buffer freed in one arena is no use to a thread allocating in
another. The mount's first 1 GiB read took 42,700 page faults (167 MiB of
new memory) with the default and 13 with one arena. New memory is dear on
this VM: the host takes back pages the guest frees (virtio-balloon free
page reporting) and every first touch of one is a fault through the host.
Python allocates with the GIL held, so one arena costs no contention.

The trim threshold is 256 MiB because a 1 GiB upload's heap peaks near 150
MiB: at 128 MiB glibc gave the top back after every upload and the next one
took 37,600 page faults again (146 MiB); at 256 MiB the second upload took 3
and ran at 797-819 MB/s against 614-649. A process keeps up to that much
freed heap for its next transfer.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_done = False


def tune_malloc() -> None:
    global _done
    if _done or os.environ.get("DFS_NO_MALLOC_TUNING"):
        return
    _done = True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 256 << 20)
        libc.mallopt(_M_ARENA_MAX, 1)
    except (OSError, AttributeError):
        pass


_libc = None


def start_writeback(fd: int, offset: int, nbytes: int) -> None:
    """Ask the kernel to start writing a range to disk now (sync_file_range,
    SYNC_FILE_RANGE_WRITE), so the fsync that commits a block finds little left."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            _libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.sync_file_range(fd, offset, nbytes, 2)


def drop_cache(fd: int, offset: int, nbytes: int) -> None:
    """Let the kernel drop a range of a file from the page cache (after a scan read it).
    Pages still in flight in a socket buffer stay until sent; that is harmless."""
    try:
        os.posix_fadvise(fd, offset, nbytes, os.POSIX_FADV_DONTNEED)
    except (AttributeError, OSError):
        pass
