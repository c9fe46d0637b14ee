"""Staged pages of files open for writing: memory first, then a local spill file.

dfs files are write-once, so everything a FUSE handle writes that cannot
stream straight into a new version (see files.py) is kept here, page by page,
until the file is committed. A page holds the file's complete content for its
range (read-modify-write fills it from the committed version first), so a page
either exists here or the range is read from the committed version.

Pages live in memory while the mount-wide ``PageBudget`` allows; after that a
file's new pages go to its spill file in the cache directory (sparse, unlinked
at once, so a crash leaves nothing behind). Not thread-safe: the owning
``OpenFile``'s lock guards a ``Pages``.
"""

from __future__ import annotations

import ctypes
import os
import tempfile
import threading

from dfs_fuse import cachedir

PAGE = 1 << 20
ZERO_PAGE = bytes(PAGE)


class PageBudget:
    """Bytes of staged pages held in memory by the whole mount."""

    def __init__(self, limit: int, spill_dir: str):
        self.limit = limit
        self.spill_dir = spill_dir
        self.used = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self._lock:
            if self.used + n > self.limit:
                return False
            self.used += n
            return True

    def give(self, n: int) -> None:
        with self._lock:
            self.used -= n


class Pages:
    """One file's staged pages: index -> 1 MiB, in memory or at ``index * PAGE`` of a spill
    file. Guarded by the owning OpenFile's lock."""

    def __init__(self, budget: PageBudget):
        self.budget = budget
        self.mem: dict[int, bytearray] = {}
        self.disk: set[int] = set()
        self._fd: int | None = None

    def __len__(self) -> int:
        return len(self.mem) + len(self.disk)

    def __contains__(self, i: int) -> bool:
        return i in self.mem or i in self.disk

    def new(self, i: int, fill) -> None:
        """Create page ``i`` holding ``fill`` (at most PAGE bytes) followed by zeros.

        A page in memory holds only the bytes written so far (the rest reads as
        zeros): a 4 KiB file must not cost a zero-filled 1 MiB buffer."""
        if self.budget.take(PAGE):
            self.mem[i] = bytearray(fill)
            return
        if self._fd is None:
            # mount() checked the directory; a tmp cleaner may have taken it since, and
            # another user made one at its name: checked again, as the mount checked it
            # (mkstemp's 0600 is not enough in a directory another user owns: its owner
            # can rename the file away before our unlink, and keep the staged data).
            cachedir.ensure(self.budget.spill_dir)
            fd, name = tempfile.mkstemp(prefix="spill-", dir=self.budget.spill_dir)
            os.unlink(name)
            self._fd = fd
        data = bytes(fill) + ZERO_PAGE[len(fill) :]
        _pwrite_all(self._fd, data, i * PAGE)
        self.disk.add(i)

    def write(self, i: int, offset: int, data) -> None:
        page = self.mem.get(i)
        if page is not None:
            if offset > len(page):
                page.extend(ZERO_PAGE[: offset - len(page)])
            page[offset : offset + len(data)] = data
        else:
            _pwrite_all(self._fd, data, i * PAGE + offset)  # type: ignore[arg-type]

    def read(self, i: int, offset: int = 0, length: int = PAGE) -> bytes:
        page = self.mem.get(i)
        if page is not None:
            data = bytes(page[offset : offset + length])
            return data + ZERO_PAGE[: length - len(data)] if len(data) < length else data
        return os.pread(self._fd, length, i * PAGE + offset)  # type: ignore[arg-type]

    def take(self, i: int):
        """Page ``i``'s content, removing it (no copy for a page in memory)."""
        page = self.mem.pop(i, None)
        if page is not None:
            self.budget.give(PAGE)
            if len(page) < PAGE:
                page.extend(ZERO_PAGE[: PAGE - len(page)])
            return page
        data = self.read(i)
        self.drop(i)
        return data

    def zero_from(self, i: int, offset: int) -> None:
        page = self.mem.get(i)
        if page is not None:
            del page[offset:]
        elif i in self:
            self.write(i, offset, ZERO_PAGE[offset:])

    def drop(self, i: int) -> None:
        if self.mem.pop(i, None) is not None:
            self.budget.give(PAGE)
        elif i in self.disk:
            self.disk.discard(i)
            # Give the disk space back now: a long streaming write must not grow the spill file.
            _punch(self._fd, i * PAGE, PAGE)

    def drop_from(self, first: int) -> None:
        for i in [i for i in self.mem if i >= first]:
            self.drop(i)
        for i in [i for i in self.disk if i >= first]:
            self.drop(i)
        if self._fd is not None and not self.disk:
            os.ftruncate(self._fd, 0)

    def clear(self) -> None:
        self.budget.give(PAGE * len(self.mem))
        self.mem.clear()
        self.disk.clear()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _pwrite_all(fd: int, data, offset: int) -> None:
    view = memoryview(data)
    while len(view):
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


_FALLOC_FL_KEEP_SIZE, _FALLOC_FL_PUNCH_HOLE = 1, 2
try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
except (OSError, AttributeError):
    _libc = None


def _punch(fd: int | None, offset: int, length: int) -> None:
    if fd is not None and _libc is not None:
        _libc.fallocate(fd, _FALLOC_FL_KEEP_SIZE | _FALLOC_FL_PUNCH_HOLE, offset, length)
