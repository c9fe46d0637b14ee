"""Writing a file: chunks are encoded on a thread pool and streamed through
the datanode pipeline by a sender thread, so encoding overlaps sending.

The file is created on the namenode lazily: once ``SMALL_FILE`` bytes are
buffered, or at close. An empty file costs one RPC; a small one costs Create
(which also allocates the first block) and Complete around one pipeline,
sent from the closing thread without starting a sender thread. A block's plaintext chunks are kept
until its pipeline acknowledges it: if the first datanode fails, or every
node does, the block is abandoned and written again (re-encoded: the AAD
binds the block id) to a fresh pipeline without the failed nodes (avoided
for the rest of the write unless they restart: docs/healing.md). A
downstream node that fails only lowers that block's replica count; the
namenode's replication monitor restores it, unless that leaves the block
on too few nodes.

Replace-datanode-on-failure (HDFS's DEFAULT policy, and its
``dfs.namenode.replication.min`` in spirit): a block is acknowledged only
once it is stored on ``required_replicas(r, n)`` nodes, r being the file's
replication and n the nodes its pipeline was given (fewer than r when fewer
datanodes were writable): at r >= 2 at least 2, more than half of r from
r = 4 on (HDFS replaces a node when at most r/2 replicas remain), never more
than n. A pipeline that ends with fewer (two nodes of a chain killed, or
just the middle one: the last node loses its upstream too) is treated as a
failed one: the block is abandoned and written again from its kept
plaintext to a fresh pipeline the namenode chooses without the failed
nodes. Rewriting rather than copying the surviving replica costs one more
send of that block, on a path that is rare, and needs no new protocol. When
no replacement exists (the namenode can only offer fewer nodes) the fresh
pipeline's own n is smaller, so what it stores is accepted: best effort,
with a warning, as SPEC §6 wants writes to go on with fewer live datanodes
than the replication factor; so is a block still short after
``MAX_PIPELINE_ATTEMPTS - 1`` pipelines (flapping nodes), rather than failing
the write. Without this a block stored on 1 of 3 nodes was acknowledged, and
lost with that one node. docs/healing.md has the details.

Blocks stream back to back: a full block's end frame is sent and its ack
is read only once the next block's data is out (``_settle``), so the
pipeline never idles while the datanodes commit. Hence up to two blocks
acked but not yet reported to the namenode (``_unreported``).

A writer dropped without ``close()`` or ``abort()`` (an exception path without
``with``, a forgotten handle) is abandoned, never published: the sender thread
holds it only while it works on a chunk, so it is collected like any object,
and its finalizer warns (ResourceWarning, as an unclosed file does) and hands
the file to the client's lease thread, which stops renewing its lease and
tells the namenode to drop it (AbandonFile); the sender thread ends within
``_IDLE_CHECK`` seconds.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import warnings
import weakref
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

from dfs import errors
from dfs.codec import ChunkCodec, EncodedChunk
from dfs.config import setting
from dfs.rpc import frames
from dfs.rpc.v1 import common_pb2 as cpb
from dfs.rpc.v1 import datatransfer_pb2 as dpb
from dfs.rpc.v1 import namenode_pb2 as pb

log = logging.getLogger(__name__)
MAX_PIPELINE_ATTEMPTS = 5
SMALL_FILE = 1 << 20        # bytes buffered before the file is created on the namenode
_INLINE_CHUNKS = 7          # a file of at most this many chunks is sent by close() itself
_END = object()
_IDLE_CHECK = 1.0           # seconds: how soon an idle sender thread notices its writer was dropped
# How long the first datanode of a block's first pipeline may take to send its setup
# reply (OpHeader.ready_reply: sent as soon as it reads the header) before the writer
# gives it up and writes the block elsewhere: a frozen (SIGSTOPped) head, whose kernel
# still accepts the connection and buffers the data, otherwise cost the block's whole
# ack timeout (17.5 s). A live node answers in milliseconds even on a loaded 2-core
# box; a later pipeline of the same block waits the full data timeout, so a node that
# is only slow costs at most one rewrite of a block, never the write.
SETUP_TIMEOUT = setting("DFS_WRITE_SETUP_SECONDS", 5.0)


def required_replicas(replication: int, allocated: int) -> int:
    """Nodes a block must be stored on before it is acknowledged, for a file of
    ``replication`` whose pipeline was given ``allocated`` nodes: at r >= 2 at
    least 2, r // 2 + 1 from r = 4 on, never more than r nor than the pipeline."""
    r = replication or allocated
    want = 1 if r <= 1 else max(2, r // 2 + 1)
    return max(1, min(want, r, allocated))


class _Block:
    def __init__(self, located: cpb.LocatedBlock):
        self.block_id = located.block.block_id
        self.genstamp = located.block.genstamp
        self.targets = [d.address for d in located.locations]
        self.allocated = len(self.targets)   # pipeline size the namenode could give
        self.pipelines = 1                   # pipelines tried for this block's data
        self.plain: list = []          # plaintext chunks, kept for a retry
        self.length = 0
        self.ready = False             # the pipeline head sent its setup reply
        self.ready_by = 0.0            # ... or is given up at this time (monotonic)
        self.opened = time.monotonic()  # its pipeline was set up (monotonic): what failed was alive then


class _Sending:
    """The sender's work between two chunks: the block being sent, its socket and the
    encodes in flight, and the block draining. Kept apart from the FileWriter so that
    the sender thread, waiting for the next chunk, holds this and not the writer."""

    def __init__(self):
        self.block: _Block | None = None
        self.sock = None
        self.inflight: deque[tuple[Future, int]] = deque()
        # The block whose end was sent and whose acknowledgement is not read yet, with its
        # socket: the next block streams meanwhile (no pipeline drain between blocks).
        self.draining: tuple[_Block, object] | None = None

    def drop(self) -> None:
        """Close what is open: the sending stopped halfway (an error, a writer dropped)."""
        for fut, _ in self.inflight:
            fut.cancel()
        self.inflight.clear()
        for sock in (self.sock, self.draining and self.draining[1]):
            FileWriter._drop(sock)
        self.block = self.sock = self.draining = None


def _sender_thread(writer: weakref.ref, q: queue.Queue, sending: _Sending) -> None:
    """The sender thread's body: ``FileWriter._send_next`` for each chunk queued, the
    writer held only meanwhile. Once the writer is collected (dropped unclosed, its
    finalizer abandoned the file) the thread closes its sockets and ends."""
    while True:
        try:
            item = q.get(timeout=_IDLE_CHECK)
        except queue.Empty:
            item = None
        w = writer()
        if w is None:
            sending.drop()
            return
        if item is not None and not w._send_next(item, sending):
            return
        del w


class FileWriter:
    """A file being written. Not thread-safe: one writer thread, like a file object."""

    def __init__(self, client, path: str, *, overwrite: bool = False, replication: int = 0,
                 block_size: int = 0, mode: int = 0o644, create_parent: bool = True,
                 replaces: int = 0, keep_attributes: bool = False, pool: ThreadPoolExecutor):
        self.client, self.path = client, path
        self._opts = dict(overwrite=overwrite, replication=replication, block_size=block_size,
                          mode=mode, create_parent=create_parent, replaces=replaces,
                          keep_attributes=keep_attributes)
        self._pool = pool
        self.file_id = 0
        self._abandoned = False   # AbandonFile sent (abort() may be called twice)
        self.lease_period = 0.0   # the namenode's, as its Create said (0: not said)
        self.codec: ChunkCodec | None = None
        self.chunk_size = 0
        self.block_size = block_size
        self.replication = replication   # the file's, once created (0: the cluster default)
        self._pending = bytearray()
        self._queue: queue.Queue | None = None   # made when sending begins (an empty file never does)
        self._sender: threading.Thread | None = None
        self._error: BaseException | None = None
        # The sending's failure an abort() followed (fsspec's close flushes what is left
        # into the aborted writer): later writes raise it, not "write to closed file".
        self._failed_with: BaseException | None = None
        # Datanodes to avoid -> when the pipeline they failed was set up (monotonic). The
        # namenode stops avoiding one that has re-registered since (a restart).
        self._excluded: dict[str, float] = {}
        self._refusals: dict[str, str] = {}   # datanode -> why it refused a block (a full disk)
        # Acknowledged blocks whose commit the namenode has not heard yet: (id, length, nodes).
        self._unreported: list[tuple[int, int, list[str]]] = []
        self._sending = _Sending()
        self._first: _Block | None = None     # allocated by Create, not yet used
        self._started = False                 # sending has begun (thread or inline)
        self.closed = False
        self.bytes_written = 0
        self.status = None
        # The file's mtime, sent with Complete (None: the namenode's time of completion).
        # An empty file never opened is made by Create alone, which takes none.
        self.mtime: float | None = None
        # Abandons the file if this writer is collected unclosed (set with the lease).
        self._abandon_if_dropped: weakref.finalize | None = None

    # -- namenode -------------------------------------------------------
    def _named(self, e: errors.DfsError) -> errors.DfsError:
        """``e`` as the user would say it: of this file's path. The namenode names an
        unfinished file by its id, and a missing parent by the parent's path."""
        return e if e.path == self.path else type(e)(e.detail, self.path)

    def _create(self, complete: bool = False):
        try:
            r = self.client.nn.call("Create", pb.CreateRequest(path=self.path, complete=complete,
                                                               add_block=not complete, **self._opts))
        except errors.DfsError as e:   # a missing parent: named by the file, as open(2) does,
            raise self._named(e) from None   # at whatever size it was created
        if complete:
            self.file_id = r.file_id
        else:
            self._adopt(r)
        return r

    def _adopt(self, r) -> None:
        """Take over the file under construction a Create reply describes."""
        self.file_id = r.file_id
        self.codec = ChunkCodec(r.key.key)
        self.chunk_size = r.key.chunk_size
        self.block_size = r.status.block_size
        self.replication = r.status.replication or self.replication
        if r.HasField("block"):
            self._first = _Block(r.block)
        self.lease_period = r.lease_period
        self.client._lease_acquired(self)
        # Not at interpreter exit: the process's end lapses the lease, as a kill would.
        self._abandon_if_dropped = weakref.finalize(self, self.client._writer_dropped, self.file_id, self.path)
        self._abandon_if_dropped.atexit = False

    def _release(self) -> None:
        """Closed or aborted: its lease is no longer renewed, and nothing is left to abandon."""
        if self._abandon_if_dropped is not None:
            self._abandon_if_dropped.detach()
        self.client._lease_released(self)

    @classmethod
    def create_empty_and_open(cls, client, path: str, *, mode: int = 0o644):
        """Create ``path`` as an empty file and, in the same namenode call, begin its
        next version: -> (the empty file's status, a writer of the next version).
        A FUSE create() is followed by writes and a close that replaces the empty
        file; this saves that close a Create call. The next version keeps the empty
        file's attributes as they are at its close (``keep_attributes``: a chmod
        or chown of the file meanwhile holds)."""
        w = cls(client, path, overwrite=True, mode=mode, create_parent=False, keep_attributes=True,
                pool=client._pool)
        r = client.nn.call("Create", pb.CreateRequest(path=path, complete=True, add_block=True,
                                                      overwrite=False, mode=mode, create_parent=False,
                                                      keep_attributes=True))
        w._adopt(r)
        return r.status, w

    def open(self) -> None:
        """Create the file on the namenode now rather than at the first flush (fsspec
        opens it like HDFS's create: a path another client is writing, or an existing
        one with overwrite=False, fails here). Its first block is allocated with it."""
        if self.codec is None and not self.closed:
            self._create()

    def _start(self, closing: bool = False) -> None:
        """Begin sending: create the file if that is not done, and chunk what was buffered."""
        if self.codec is None:
            self._create()
        buffered, self._pending = self._pending, bytearray()
        self._started = True
        if not closing or len(buffered) > _INLINE_CHUNKS * self.chunk_size:
            self._queue = queue.Queue(maxsize=8)
            self._sender = threading.Thread(target=_sender_thread, name="dfs-writer", daemon=True,
                                            args=(weakref.ref(self), self._queue, self._sending))
            self._sender.start()
        else:
            self._queue = queue.Queue()   # unbounded: close() fills it before sending
        self._feed(memoryview(buffered))

    def _add_block(self) -> _Block:
        if self._first is not None:
            block, self._first = self._first, None
            return block
        now = time.monotonic()
        req = pb.AddBlockRequest(file_id=self.file_id, excluded=list(self._excluded),
                                 excluded_age=[now - t for t in self._excluded.values()])
        if self._unreported:
            bid, length, nodes = self._unreported[0]
            req.has_previous = True
            req.previous.CopyFrom(cpb.Block(block_id=bid, length=length))
            req.previous_nodes.extend(nodes)
        if self._sending.draining is not None:
            req.draining = self._sending.draining[0].block_id
        try:
            r = self.client.nn.call("AddBlock", req)
        except errors.NoDatanodesError as e:   # with what the datanodes that refused said
            if e.detail.startswith(errors.NO_DATANODE_LEFT):   # each node this write gave up on
                named, silent = errors.nodes_named(e.detail)      # (those not restarted since)
                raise errors.no_datanode_left(named or list(self._excluded), self._refusals, self.path,
                                              silent) from None
            why = "".join(f"; {a}: {m}" for a, m in self._refusals.items())
            # Every node this write tried refused for want of room: ENOSPC, not EIO (the
            # namenode's own check goes by heartbeats, which lag a disk being filled).
            full = bool(self._refusals) and all("No space left" in m for m in self._refusals.values()) \
                and set(self._excluded) <= set(self._refusals)
            cls = errors.NoSpaceError if full else type(e)   # NoSpaceError stays ENOSPC
            raise cls(e.detail + why, self.path) from None
        except errors.DfsError as e:
            raise self._named(e) from None
        if req.has_previous:
            del self._unreported[0]
        return _Block(r.block)

    # -- writing --------------------------------------------------------
    def write(self, data) -> int:
        if self.closed:
            if self._failed_with is not None:   # aborted because sending failed: that, again
                raise self._failed_with
            raise ValueError("write to closed file")
        self._raise_sender_error()
        view = memoryview(data).cast("B")
        n = len(view)
        self.bytes_written += n
        if not self._started:
            if len(self._pending) + n < SMALL_FILE:
                self._pending += view
                return n
            self._start()
        self._feed(view)
        return n

    def _feed(self, view: memoryview) -> None:
        """Queue whole chunks of ``view``; keep the tail in ``_pending``."""
        if self._pending:
            take = min(len(view), self.chunk_size - len(self._pending))
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) == self.chunk_size:
                self._submit(bytes(self._pending))
                self._pending = bytearray()
        while len(view) >= self.chunk_size:
            piece = view[:self.chunk_size]
            self._submit(piece if isinstance(view.obj, bytes) else bytes(piece))
            view = view[self.chunk_size:]
        if len(view):
            self._pending += view

    def _submit(self, plain) -> None:
        self._raise_sender_error()
        while True:
            try:
                self._queue.put(plain, timeout=1.0)
                return
            except queue.Full:
                self._raise_sender_error()

    def _raise_sender_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _send_loop(self) -> None:
        """Send what is queued, up to its end, from this thread (a small file's close)."""
        while self._send_next(self._queue.get(), self._sending):
            pass

    def _send_next(self, item, st: _Sending) -> bool:
        """Turn one plaintext chunk (or the end, ``_END``) into blocks on the wire;
        False once sending is over (ended, or failed: ``_error``)."""
        try:
            if item is _END:
                if st.block is not None:
                    while st.inflight:
                        st.sock = self._send_one(st.block, st.sock, st.inflight)
                    st.sock = self._settle(st.block, st.sock)
                    self._finish(st.block, st.sock)
                    st.block = st.sock = None
                else:
                    self._settle(None, None)
                return False
            if st.block is None:
                st.block = self._add_block()
                st.sock = self._open(st.block)
            block = st.block
            block.plain.append(item)
            index = len(block.plain) - 1
            st.inflight.append((self._pool.submit(self.codec.encode, item, block.block_id, index), index))
            # Keep a couple of encodes ahead of the socket.
            while len(st.inflight) > 2:
                st.sock = self._send_one(block, st.sock, st.inflight)
            block.length += len(item)
            if block.length >= self.block_size:
                while st.inflight:
                    st.sock = self._send_one(block, st.sock, st.inflight)
                st.sock = self._settle(block, st.sock)
                self._end(block, st.sock)
                st.block = st.sock = None
            return True
        except BaseException as e:   # surfaced to the writing thread
            st.drop()
            # e.g. an AbandonBlock refused after the lease expired
            if getattr(self.client, "_closed", False):   # its codec pool shut: "cannot schedule
                # new futures after shutdown" blamed a datanode
                self._error = errors.DfsError("its client was closed while it was being written", self.path)
            else:
                self._error = self._named(e) if isinstance(e, errors.DfsError) else \
                    errors.DatanodeError(str(e), self.path)
            while True:   # unblock a producer waiting on a full queue
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            return False

    def _open(self, block: _Block):
        for _attempt in range(MAX_PIPELINE_ATTEMPTS):
            if not block.targets:
                raise errors.NoDatanodesError(path=self.path)
            try:
                block.opened = time.monotonic()
                s = frames.connect(block.targets[0])
                frames.send_msg(s, dpb.OpHeader(op=dpb.OpHeader.WRITE_BLOCK, block_id=block.block_id,
                                                genstamp=block.genstamp, downstream=block.targets[1:],
                                                chunk_size=self.chunk_size,
                                                # a small file's one block: latency, not bandwidth
                                                fanout=self._sender is None, ready_reply=True,
                                                # each node's deadline for its downstream's
                                                setup_ms=int(SETUP_TIMEOUT * 1000) if block.pipelines == 1 else 0))
                wait = SETUP_TIMEOUT if block.pipelines == 1 else frames.DATA_TIMEOUT
                block.ready, block.ready_by = False, time.monotonic() + wait
                s.settimeout(min(wait, frames.DATA_TIMEOUT))
                return s
            except OSError:
                block = self._replace(block, block.targets[0])
        raise errors.DatanodeError("could not open a write pipeline", self.path)

    def _send_one(self, block: _Block, sock, inflight: deque):
        fut, index = inflight.popleft()
        enc: EncodedChunk = fut.result()
        frame = dpb.ChunkFrame(meta=dpb.ChunkMeta(stored_length=enc.stored_length,
                                                   plain_length=enc.plain_length, checksum=enc.checksum))
        try:
            self._await_ready(block, sock, wait=False)
            frames.send_msg(sock, frame, *enc.parts)
            return sock
        except OSError:
            return self._retry_block(block, sock, inflight)

    def _await_ready(self, block: _Block, sock, wait: bool = True) -> None:
        """Read the pipeline head's setup reply: when it has come (``wait``: waiting for
        it until ``block.ready_by``). Raises OSError once that time has passed without it."""
        if block.ready:
            return
        try:
            block.ready = frames.read_setup_reply(sock, block.ready_by, wait, block.targets[0])
        except TimeoutError:
            log.warning("datanode %s did not answer the pipeline setup of block %d within %.1f s: "
                        "writing the block elsewhere", block.targets[0], block.block_id,
                        SETUP_TIMEOUT if block.pipelines == 1 else frames.DATA_TIMEOUT)
            raise

    def _finish(self, block: _Block, sock) -> None:
        """End ``block`` and wait for its acknowledgement, rewriting it elsewhere on failure."""
        for _attempt in range(MAX_PIPELINE_ATTEMPTS):
            try:
                frames.send_msg(sock, dpb.ChunkFrame(end=True))
                failed = self._ack(block, sock)
            except OSError:
                failed = block.targets[:1]
            if failed is None:
                return
            sock = self._rewrite(block, sock, failed)
        raise errors.DatanodeError("block write failed on every pipeline tried", self.path)

    def _end(self, block: _Block, sock) -> None:
        """End ``block`` without waiting: its acknowledgement is read by ``_settle``
        once the next block is sent (a send error shows there as a failed ack)."""
        try:
            frames.send_msg(sock, dpb.ChunkFrame(end=True))
        except OSError:
            pass
        self._sending.draining = (block, sock)

    def _ack(self, block: _Block, sock) -> list[str] | None:
        """Read a block's acknowledgement: None when stored, else the nodes to avoid."""
        try:
            self._await_ready(block, sock)
            # longer than any node of the pipeline waits for the nodes after it, so the
            # one before a silent node names it (frames.ack_timeout)
            sock.settimeout(frames.ack_timeout(len(block.targets)))
            ack = frames.recv_msg(sock, dpb.WriteAck)
        except frames.OlderDatanodeError as e:   # said again if the write fails for want of nodes
            self._refusals[block.targets[0]] = str(e)
            return block.targets[:1]
        except (OSError, frames.FrameError):
            return block.targets[:1]
        finally:
            sock.close()
        if not ack.stored:
            failed = list(ack.failed) or block.targets[:1]
            if ack.error:
                self._refusals[failed[0]] = ack.error
            return failed
        if ack.failed:
            self._exclude(ack.failed, block)
        need = required_replicas(self.replication, block.allocated)
        if len(ack.stored) < need and block.pipelines < MAX_PIPELINE_ATTEMPTS - 1:
            # Too few copies to acknowledge: write the block again, elsewhere.
            log.warning("block %d stored on only %d of %d nodes (failed: %s), %d needed; "
                        "writing it to a new pipeline", block.block_id, len(ack.stored),
                        len(block.targets), ", ".join(ack.failed) or "?", need)
            return list(ack.failed)
        if len(ack.stored) < len(block.targets):
            log.warning("block %d stored on %d of %d nodes (failed: %s)", block.block_id,
                        len(ack.stored), len(block.targets), ", ".join(ack.failed) or "?")
        if len(ack.stored) < min(self.replication or 1, 2):
            # No replacement was possible (or the tries ran out): best effort, as with
            # fewer live datanodes than the replication factor (SPEC §6).
            log.warning("block %d has %d replica only (replication %d): no replacement datanode "
                        "left after %d pipeline(s); accepted", block.block_id, len(ack.stored),
                        self.replication, block.pipelines)
        self._unreported.append((block.block_id, block.length, list(ack.stored)))
        return None

    def _settle(self, block: _Block | None, sock):
        """Read the draining block's acknowledgement. When its pipeline failed,
        ``block`` (sent, not ended) is dropped, the draining block is written
        again and waited for, then ``block`` is sent again after it. Returns
        ``block``'s socket."""
        if self._sending.draining is None:
            return sock
        prev, psock = self._sending.draining
        self._sending.draining = None
        known = dict(self._excluded)
        failed = self._ack(prev, psock)
        if failed is None:
            named = [a for a, t in self._excluded.items() if known.get(a) != t]
            if block is not None and sock is not None and set(named) & set(block.targets):
                # The draining block's ack names a node this block's pipeline runs
                # through too (allocated before the ack came): send this block again
                # elsewhere now, instead of waiting out its own ack timeout on a frozen
                # node after the first one (a frozen datanode cost dd 12.5 s + 17.5 s).
                log.warning("block %d: its pipeline has %s, which failed block %d; "
                            "writing it to a new pipeline", block.block_id, ", ".join(named),
                            prev.block_id)
                return self._rewrite(block, sock, [])
            return sock
        if block is not None:   # the namenode abandons only a file's last block
            self._drop(sock)
            self.client.nn.call("AbandonBlock", pb.AbandonBlockRequest(file_id=self.file_id,
                                                                       block_id=block.block_id))
        self._finish(prev, self._rewrite(prev, None, failed))
        if block is None:
            return None
        return self._rewrite(block, None, [], abandon=False)

    @staticmethod
    def _drop(sock) -> None:
        try:
            if sock is not None:
                sock.close()
        except OSError:
            pass

    def _retry_block(self, block: _Block, sock, inflight: deque):
        """The head of the pipeline broke mid-block: start the block over elsewhere."""
        for fut, _ in inflight:
            fut.cancel()
        inflight.clear()
        sock = self._rewrite(block, sock, block.targets[:1])
        return sock

    def _replace(self, block: _Block, failed, abandon: bool = True) -> _Block:
        failed = [failed] if isinstance(failed, str) else failed
        self._exclude(failed, block)
        if failed:
            log.warning("pipeline for block %d failed at %s; retrying elsewhere", block.block_id, ", ".join(failed))
        if abandon:
            self.client.nn.call("AbandonBlock", pb.AbandonBlockRequest(file_id=self.file_id,
                                                                       block_id=block.block_id))
        fresh = self._add_block()
        fresh.plain, fresh.length, fresh.pipelines = block.plain, block.length, block.pipelines + 1
        block.__dict__.update(fresh.__dict__)
        return block

    def _exclude(self, failed: list[str], block: _Block) -> None:
        """Avoid ``failed`` nodes of ``block``'s pipeline from now on, unless they restart.
        As of the pipeline's setup, not of now: a failure read late (a draining block's
        ack) may come after the node was already back as a new process."""
        for a in failed:
            self._excluded[a] = max(self._excluded.get(a, 0.0), block.opened)

    def _rewrite(self, block: _Block, sock, failed: list[str], abandon: bool = True):
        """Abandon ``block``'s pipeline and send every chunk so far to a new one
        (``abandon=False``: the namenode has already dropped the block)."""
        self._drop(sock)
        for attempt in range(MAX_PIPELINE_ATTEMPTS):
            self._replace(block, failed, abandon=abandon or attempt > 0)
            sock = self._open(block)
            try:
                for i, plain in enumerate(block.plain):
                    enc = self.codec.encode(plain, block.block_id, i)
                    self._await_ready(block, sock, wait=False)
                    frames.send_msg(sock, dpb.ChunkFrame(meta=dpb.ChunkMeta(
                        stored_length=enc.stored_length, plain_length=enc.plain_length,
                        checksum=enc.checksum)), *enc.parts)
                return sock
            except OSError:
                failed = block.targets[:1]
        raise errors.DatanodeError("block write failed on every pipeline tried", self.path)

    # -- closing --------------------------------------------------------
    def close(self):
        if self.closed:
            return self.status
        self.closed = True
        try:
            if self.codec is None and not self._pending:
                r = self._create(complete=True)
                self.status = r.status
                return self.status
            if not self._started:
                self._start(closing=True)
            if self._pending:
                self._submit(bytes(self._pending))
                self._pending = bytearray()
            self._queue.put(_END)
            if self._sender is None:
                self._send_loop()          # a small file: no thread to start and hand over to
            else:
                self._sender.join()
            self._raise_sender_error()
            # A first block allocated with the file and never written (an empty file
            # opened by fsspec) is dropped by Complete itself: no AbandonBlock call.
            self._first = None
            req = pb.CompleteRequest(file_id=self.file_id, keep_attributes=self._opts["keep_attributes"])
            if self.mtime is not None:
                req.has_mtime, req.mtime = True, self.mtime
            if self._unreported:
                bid, length, nodes = self._unreported[-1]
                req.has_last = True
                req.last.CopyFrom(cpb.Block(block_id=bid, length=length))
                req.last_nodes.extend(nodes)
            if len(self._unreported) > 1:
                bid, length, nodes = self._unreported[-2]
                req.has_previous = True
                req.previous.CopyFrom(cpb.Block(block_id=bid, length=length))
                req.previous_nodes.extend(nodes)
            self.status = self.client.nn.call("Complete", req).status
            return self.status
        except errors.DfsError as e:
            self.abort()
            raise self._named(e) from None
        except BaseException:
            self.abort()
            raise
        finally:
            self._release()

    def _stop_sending(self) -> None:
        if not self.closed:   # (close() sets closed first: a write after it is io's ValueError)
            self._failed_with = self._error
        self.closed = True
        if self._sender is not None and self._sender.is_alive():
            self._error = self._error or errors.DfsError("aborted")
            try:
                self._queue.put_nowait(_END)
            except queue.Full:
                pass

    def abort(self) -> None:
        """Give up: the file never appears (the namenode drops it when the lease lapses)."""
        self._stop_sending()
        if self.file_id and not self._abandoned:   # once: the mount aborts again after close's own
            self._abandoned = True
            try:
                # budget, not timeout: a timeout is one try's, and a namenode that is down is
                # retried for retry_seconds -- a close() failing in an outage took 22.5 s
                # (Complete 7.5 s, then two aborts of 7.5 s) where the docs say ~8 s. The
                # lease lapsing drops the file anyway.
                self.client.nn.call("AbandonFile", pb.AbandonBlockRequest(file_id=self.file_id), budget=2.0)
            except errors.DfsError:
                pass
        self._release()

    def abandon_later(self) -> None:
        """abort() for a finalizer: no lock taken, no call made here (a collection may run
        on any thread, holding anything; AbandonFile waits out a namenode outage: 7.5 s
        per dropped fsspec handle). The client's lease thread tells the namenode."""
        self._stop_sending()
        if self._abandon_if_dropped is not None and self._abandon_if_dropped.detach() is not None:
            self.client._lease_jobs.put(self.file_id)   # (its lease is dropped there)

    def __del__(self):
        # One holding a lease warns from its finalizer; one dropped before its file existed
        # on the namenode (less than SMALL_FILE written) discarded its bytes silently.
        if not getattr(self, "closed", True) and getattr(self, "_pending", None) \
                and getattr(self, "_abandon_if_dropped", 0) is None:
            warnings.warn(f"dfs: {self.path} was being written and never closed: "
                          f"{len(self._pending)} bytes discarded", ResourceWarning, stacklevel=1)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
