"""Removing libfuse's hidden files a little late, and only those.

libfuse (hard_remove=0) renames a file that is unlinked or renamed over while
open to ``.fuse_hiddenXXXX`` and unlinks that at its last close, even when
another process that looked the old file up just before is about to open it:
that open then finds nothing (ENOENT where a local disk opens the old file).
So a hidden file is removed ``GRACE`` seconds after libfuse asks, and not
while this mount has it open; meanwhile it is left out of listings but still
found by name (the kernel looks that name up before such an open once the
attributes it cached expire; an O_EXCL create of the name fails meanwhile).

Only what libfuse hid here: a name of its pattern that a file open here was
renamed to (``made``). Any other unlink of such a name is a user's, done at
once (a user's ``.fuse_hiddenmine``, or a copied tree's leftover, was deleted
two seconds after it was made again, and hidden from listings meanwhile). The
late removal is of that file only (its inode id), so a file put at the name
since is never taken with it; creating or renaming onto the name removes the
waiting one first (``now``).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

GRACE = 2.0
HIDDEN = re.compile(r"\.fuse_hidden[0-9a-f]{16}")   # libfuse's hidden_name(): "%08x%08x"


def is_hidden(path: str) -> bool:
    """A name libfuse could have made (whether it did is ``HiddenReaper.made``)."""
    return HIDDEN.fullmatch(path.rpartition("/")[2]) is not None


def _at_or_under(p: str, path: str | None) -> bool:
    return path is None or p == path or p.startswith(path.rstrip("/") + "/")


class HiddenReaper:
    """Removes hidden files once due, on one thread of its own. Thread-safe."""

    def __init__(self, remove: Callable[[str, int], None], is_open: Callable[[str], bool],
                 grace: float = GRACE):
        self._remove, self._is_open, self._grace = remove, is_open, grace
        self._made: dict[str, int] = {}                # path -> inode id, hidden by libfuse here
        self._due: dict[str, tuple[float, int]] = {}   # path -> (when to remove it, its inode id)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def made(self, path: str, inode_id: int) -> None:
        """libfuse renamed a file open here to ``path`` (hiding it): its unlink comes later."""
        with self._cond:
            self._made[path] = inode_id

    def replaced(self, path: str) -> None:
        """Something new was put at ``path`` here: what libfuse hid there is gone."""
        with self._cond:
            for p in [p for p in self._made if _at_or_under(p, path)]:
                del self._made[p]

    def moved(self, old: str, new: str) -> None:
        """A rename: what libfuse hid at or under ``old`` is under ``new`` now."""
        self.replaced(new)
        with self._cond:
            for p in [p for p in self._made if _at_or_under(p, old)]:
                self._made[new + p[len(old):]] = self._made.pop(p)

    def unlinked(self, path: str, open_here: bool) -> bool:
        """An unlink of ``path``. True: it is libfuse's, of a file it hid here, which
        nothing here has open; it is removed later. False: the caller removes it now."""
        with self._cond:
            inode_id = self._made.pop(path, None)
        if inode_id is None or open_here:
            return False
        self._later(path, inode_id)
        return True

    def _later(self, path: str, inode_id: int) -> None:
        with self._cond:
            self._due[path] = (time.monotonic() + self._grace, inode_id)
            if self._thread is None:
                # Started from a FUSE thread: it inherits their blocked signals (mount.py).
                self._thread = threading.Thread(target=self._run, name="dfs-fuse-hidden", daemon=True)
                self._thread.start()
            self._cond.notify()

    def waiting(self) -> dict[str, int]:
        """Path -> inode id of each file waiting to be removed."""
        with self._cond:
            return {p: inode_id for p, (_, inode_id) in self._due.items()}

    def now(self, path: str | None = None) -> None:
        """Remove at once what waits at or under ``path`` (everything if None): a directory
        about to be removed or moved must not keep them, nor lose track; a name about to
        be made again must not be taken by them (nor hidden from listings)."""
        with self._cond:
            due = {p: v for p, v in self._due.items() if _at_or_under(p, path)}
            for p in due:
                del self._due[p]
        for p, (_, inode_id) in due.items():
            self._remove(p, inode_id)

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                ready = {p: v for p, v in self._due.items() if v[0] <= now}
                for p in ready:
                    del self._due[p]
                if not ready:
                    wait = min((t for t, _ in self._due.values()), default=now + 60.0) - now
                    self._cond.wait(max(wait, 0.01))
                    continue
            for p, (_, inode_id) in ready.items():
                if self._is_open(p):
                    self._later(p, inode_id)   # opened meanwhile: libfuse will not ask again
                else:
                    self._remove(p, inode_id)
