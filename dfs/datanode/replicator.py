"""Re-replication on the datanode: copy a stored replica to other datanodes.

The namenode hands out copy commands in heartbeat replies; each runs on a
small pool. The stored records (ciphertext) go out with ``sendfile`` straight
from the page cache / disk to the socket, in the WRITE_BLOCK protocol a
client uses, so the receiver verifies every record's checksum before it
stores or forwards it: a damaged local copy is refused there and never
spreads. When a copy fails, the local replica is verified (if it is bad it is
marked corrupt and reported), and the failure goes back to the namenode in
the next heartbeat so the copy is retried at once from another source or to
another target.

Bandwidth: all copies of one node share a token bucket (``--repair-bandwidth``
bytes/s, 0 = unlimited) each record waits on before it goes. While clients are
being served -- by this node, or by any datanode as the namenode tells in
heartbeat replies -- copies yield: after every record each waits for as long
as the record took times ``YIELD_FACTOR`` times the copies running, so
together they get at most a quarter of one stream's time and foreground reads
and writes keep the disks, network and CPU (the scheme behind Ceph's recovery
sleep). Copies of blocks with a single good replica left ("urgent") never
yield.

``copied_bytes`` (the counter heartbeats carry, behind the repair rate and the
pending bytes of ``dfs admin report``) counts a record's block bytes once it
has been sent, after its wait for bandwidth: counted before, a block of one
record counted as delivered a second before it went at 1 MiB/s.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from dfs.config import setting
from dfs.datanode.blockstore import BlockStore, Replica, open_regular
from dfs.datanode.scanner import verify_replica
from dfs.rpc import frames
from dfs.rpc.v1 import datatransfer_pb2 as pb

log = logging.getLogger(__name__)
YIELD_FACTOR = setting("DFS_REPAIR_YIELD", 3.0)   # 0: copies never yield


class Throttle:
    """A token bucket shared by threads: ``take(n)`` blocks until n bytes may go.

    It holds at most a quarter of a second's bytes (``burst``), so an idle node's
    copies start at about the rate too (a floor of 4 MiB let a node capped at
    1 MiB/s send 4 s of copying at once)."""

    def __init__(self, rate: float, burst: float | None = None):
        self.rate = float(rate)
        self.burst = burst if burst is not None else self.rate / 4
        self._tokens = self.burst
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def take(self, n: int, stop: threading.Event | None = None) -> None:
        """Wait until ``n`` bytes may go (or ``stop`` is set)."""
        if self.rate <= 0:
            return
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            (stop or threading.Event()).wait(wait)


class Replicator:
    def __init__(self, store: BlockStore, *, max_transfers: int = 4, bandwidth: float = 0.0,
                 foreground: Callable[[], int] = lambda: 0,
                 on_corrupt: Callable[[int], None] = lambda b: None,
                 on_failed: Callable[[int, list[str], str], None] = lambda b, t, r: None,
                 on_done: Callable[[], None] = lambda: None):
        self.store = store
        self.throttle = Throttle(bandwidth)
        self.foreground = foreground
        self.on_corrupt, self.on_failed, self.on_done = on_corrupt, on_failed, on_done
        self._pool = ThreadPoolExecutor(max_workers=max_transfers, thread_name_prefix="replicate")
        self._lock = threading.Lock()
        self._queued: set[tuple[int, tuple[str, ...]]] = set()
        self._running = 0
        self.copied_bytes = 0
        self._stopping = threading.Event()
        self._sockets: set = set()   # copies' connections, shut down by shutdown()

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._queued)

    def submit(self, block_id: int, targets: list[str], urgent: bool = False) -> None:
        """Copy ``block_id`` to ``targets``; ``urgent`` (one good replica left): no yielding."""
        key = (block_id, tuple(targets))
        with self._lock:
            if key in self._queued:     # the namenode asked again: one copy is enough
                return
            self._queued.add(key)
        self._pool.submit(self._run, block_id, targets, key, urgent)

    def shutdown(self) -> None:
        """Stop now: queued copies are dropped and running ones broken off (the namenode
        plans them again). The interpreter joins the pool's threads at exit, so a copy
        left running -- a big block, a slow or frozen target, a bandwidth cap -- would
        keep a SIGTERMed datanode alive until it ended."""
        self._stopping.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            socks = list(self._sockets)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)   # wakes a send or recv blocked on it
            except OSError:
                pass

    def _run(self, block_id: int, targets: list[str], key, urgent: bool = False) -> None:
        try:
            rep = self.store.get(block_id)
            if rep is None or rep.corrupt:
                self.on_failed(block_id, targets, "no healthy local replica")
                return
            t0 = time.monotonic()
            with self._lock:
                self._running += 1
            try:
                stored, _, error = self.push(rep, targets, urgent=urgent)
            except (OSError, frames.FrameError, ValueError) as e:
                stored, error = [], str(e) or type(e).__name__
            finally:
                with self._lock:
                    self._running -= 1
            if self._stopping.is_set():
                return   # broken off by shutdown: not the replica's fault, nobody to tell
            took = time.monotonic() - t0
            if set(stored) >= set(targets):
                log.info("copied block %d (%d bytes) to %s in %.2fs", block_id, rep.stored_bytes,
                         ",".join(stored), took)
                return
            missing = [t for t in targets if t not in stored]
            log.warning("copying block %d to %s failed: %s", block_id, ",".join(missing), error or "no ack")
            if error and ("checksum" in error or "corrupt" in error or "truncated" in error) or not stored:
                self._check_local(rep)
            self.on_failed(block_id, missing, error or "target did not store the block")
        except Exception:
            log.exception("copy of block %d failed", block_id)
            self.on_failed(block_id, targets, "internal error")
        finally:
            with self._lock:
                self._queued.discard(key)
            self.on_done()

    def _check_local(self, rep: Replica) -> None:
        if self.store.get(rep.block_id) is not rep or rep.corrupt:
            return
        try:
            problem = verify_replica(rep)
        except OSError as e:   # out of descriptors or memory (the copy likely failed of it too)
            log.warning("cannot check local replica of block %d: %s; not marked", rep.block_id,
                        e.strerror or e)
            return
        if problem:
            log.warning("local replica of block %d is corrupt: %s", rep.block_id, problem)
            self.store.mark_corrupt(rep.block_id)
            self.on_corrupt(rep.block_id)

    def _wait_for_bandwidth(self, nbytes: int) -> None:
        self.throttle.take(nbytes, self._stopping)
        if self._stopping.is_set():
            raise OSError("datanode stopping")

    def _yield_to_clients(self, took: float, urgent: bool) -> None:
        if YIELD_FACTOR > 0 and not urgent and self.foreground():
            # All copies together get at most 1/(1+YIELD_FACTOR) of one stream's time.
            self._stopping.wait(min(0.5, took * YIELD_FACTOR * max(1, self._running)))
        if self._stopping.is_set():
            raise OSError("datanode stopping")

    def push(self, rep: Replica, targets: list[str], urgent: bool = False) -> tuple[list[str], list[str], str]:
        """Send ``rep``'s stored records down a pipeline of ``targets``. -> (stored, failed, error)."""
        chunk_size, _, entries = BlockStore.read_meta(rep)
        if self._stopping.is_set():
            raise OSError("datanode stopping")
        s = frames.connect(targets[0])
        with self._lock:
            self._sockets.add(s)
        try:
            frames.send_msg(s, pb.OpHeader(op=pb.OpHeader.WRITE_BLOCK, block_id=rep.block_id, genstamp=rep.genstamp,
                                           downstream=targets[1:], chunk_size=chunk_size, background=True))
            with open_regular(rep.data_path, buffering=0) as f:
                fd = f.fileno()
                size = os.fstat(fd).st_size
                if size != sum(e.stored_length for e in entries):
                    raise ValueError(f"local replica of block {rep.block_id} is truncated ({size} bytes)")
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
                except (AttributeError, OSError):
                    pass
                off = 0
                try:
                    for e in entries:
                        self._wait_for_bandwidth(e.stored_length)   # the cap is on what goes on the wire
                        t0 = time.monotonic()
                        frames.send_msg(s, pb.ChunkFrame(meta=pb.ChunkMeta(
                            stored_length=e.stored_length, plain_length=e.plain_length, checksum=e.checksum)))
                        if s.sendfile(f, off, e.stored_length) != e.stored_length:
                            raise ValueError(f"local replica of block {rep.block_id} ended early")
                        off += e.stored_length
                        with self._lock:   # block bytes (as the namenode counts) the pipeline will have written
                            self.copied_bytes += e.plain_length * len(targets)
                        self._yield_to_clients(time.monotonic() - t0, urgent)
                    frames.send_msg(s, pb.ChunkFrame(end=True))
                except OSError:
                    if self._stopping.is_set():
                        raise
                    # The receiver may have refused a record and said why before closing.
                    ack = _try_ack(s)
                    if ack is not None:
                        return list(ack.stored), list(ack.failed), ack.error
                    raise
            ack = frames.recv_msg(s, pb.WriteAck)
            return list(ack.stored), list(ack.failed), ack.error
        finally:
            with self._lock:
                self._sockets.discard(s)
            s.close()


def _try_ack(s) -> pb.WriteAck | None:
    try:
        s.settimeout(2.0)
        return frames.recv_msg(s, pb.WriteAck)
    except (OSError, frames.FrameError):
        return None
