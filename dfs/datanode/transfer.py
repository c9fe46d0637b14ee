"""The block data server: receive-store-forward for writes, sendfile for reads.

One operation per connection, each on a thread of its own. Threads are
reused: every idle one waits in ``accept`` itself, and the one that takes a
connection starts another first if none would be left waiting, so a slow
client never holds up the next one. A small block's write used to pay for a
thread's creation and exit and for the accepting thread's hand-off (a
context switch, costly on this VM); now the kernel wakes a waiting thread
directly: ~25% less datanode CPU per 4 KiB block (0.87 -> 0.63 ms). At most
``IDLE_THREADS`` idle threads are kept. A write verifies
each record's xxh3 before it is forwarded or stored, so a damaged record
never spreads down the pipeline; a node that cannot reach its downstream
keeps storing and reports the failure in its acknowledgement, so the writer
is told which replicas exist instead of losing the block.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import socket
import threading
import time

from dfs.codec import checksum_of
from dfs.datanode.blockstore import BlockStore, ChunkEntry, StorageError, open_regular
from dfs.datanode.ioerrors import not_the_replica
from dfs.rpc import frames
from dfs.rpc.v1 import datatransfer_pb2 as pb
from dfs.tuning import drop_cache

log = logging.getLogger(__name__)
# A read of at least this much file data (plaintext) in one request is a scan:
# a streaming client asks 32 MiB at a time, the FUSE mount's read-ahead 16
# chunks, ranged readers (Parquet footers, column chunks) usually less. Its
# pages leave the page cache once sent, as HDFS's drop-behind reads do. A scan
# does not evict what ranged readers keep hot, and the cache's pages are
# recycled at once instead of fresh memory being taken for each block
# (docs/transport.md).
DROP_BEHIND_MIN = 16 << 20
_DROP_PIECE = 8 << 20
IDLE_THREADS = 16   # connection threads kept waiting in accept when idle
# Connections handled at once, beyond which new ones are turned away (closed at once:
# the client goes to another replica or pipeline), as HDFS's
# dfs.datanode.max.transfer.threads (4096). Without it 1,000 idle connections held
# 1,000 threads, and under a memory limit new ones sat unanswered in the backlog.
MAX_TRANSFER_THREADS = 4096
# Errors of a sendfile that come from reading the replica, not from the socket: an I/O
# error, or the file system finding its own structures damaged (ext4: EFSCORRUPTED =
# EUCLEAN, EFSBADCRC = EBADMSG).
_UNREADABLE = (errno.EIO, errno.EUCLEAN, errno.EBADMSG)


class TransferServer:
    def __init__(self, store: BlockStore, listen: str, address: str, on_received,
                 on_corrupt=lambda block_id: None, on_lost=lambda rep, what: None):
        self.store = store
        self.address = address
        self.on_received = on_received        # callback(Replica)
        self.on_corrupt = on_corrupt          # a replica found bad while serving it: report it now
        self.on_lost = on_lost                # a replica whose files are gone (presence.py's rule)
        host, _, port = listen.rpartition(":")
        host = host.strip("[]")   # [::1]:9866
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self.sock = socket.create_server((host, int(port)), family=family, backlog=128, reuse_port=False)
        except OSError as e:   # the namenode's words for it (rpc/channel.py)
            raise OSError(e.errno, f"cannot listen on {listen}: {os.strerror(e.errno) if e.errno else e}") from None
        self.port = self.sock.getsockname()[1]
        self.xceivers = 0
        self.foreground = 0        # of which client reads and writes (not re-replication copies)
        self._lock = threading.Lock()
        self._buffers: list[bytearray] = []
        self._closed = False
        self._accepting = 0        # threads waiting in accept (or about to)
        self._turned_away_logged = -1e9
        self._why_turned_away = ""
        self._dropper = _DropLater()

    def serve_forever(self) -> None:
        with self._lock:
            self._accepting += 1
        self._serve()

    def _serve(self) -> None:
        """Accept and handle connections until there are enough idle threads
        (counted in ``_accepting``, which includes this one on entry)."""
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                if self._closed:
                    return
                time.sleep(0.01)   # e.g. out of file descriptors: do not spin
                continue
            with self._lock:
                full = self.xceivers >= MAX_TRANSFER_THREADS
                spawn = self._accepting == 1   # this was the last one waiting: keep one waiting
                if not full and not spawn:
                    self._accepting -= 1
            if full:   # this thread stays in accept
                self._turn_away(conn, f"{MAX_TRANSFER_THREADS} connections in hand")
                continue
            if spawn and not self._spawn_acceptor():
                # No thread to take over accepting (out of memory or of threads): turn
                # this connection away and stay the one waiting in accept. Handling it
                # here left nobody accepting, and a failed start used to kill this
                # thread with the port's last acceptor counted: the port never
                # answered again while the node beat on, live.
                self._turn_away(conn, "")
                time.sleep(0.01)
                continue
            self._handle(conn)
            with self._lock:
                if self._accepting >= IDLE_THREADS:
                    return
                self._accepting += 1

    def _spawn_acceptor(self) -> bool:
        """Start a thread to wait in accept in this one's place. -> False if none can start."""
        try:
            threading.Thread(target=self._serve, daemon=True, name="xceiver").start()
            return True
        except RuntimeError as e:   # "can't start new thread": ENOMEM, EAGAIN (a limit)
            self._why_turned_away = f"cannot start a connection thread ({e})"
            return False

    def _turn_away(self, conn: socket.socket, why: str) -> None:
        """Close a connection unanswered; said in the log once per 10 s."""
        conn.close()
        why = why or self._why_turned_away
        now = time.monotonic()
        if now - self._turned_away_logged > 10:
            self._turned_away_logged = now
            log.warning("turning connections away: %s", why)

    def close(self) -> None:
        self._closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)   # wakes the threads waiting in accept
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def _handle(self, conn: socket.socket) -> None:
        with self._lock:
            self.xceivers += 1
        try:
            conn.settimeout(frames.DATA_TIMEOUT)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            hdr = frames.recv_msg(conn, pb.OpHeader)
            fg = not hdr.background
            if fg:
                with self._lock:
                    self.foreground += 1
            try:
                if hdr.op == pb.OpHeader.WRITE_BLOCK:
                    self._write(conn, hdr)
                elif hdr.op == pb.OpHeader.READ_BLOCK:
                    self._read(conn, hdr)
                else:
                    frames.send_msg(conn, pb.ReadReply(error=f"unknown op {hdr.op}"))
            finally:
                if fg:
                    with self._lock:
                        self.foreground -= 1
        except (OSError, frames.FrameError) as e:
            log.debug("transfer connection failed: %s", e)
        except Exception:
            log.exception("transfer failed")
        finally:
            with self._lock:
                self.xceivers -= 1
            conn.close()

    # -- write ----------------------------------------------------------
    def _take_buffer(self, size: int) -> bytearray:
        """A receive buffer from the pool: a fresh 1 MiB bytearray is zero-filled, which
        costs more than the rest of a small block's receive."""
        with self._lock:
            for i, b in enumerate(self._buffers):
                if len(b) >= size:
                    return self._buffers.pop(i)
        return bytearray(size)

    def _give_buffer(self, buf: bytearray) -> None:
        with self._lock:
            if len(self._buffers) < 16:
                self._buffers.append(buf)

    def _open_downstream(self, hdr: pb.OpHeader, failed: list[str],
                         waiting: dict[str, float]) -> list[tuple[str, socket.socket]]:
        """Connections to forward to: the next node of the chain (which forwards to the
        rest), or with ``fanout`` every downstream node directly. A small block's write
        is latency-bound, and a chain adds a hop of latency per node. Asked for a setup
        reply, this node asks each of them for one, due by the time in ``waiting``."""
        out: list[tuple[str, socket.socket]] = []
        setup = hdr.setup_ms / 1000 if hdr.setup_ms else frames.DATA_TIMEOUT
        rest = list(hdr.downstream)
        while rest:
            target, rest = rest[0], rest[1:]
            try:
                s = frames.connect(target)
                frames.send_msg(s, pb.OpHeader(op=pb.OpHeader.WRITE_BLOCK, block_id=hdr.block_id,
                                               genstamp=hdr.genstamp, downstream=[] if hdr.fanout else rest,
                                               chunk_size=hdr.chunk_size, background=hdr.background,
                                               ready_reply=hdr.ready_reply, setup_ms=hdr.setup_ms))
                if hdr.ready_reply:
                    waiting[target] = time.monotonic() + setup
                    s.settimeout(min(setup, frames.DATA_TIMEOUT))
                out.append((target, s))
                if not hdr.fanout:
                    break
            except OSError:
                failed.append(target)
        return out

    @staticmethod
    def _await_ready(target: str, sock: socket.socket, waiting: dict[str, float], wait: bool) -> None:
        """Read a downstream node's setup reply when it has come (``wait``: waiting for it
        until its due time); past that time without it, raise OSError: the node is frozen
        or hung, and is given up (as the writer gives up a silent pipeline head)."""
        due = waiting.get(target)
        if due is None:
            return
        try:
            if frames.read_setup_reply(sock, due, wait, target):
                del waiting[target]
        except TimeoutError:
            log.warning("downstream datanode %s did not answer the pipeline setup in time: "
                        "storing on without it", target)
            raise

    def _forward(self, downs: list, failed: list[str], waiting: dict[str, float], *msg) -> None:
        """Send to every downstream; one that fails is dropped and reported, not fatal."""
        for d in list(downs):
            try:
                self._await_ready(d[0], d[1], waiting, wait=False)
                frames.send_msg(d[1], *msg)
            except OSError:
                failed.append(d[0])
                d[1].close()
                downs.remove(d)

    @staticmethod
    def _close_all(downs: list) -> None:
        for _, d in downs:
            d.close()

    @staticmethod
    def _drain(conn: socket.socket, buf: bytearray) -> None:
        """Read and drop the rest of a refused block, up to its end frame, so that the
        writer reads the refusal and its reason: closing with its data unread would
        reset the connection, and the acknowledgement would be lost with it."""
        while True:
            frame = frames.recv_msg(conn, pb.ChunkFrame)
            if frame.end:
                return
            n = frame.meta.stored_length
            if n > len(buf):
                buf = bytearray(n)
            frames.recv_into(conn, memoryview(buf)[:n])

    def _write(self, conn: socket.socket, hdr: pb.OpHeader) -> None:
        failed: list[str] = []
        if hdr.ready_reply:
            # Before anything that may block: it only says this process reads its
            # connections (the writer times out a frozen head on it, docs/transport.md).
            frames.send_msg(conn, pb.WriteAck(ready=True))
        try:
            writer = self.store.writer(hdr.block_id, hdr.genstamp, hdr.chunk_size)
        except StorageError as e:   # the disk refuses new files (read-only, failed): say so
            log.warning("rejected block %d: %s", hdr.block_id, e)
            buf = self._take_buffer(hdr.chunk_size + 1024)
            try:
                self._drain(conn, buf)
            finally:
                self._give_buffer(buf)
            frames.send_msg(conn, pb.WriteAck(error=str(e), failed=[self.address]))
            return
        waiting: dict[str, float] = {}    # downstream node -> when its setup reply is due
        downs = self._open_downstream(hdr, failed, waiting)
        buf = self._take_buffer(hdr.chunk_size + 1024)
        index = 0
        ended = False
        try:
            while True:
                frame = frames.recv_msg(conn, pb.ChunkFrame)
                if frame.end:
                    ended = True
                    break
                m = frame.meta
                if m.stored_length > len(buf):
                    buf = bytearray(m.stored_length)
                view = memoryview(buf)[:m.stored_length]
                frames.recv_into(conn, view)
                if checksum_of(view) != m.checksum:
                    raise ValueError(f"checksum mismatch in chunk {index} of block {hdr.block_id}")
                if downs:
                    self._forward(downs, failed, waiting, frame, view)
                writer.write(ChunkEntry(m.stored_length, m.plain_length, m.checksum), view)
                index += 1
            if downs:
                self._forward(downs, failed, waiting, pb.ChunkFrame(end=True))
            replica = writer.finalize()
        except (ValueError, StorageError) as e:
            writer.abort()
            self._close_all(downs)
            log.warning("rejected block %d: %s", hdr.block_id, e)
            if isinstance(e, StorageError) and not ended:
                self._drain(conn, buf)   # a full disk mid-block: the writer hears why
            frames.send_msg(conn, pb.WriteAck(error=str(e), failed=[self.address]))
            return
        except BaseException:
            writer.abort()
            self._close_all(downs)
            raise
        finally:
            self._give_buffer(buf)
        stored = [self.address]
        # a chain's next node answers for every node after it (fanout: for itself)
        wait = frames.ack_timeout(1 if hdr.fanout else len(hdr.downstream))
        for target, d in downs:
            try:
                self._await_ready(target, d, waiting, wait=True)
                d.settimeout(wait)
                ack = frames.recv_msg(d, pb.WriteAck)
                stored += list(ack.stored)
                failed += list(ack.failed)
            except (OSError, frames.FrameError):
                failed.append(target)
            finally:
                d.close()
        self.on_received(replica)
        frames.send_msg(conn, pb.WriteAck(stored=stored, failed=failed))

    # -- read -----------------------------------------------------------
    def _bad(self, conn: socket.socket, rep, problem: str) -> None:
        """The replica being served is damaged: never serve it again, report it in a
        heartbeat sent at once (not at the scanner's next pass), tell the reader."""
        if self.store.get(rep.block_id) is rep and not rep.corrupt:
            log.warning("replica of block %d is corrupt: %s", rep.block_id, problem)
            self.store.mark_corrupt(rep.block_id)
            self.on_corrupt(rep.block_id)
        frames.send_msg(conn, pb.ReadReply(error=f"replica is corrupt: {problem}"))

    def _gone(self, conn: socket.socket, rep, e: OSError) -> None:
        """A file of the replica being served vanished (removed by hand): it is lost."""
        if self.store.drop_lost(rep):
            log.warning("replica of block %d is gone from disk (found by a read: %s)", rep.block_id,
                        e.strerror or e)
            self.on_lost(rep, "found by a read")
        frames.send_msg(conn, pb.ReadReply(error="replica is missing from disk"))

    def _read(self, conn: socket.socket, hdr: pb.OpHeader) -> None:
        rep = self.store.get(hdr.block_id)
        if rep is None or rep.corrupt:
            frames.send_msg(conn, pb.ReadReply(error="no such replica" if rep is None else "replica is corrupt"))
            return
        if rep.genstamp < hdr.genstamp:   # an older generation of the block (HDFS: never served)
            frames.send_msg(conn, pb.ReadReply(
                error=f"stale replica: generation stamp {rep.genstamp}, the block's is {hdr.genstamp}"))
            return
        try:
            chunk_size, length, entries = BlockStore.read_meta(rep)
            f = open_regular(rep.data_path)
        except FileNotFoundError as e:
            self._gone(conn, rep, e)
            return
        except ValueError as e:                 # the meta file fails its checksum or header
            self._bad(conn, rep, str(e))
            return
        except OSError as e:
            if not_the_replica(e):              # e.g. out of file descriptors: not the replica's fault
                frames.send_msg(conn, pb.ReadReply(error=f"cannot open the replica: {e.strerror or e}"))
            else:                               # EIO, a directory in its place...: it cannot be read back
                self._bad(conn, rep, str(e))
            return
        first = hdr.first_chunk
        last = min(hdr.last_chunk, len(entries) - 1)   # clients ask 0xFFFFFFFF for "to the end"
        offset = sum(e.stored_length for e in entries[:first])
        want = entries[first:last + 1]
        count = sum(e.stored_length for e in want)
        with f:
            if os.fstat(f.fileno()).st_size < offset + count:
                self._bad(conn, rep, "data file is truncated")
                return
            frames.send_msg(conn, pb.ReadReply(
                first_chunk=first, block_length=length, chunk_size=chunk_size,
                chunks=[pb.ChunkMeta(stored_length=e.stored_length, plain_length=e.plain_length,
                                     checksum=e.checksum) for e in want]))
            try:
                if count and sum(e.plain_length for e in want) >= DROP_BEHIND_MIN:
                    self._send_dropping(conn, f, offset, count)
                elif count:
                    conn.sendfile(f, offset, count)
            except OSError as e:
                if e.errno not in _UNREADABLE:
                    raise                       # the reader went away: nothing wrong here
                # The disk cannot read the replica back: never serve it again, report it.
                # The reader sees its stream end early and goes on from another replica.
                if self.store.get(rep.block_id) is rep and not rep.corrupt:
                    log.warning("replica of block %d is corrupt: %s", rep.block_id, e)
                    self.store.mark_corrupt(rep.block_id)
                    self.on_corrupt(rep.block_id)

    def _send_dropping(self, conn: socket.socket, f, offset: int, count: int) -> None:
        """sendfile in pieces; a piece's pages are dropped once the next one is queued
        (by then it has mostly left the socket buffer). A second, later pass drops
        what was still in flight and what kernel read-ahead brought in past the end."""
        start, end, prev = offset, offset + count, None
        while offset < end:
            n = min(_DROP_PIECE, end - offset)
            conn.sendfile(f, offset, n)
            if prev is not None:
                drop_cache(f.fileno(), prev, offset - prev)
            prev, offset = offset, offset + n
        self._dropper.later(f.name, start, 0)   # 0: to the end of the file


class _DropLater:
    """Drops page-cache ranges after a delay, on a thread of its own."""

    def __init__(self, delay: float = 1.0):
        self.delay = delay
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._run, name="drop-behind", daemon=True).start()

    def later(self, path: str, offset: int, nbytes: int) -> None:
        self._q.put((time.monotonic() + self.delay, path, offset, nbytes))

    def _run(self) -> None:
        while True:
            due, path, offset, nbytes = self._q.get()
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue   # deleted meanwhile
            except Exception:   # noqa: BLE001 - a bug must not end drop-behind for good
                log.exception("drop-behind of %r", path)
                continue
            try:
                drop_cache(fd, offset, nbytes)
            finally:
                os.close(fd)
