"""Write-back (``-o writeback``): the commit after close runs in the background.

By default close() returns once the file's new version is in dfs (close-to-
open consistency for every client). A small file's commit costs several
namenode round trips and a datanode pipeline that fsyncs every replica, about
10 ms here, so a program writing many small files one after another runs at
the speed of that chain. With write-back, close() queues the commit and
returns; up to ``threads`` commits run at once, and at most ``max_pending``
files wait (then close() waits for a slot).

What changes: other clients see a file once its commit has run (usually
milliseconds later), and an error in a background commit is logged instead of
being returned by close(). What does not: this mount sees its own writes at
once (the file stays in the FileTable, staged, until committed); fsync()
still commits before returning; rename, unlink and attribute changes of a
file wait for its running commit (they take its lock), so a queued commit
lands under the file's current name or not at all; unmount and signals wait
for every queued commit.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from dfs import errors
from dfs_fuse.cache import block_signals
from dfs_fuse.files import FileTable, OpenFile

log = logging.getLogger(__name__)
ATTEMPTS = 3


class Committer:
    """Runs queued commits on a small pool; ``drain`` waits for all of them. Thread-safe."""

    def __init__(self, table: FileTable, *, threads: int = 8, max_pending: int = 64):
        self.table = table
        self._pool = ThreadPoolExecutor(
            threads, thread_name_prefix="dfs-fuse-commit", initializer=block_signals
        )
        self._slots = threading.BoundedSemaphore(max_pending)
        self._idle = threading.Condition()
        self._count = 0

    def submit(self, of: OpenFile) -> None:
        with of.lock:
            if of.queued or not (of.dirty or of.stream is not None or of.pending_mtime is not None):
                return
            of.queued = True
        self._slots.acquire()
        self.table.hold(of)
        with self._idle:
            self._count += 1
        self._pool.submit(self._run, of)

    def _run(self, of: OpenFile) -> None:
        try:
            for attempt in range(1, ATTEMPTS + 1):
                with of.lock:
                    of.queued = False
                    try:
                        of._commit()
                        return
                    except errors.DfsError as e:
                        failure = e
                        final = of.broken is not None or isinstance(e, errors.StaleVersionError)
                        if attempt == ATTEMPTS or final:   # stale stays stale: no retry
                            # Back to the committed version (reloaded at next use), in the
                            # same hold of the lock as the failed commit: a write let in
                            # between was dropped with it, and a later fsync of its
                            # descriptor found nothing to commit and said it succeeded.
                            of.discard()
                            st = of.status
                            of.version, of.size, of.base_len, of.base_id = (
                                None, st.size, st.size, st.inode_id)
                            log.error("%s: background commit failed, changes lost: %s", of.path, e)
                            return
                log.warning("%s: background commit failed (%s); retrying", of.path, failure)
                time.sleep(0.5 * attempt)
        except Exception:
            log.exception("%s: background commit failed", of.path)
        finally:
            self._slots.release()
            self.table.unhold(of)
            with self._idle:
                self._count -= 1
                self._idle.notify_all()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until no commit is queued or running."""
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout)

    def close(self) -> None:
        self.drain()
        self._pool.shutdown(wait=True)
