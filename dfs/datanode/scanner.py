"""Background verification of every stored record, at a bounded rate.

A full pass starts every ``interval`` seconds and reads at most ``rate``
bytes per second, so scanning never competes seriously with clients. A
replica whose record checksum, meta checksum or length is wrong (flipped
bytes, a truncated or deleted data file), or that the disk cannot read back
(EIO), is marked corrupt: it is never served again and is reported in the
next heartbeat, and the namenode has it replaced from a good copy, then
deleted. One the datanode cannot open for want of descriptors or memory is
skipped until the next pass (ioerrors.py): that says nothing about it. A
replica with its data or meta file gone is lost (the rule of presence.py,
which checks for that far more often): it is dropped and reported deleted.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from dfs.codec import checksum_of
from dfs.datanode.blockstore import BlockStore, Replica, open_regular
from dfs.datanode.ioerrors import not_the_replica

log = logging.getLogger(__name__)


def verify_replica(rep: Replica, throttle=lambda nbytes: None) -> str | None:
    """None if every record matches its checksum, else what is wrong.
    ``throttle(nbytes)`` is called after each record read (it may sleep).

    Raises the OSError when it could not check the replica at all, for want of
    descriptors or memory (``ioerrors.not_the_replica``): that is no verdict."""
    try:
        _, _, entries = BlockStore.read_meta(rep)
        with open_regular(rep.data_path, buffering=0) as f:
            for i, e in enumerate(entries):
                rec = f.read(e.stored_length)
                throttle(len(rec))
                if len(rec) != e.stored_length:
                    return f"truncated at chunk {i}"
                if checksum_of(rec) != e.checksum:
                    return f"checksum mismatch in chunk {i}"
            if f.read(1):
                return "trailing bytes after the last chunk"
    except (OSError, ValueError) as e:
        if not_the_replica(e):
            raise
        return str(e)
    return None


class Throttle:
    """Keeps the bytes read since its start at or below ``rate`` per second: after
    each read it sleeps (on ``stop``, so a shutdown is not held up) until the reads
    are no longer ahead of the rate. Record by record, so a large replica is not
    read in one burst."""

    def __init__(self, rate: float, stop: threading.Event, clock=time.monotonic):
        self.rate, self.stop, self.clock = rate, stop, clock
        self.start = clock()
        self.bytes = 0

    def ahead(self) -> float:
        """Seconds the reads are ahead of the rate (<= 0: none). Pure given the clock."""
        return self.bytes / self.rate - (self.clock() - self.start)

    def __call__(self, nbytes: int) -> None:
        self.bytes += nbytes
        wait = self.ahead()
        if wait > 0:
            self.stop.wait(wait)


class Scanner:
    def __init__(self, store: BlockStore, interval: float, on_corrupt, rate: float = 256 << 20,
                 on_lost=lambda rep, what: None):
        self.store, self.interval, self.on_corrupt, self.rate = store, interval, on_corrupt, rate
        self.on_lost = on_lost
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.scan_once()
            except Exception:   # noqa: BLE001 - the scanner must outlive one bad pass
                log.exception("block scan failed")

    def scan_once(self) -> int:
        bad = lost = scanned = unchecked = 0
        why_unchecked = ""
        throttle = Throttle(self.rate, self._stop)
        for rep in self.store.snapshot():
            if self._stop.is_set():
                break
            if rep.corrupt:
                continue
            if not (os.path.exists(rep.data_path) and os.path.exists(rep.meta_path)):
                if self.store.drop_lost(rep):
                    log.warning("replica of block %d is gone from disk", rep.block_id)
                    self.on_lost(rep, "found by the scanner")
                    lost += 1
                continue
            try:
                problem = verify_replica(rep, throttle)
            except OSError as e:   # out of descriptors or memory: checked at the next pass
                unchecked += 1
                why_unchecked = why_unchecked or f"block {rep.block_id}: {e.strerror or e}"
                continue
            scanned += 1
            if problem and self.store.get(rep.block_id) is rep:
                log.warning("replica of block %d is corrupt: %s", rep.block_id, problem)
                self.store.mark_corrupt(rep.block_id)
                self.on_corrupt(rep.block_id)
                bad += 1
        if unchecked:
            log.warning("block scan: %d replicas could not be checked (first: %s); not marked, "
                        "checked at the next pass", unchecked, why_unchecked)
        took = time.monotonic() - throttle.start
        if self._stop.is_set():
            return bad     # cut short by the shutdown
        log.info("block scan: %d replicas, %d bytes in %.2f s (%.1f MiB/s, limit %.1f MiB/s): "
                 "%d corrupt, %d gone", scanned, throttle.bytes, took,
                 throttle.bytes / max(took, 1e-9) / (1 << 20), self.rate / (1 << 20), bad, lost)
        return bad
