"""Bookkeeping for the chaos test (tests/integration/test_chaos.py): what each
path may hold, given the operations the system acknowledged or failed.

Every path belongs to one workload thread, so its operations are sequential.
A path's state is the set of outcomes still possible: ``None`` (absent) or
the sha256 of a content. An acknowledged operation collapses it to one
outcome; a failed one (an error, which is allowed during a fault) may or may
not have been applied, so both outcomes stay possible. A wrong answer is a
read, a listing or a final state that is in none of them.
"""

from __future__ import annotations

import hashlib
import threading

ABSENT = None


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Model:
    def __init__(self) -> None:
        self.states: dict[str, set] = {}
        self.history: dict[str, set] = {}     # every content a path may ever have held
        self.lock = threading.Lock()          # history is read by other threads
        self.acked_writes = 0
        self.failed_ops = 0
        self.ops = 0

    def possible(self, path: str) -> set:
        return self.states.get(path, {ABSENT})

    def definite(self, path: str):
        """The one possible outcome of ``path`` (None if absent), or raise KeyError when several are."""
        s = self.possible(path)
        if len(s) != 1:
            raise KeyError(path)
        return next(iter(s))

    # -- operations ---------------------------------------------------
    def write(self, path: str, digest: str, ok: bool) -> None:
        self.ops += 1
        self.intend(path, {digest})
        if ok:
            self.acked_writes += 1
            self.states[path] = {digest}
        else:
            self.failed_ops += 1
            self.states[path] = self.possible(path) | {digest}

    def delete(self, path: str, ok: bool) -> None:
        self.ops += 1
        if ok:
            self.states[path] = {ABSENT}
        else:
            self.failed_ops += 1
            self.states[path] = self.possible(path) | {ABSENT}

    def rename(self, src: str, dst: str, ok: bool) -> None:
        """``dst`` is a fresh name (never used, so absent); no overwrite."""
        self.ops += 1
        moved = self.possible(src) - {ABSENT}
        self.intend(dst, moved)
        if ok:
            self.states[dst] = moved
            self.states[src] = {ABSENT}
        else:
            self.failed_ops += 1
            self.states[dst] = self.possible(dst) | moved
            self.states[src] = self.possible(src) | {ABSENT}

    def intend(self, path: str, digests: set) -> None:
        """``path`` may come to hold these (call before the operation: others read meanwhile)."""
        with self.lock:
            self.history[path] = self.history.get(path, set()) | digests

    def ever(self) -> dict[str, set]:
        """A copy of the history: path -> every content it may have held."""
        with self.lock:
            return {p: set(s) for p, s in self.history.items()}

    def check(self, path: str, digest) -> str | None:
        """A problem if ``path`` is seen holding ``digest`` (None: absent), else None."""
        if digest in self.possible(path):
            return None
        want = sorted(str(s)[:12] for s in self.possible(path))
        got = "absent" if digest is None else digest[:12]
        return f"{path}: holds {got}, possible outcomes {want}"

    def live_paths(self) -> list[str]:
        """Paths that may exist."""
        return [p for p, s in self.states.items() if s - {ABSENT}]
