"""Removing libfuse's hidden files a little late.

libfuse (hard_remove=0) renames a file that is unlinked or renamed over while
open to ``.fuse_hiddenXXXX`` and unlinks that at its last close, even when
another process that looked the old file up just before is about to open it:
that open then finds nothing (ENOENT where a local disk opens the old file).
So a hidden file is removed ``GRACE`` seconds after libfuse asks, and not
while this mount has it open; meanwhile it is left out of listings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

HIDDEN = ".fuse_hidden"
GRACE = 2.0


def is_hidden(path: str) -> bool:
    return path.rpartition("/")[2].startswith(HIDDEN)


class HiddenReaper:
    """Removes hidden files once due, on one thread of its own. Thread-safe."""

    def __init__(self, remove: Callable[[str], None], is_open: Callable[[str], bool],
                 grace: float = GRACE):
        self._remove, self._is_open, self._grace = remove, is_open, grace
        self._due: dict[str, float] = {}   # path -> when to remove it
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def later(self, path: str) -> None:
        with self._cond:
            self._due[path] = time.monotonic() + self._grace
            if self._thread is None:
                # Started from a FUSE thread: it inherits their blocked signals (mount.py).
                self._thread = threading.Thread(target=self._run, name="dfs-fuse-hidden", daemon=True)
                self._thread.start()
            self._cond.notify()

    def pending(self) -> set[str]:
        with self._cond:
            return set(self._due)

    def now(self, tree: str | None = None) -> None:
        """Remove at once what waits under directory ``tree`` (everything if None): a
        directory about to be removed or moved must not keep them, nor lose track."""
        prefix = None if tree is None else tree.rstrip("/") + "/"
        with self._cond:
            paths = [p for p in self._due if prefix is None or p.startswith(prefix)]
            for p in paths:
                del self._due[p]
        for p in paths:
            self._remove(p)

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                ready = [p for p, t in self._due.items() if t <= now]
                for p in ready:
                    del self._due[p]
                if not ready:
                    wait = min(self._due.values(), default=now + 60.0) - now
                    self._cond.wait(max(wait, 0.01))
                    continue
            for p in ready:
                if self._is_open(p):
                    self.later(p)   # opened meanwhile: libfuse will not ask again
                else:
                    self._remove(p)
