"""Background verification of every stored record, at a bounded rate.

A full pass starts every ``interval`` seconds and reads at most ``rate``
bytes per second, so scanning never competes seriously with clients. A
replica whose record checksum, meta checksum or length is wrong (flipped
bytes, a truncated or deleted data file) is marked corrupt: it is never
served again and is reported in the next heartbeat, and the namenode has it
replaced from a good copy, then deleted. A replica with its data or meta
file gone is lost (the rule of presence.py, which checks for that far more
often): it is dropped and reported deleted.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from dfs.codec import checksum_of
from dfs.datanode.blockstore import BlockStore, Replica

log = logging.getLogger(__name__)


def verify_replica(rep: Replica) -> str | None:
    """None if every record matches its checksum, else what is wrong."""
    try:
        _, _, entries = BlockStore.read_meta(rep)
        with open(rep.data_path, "rb", buffering=0) as f:
            for i, e in enumerate(entries):
                rec = f.read(e.stored_length)
                if len(rec) != e.stored_length:
                    return f"truncated at chunk {i}"
                if checksum_of(rec) != e.checksum:
                    return f"checksum mismatch in chunk {i}"
            if f.read(1):
                return "trailing bytes after the last chunk"
    except (OSError, ValueError) as e:
        return str(e)
    return None


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
            self.scan_once()

    def scan_once(self) -> int:
        bad = 0
        for rep in self.store.snapshot():
            if self._stop.is_set():
                break
            if rep.corrupt:
                continue
            t0 = time.monotonic()
            if not (os.path.exists(rep.data_path) and os.path.exists(rep.meta_path)):
                if self.store.drop_lost(rep):
                    log.warning("replica of block %d is gone from disk", rep.block_id)
                    self.on_lost(rep, "found by the scanner")
                continue
            problem = verify_replica(rep)
            if problem and self.store.get(rep.block_id) is rep:
                log.warning("replica of block %d is corrupt: %s", rep.block_id, problem)
                self.store.mark_corrupt(rep.block_id)
                self.on_corrupt(rep.block_id)
                bad += 1
            spent = rep.stored_bytes / self.rate - (time.monotonic() - t0)
            if spent > 0:
                self._stop.wait(spent)
        return bad
