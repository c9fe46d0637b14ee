"""The frequent, cheap check that every replica's files are still on disk.

The checksum scanner (scanner.py) reads every byte, so it runs rarely (6 h
by default, as HDFS's). A replica file removed by hand -- an ``rm`` under
the data dir, a botched clean-up script -- would go unnoticed that long:
``locate`` would keep offering it and ``fsck`` would say HEALTHY. This check
costs one directory listing per ``current/XX`` subdirectory (at most 256)
and a set lookup per replica, so it can run every minute (HDFS's
DirectoryScanner compares the disk with the replica map the same way, but
every 6 h). A replica whose data OR meta file is missing is lost: without
its data there is nothing to serve, and without its meta (the commit
point, and the chunk index) it is an unfinished write, which the datanode
deletes at start anyway. It leaves the replica map, whatever is left of it
is removed, and the namenode hears of it as deleted in the next heartbeat
(sent at once) and copies the block again from a good replica.

Files on disk that the map does not know (copied in by hand) are left
alone: they are loaded at the next start like any replica.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping

from dfs.datanode.blockstore import BlockStore, Replica

log = logging.getLogger(__name__)


def vanished(replicas: Iterable[Replica], listing: Mapping[str, set[str]]) -> list[tuple[Replica, str]]:
    """Replicas with a file missing from ``listing`` (directory -> the names in it),
    each with what is missing: "data", "meta" or "data and meta". Pure."""
    out = []
    for rep in replicas:
        d, data = os.path.split(rep.data_path)
        names = listing.get(d, set())
        missing = [what for what, name in (("data", data), ("meta", os.path.basename(rep.meta_path)))
                   if name not in names]
        if missing:
            out.append((rep, " and ".join(missing)))
    return out


def list_dirs(dirs: Iterable[str]) -> dict[str, set[str]]:
    """The names in each directory; a directory that is gone lists as empty."""
    out = {}
    for d in dirs:
        try:
            out[d] = set(os.listdir(d))
        except FileNotFoundError:
            out[d] = set()
    return out


class PresenceCheck:
    """Runs ``check_once`` every ``interval`` seconds; ``on_lost(replica, what)`` per loss."""

    def __init__(self, store: BlockStore, interval: float, on_lost: Callable[[Replica, str], None]):
        self.store, self.interval, self.on_lost = store, interval, on_lost
        self._stop = threading.Event()
        self._lock = threading.Lock()    # the heartbeat thread runs a check before each block report

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check_once()
            except OSError as e:     # e.g. current/ unreadable: say so, try again next time
                log.warning("replica presence check failed: %s", e)

    def check_once(self) -> int:
        """Compare the disk with the replica map; drop and report what is gone. -> how many."""
        with self._lock:
            # The map is read before the disk: a replica committed meanwhile is simply
            # not checked this time, never taken for lost.
            reps = self.store.snapshot()
            listing = list_dirs({os.path.dirname(r.data_path) for r in reps})
            lost = 0
            for rep, what in vanished(reps, listing):
                if self.store.drop_lost(rep):   # re-checked there: deleted or replaced meanwhile
                    log.warning("replica of block %d is gone from disk (%s file missing)", rep.block_id, what)
                    self.on_lost(rep, what)
                    lost += 1
            return lost
