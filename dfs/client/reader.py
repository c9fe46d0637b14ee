"""Reading a file: nearest replica first, failover on any error, never wrong bytes.

A read asks a datanode for just the chunks covering the range. Every record
is checked (xxh3 as it arrives, then the AES-GCM tag) before its plaintext
is handed on; a record that fails is reported to the namenode and the read
goes on from the next replica at the chunk where it stopped.

Records are received into reused buffers (``recv_into``, no new zero-filled
1 MiB objects). Three ways through, one failover logic (``_records``):

- ``fetch_chunks`` / unprefetched ``iter_range``: a segment at a time on the
  caller's thread, raw records decrypted there as they arrive (each chunk is
  handed on at once), compressed ones on the pool.
- ``iter_range`` of more than one segment: a read-ahead thread receives the
  records and decodes raw ones itself (AES-GCM costs less than a hand-off)
  and compressed ones on the pool; the next request is sent before the
  current one is drained, so a datanode is always sending.
- ``copy_to`` a sink that lends its buffer (``dfs.directio.DirectFile``,
  what ``dfs get`` writes big files with): two read-ahead threads receive
  alternate segments (two datanodes' disks at once) and the caller's thread
  decrypts raw chunks straight into the page-aligned buffer the disk thread
  writes from (compressed ones on the pool), so the plaintext is never
  copied and disk, network and decryption all overlap.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from dfs import errors
from dfs.codec import ChunkCodec, checksum_of
from dfs.codec.chunk import FLAG_ZSTD, OVERHEAD
from dfs.config import INT64_MAX, bare_host, setting
from dfs.rpc import frames
from dfs.rpc.v1 import datatransfer_pb2 as dpb
from dfs.rpc.v1 import namenode_pb2 as pb

log = logging.getLogger(__name__)
SEGMENT_CHUNKS = 16
STREAM_BYTES = 32 << 20          # one request of a streamed read (the next is sent while it drains)
# Block locations are loaded as reads need them, plus this many blocks ahead (HDFS's
# dfs.client.read.prefetch.size): a small read of a file of 20,000 blocks was answered
# with all of them (megabytes, built under the namenode's lock), a sequential reader asks
# once per this many blocks.
AHEAD_BLOCKS = 10
STREAM_WINDOW = 1 << 30          # a streamed read loads the locations of this many bytes at a time
_ALL = 0xFFFFFFFF
_AHEAD = 32                      # decoded records queued ahead of an iter_range consumer
COPY_LANES = 2                   # copy_to receives two segments at once (two datanodes' disks)...
_COPY_DEPTH = 8                  # ...each up to this many records ahead of the decryption
_ZSTD_IN_FLIGHT = 4              # compressed chunks copy_to has on the pool at once
_FREE_RECORDS = 64               # receive buffers kept for reuse, per process
_free_records: list[bytearray] = []
# A replica that sends nothing for this long is given up for the next one, when there is a
# next one (a frozen datanode: SIGSTOP, a hung disk); the last one left gets DATA_TIMEOUT.
FAILOVER_TIMEOUT = setting("DFS_READ_FAILOVER_SECONDS", 4.0)


@dataclass(slots=True)
class _Record:
    """One received record, its xxh3 checked; ``view`` lies in ``buf``, which goes back
    to the free list when done."""
    bid: int
    boff: int           # byte offset of the block in the file
    index: int          # chunk index in the block
    addr: str
    plain_length: int
    buf: bytearray
    view: memoryview


class FileReader:
    def __init__(self, client, path: str, *, pool: ThreadPoolExecutor, start: int = 0,
                 length: int | None = None):
        """Block locations are loaded as reads need them, never all at once: first those
        of the blocks overlapping ``start``/``length`` (a ranged read; a Dask task reading
        one block of a huge file), without ``length`` the block holding ``start`` and
        AHEAD_BLOCKS more; then those of each range a read leaves them for, plus AHEAD_BLOCKS."""
        self.client, self.path = client, path
        self._pool_obj, self._pool_pid = pool, os.getpid()
        self._lock_obj, self._lock_pid = threading.Lock(), os.getpid()
        self.status = None
        # The loaded blocks in file order, and their offsets: runs of consecutive blocks
        # (a read here, another there). One tuple, replaced whole: readers need no lock.
        self._index: tuple[list, list[int]] = ([], [])
        self._hosts: set[str] = set()
        self._dead: set[str] = set()
        if length is None:
            self._load(start, 1, AHEAD_BLOCKS)
        else:
            self._load(start, max(1, length), 0)

    def _load(self, offset: int, length: int, ahead: int) -> None:
        # After the first load, by the opened file's inode id, not its path: a file renamed
        # (or a directory above it: the FUSE mount hides an unlinked open file so) is read
        # on, and one whose name another file took is read to its end while its blocks
        # last (a FUSE handle commits a modified file from the version it opened).
        opened = self.status.inode_id if self.status is not None else 0
        try:
            r = self.client.nn.call("GetBlockLocations", pb.GetBlockLocationsRequest(
                path=self.path, offset=min(offset, INT64_MAX), length=min(length, INT64_MAX), ahead=ahead,
                inode_id=opened))
        except errors.DfsFileNotFoundError:
            if opened:      # deleted (or replaced, and the old one deleted) since we opened it
                raise errors.DfsFileNotFoundError("file changed while being read", self.path) from None
            raise
        if self.status is not None and r.status.inode_id != self.status.inode_id:
            # Another file now has the name (replaced, or renamed over): this reader
            # stays with the one it opened, which is gone - every later read says so,
            # rather than reading on in the new file's bytes (with the old one's size).
            raise errors.DfsFileNotFoundError("file changed while being read", self.path)
        if self.status is None:
            self.chunk_size = r.key.chunk_size or 1 << 20
            self.codec = ChunkCodec(r.key.key) if r.key.key else None
        self.status = r.status
        self.size = r.status.length
        new = list(r.blocks)
        if self._hosts:
            for b in new:
                _put_first(b, self._hosts)
        self._index = _merged(self._index, new)

    @property
    def blocks(self) -> list:
        """The blocks whose locations are loaded, in file order (not all of them, in general)."""
        return self._index[0]

    @property
    def _loading(self) -> threading.Lock:
        # A lock held by another thread when a process forked stays held in the child.
        if self._lock_pid != os.getpid():
            self._lock_obj, self._lock_pid = threading.Lock(), os.getpid()
        return self._lock_obj

    def _loaded(self, start: int, end: int) -> tuple[list, int | None]:
        """(the loaded blocks overlapping [start, end), the first byte of it no loaded
        block holds, or None)."""
        blocks, offsets = self._index
        out, pos = [], start
        for k in range(max(bisect_right(offsets, start) - 1, 0), len(blocks)):
            if pos >= end:
                break
            b = blocks[k]
            if b.offset > pos:
                break
            if b.offset + b.block.length > pos:
                out.append(b)
                pos = b.offset + b.block.length
        return out, (None if pos >= end else pos)

    def blocks_in(self, start: int, end: int) -> list:
        """The blocks overlapping [start, end), their locations loaded first if need be."""
        end = min(end, self.size)
        if start >= end:
            return []
        got, gap = self._loaded(start, end)
        if gap is None:
            return got
        with self._loading:
            while True:
                got, was = self._loaded(start, end)
                if was is None:
                    return got
                # up to the next loaded block, if one is in the range (then nothing ahead)
                offsets = self._index[1]
                k = bisect_right(offsets, was)
                upto = offsets[k] if k < len(offsets) and offsets[k] < end else end
                self._load(was, upto - was, AHEAD_BLOCKS if upto == end else 0)
                _, gap = self._loaded(start, end)
                if gap is not None and gap <= was:
                    raise errors.DfsFileNotFoundError(f"no block holds byte {gap} of the file", self.path)

    def block_at(self, offset: int):
        """The block holding byte ``offset`` (< size), its locations loaded if need be."""
        return self.blocks_in(offset, offset + 1)[0]

    def loaded_until(self, start: int, limit: int) -> int:
        """How far from ``start`` (up to ``limit``) the loaded blocks reach without a gap:
        how far a read-ahead can go without asking the namenode."""
        _, gap = self._loaded(start, min(limit, self.size))
        return min(limit, self.size) if gap is None else gap

    def prefer(self, hosts) -> None:
        """Try the replicas on ``hosts`` first, in the blocks loaded now and later."""
        self._hosts = {bare_host(h) for h in hosts}
        with self._loading:
            for b in self.blocks:
                _put_first(b, self._hosts)

    def _find(self, block):
        """The loaded block that is ``block`` (its locations the latest loaded), or None."""
        blocks, offsets = self._index
        i = bisect_left(offsets, block.offset)
        while i < len(blocks) and offsets[i] == block.offset:
            if blocks[i].block.block_id == block.block.block_id:
                return blocks[i]
            i += 1
        return None

    def _refresh(self, block):
        """``block`` with its locations loaded again (and the blocks' after it): all the
        replicas we knew have failed."""
        with self._loading:
            self._dead = set()
            self._load(block.offset, max(1, block.block.length), AHEAD_BLOCKS)
        fresh = self._find(block)
        if fresh is None:
            raise errors.DfsFileNotFoundError("file changed while being read", self.path)
        return fresh

    @property
    def _pool(self) -> ThreadPoolExecutor:
        # A reader used in a forked child (an open fsspec file, a Dask process
        # worker) would wait forever on the parent's pool: it has no threads here.
        if self._pool_pid != os.getpid():
            self._pool_obj, self._pool_pid = self.client._pool, os.getpid()
        return self._pool_obj

    # -- public ---------------------------------------------------------
    def read_range(self, offset: int, length: int) -> bytes:
        return b"".join(self.iter_range(offset, length, prefetch=False))

    def iter_range(self, offset: int = 0, length: int | None = None, *, prefetch: bool = True) -> Iterator[bytes]:
        """Plaintext of [offset, offset+length) in pieces, in order."""
        end = self._end(offset, length)
        if offset >= end:
            return iter(())
        one = SEGMENT_CHUNKS * self.chunk_size      # more is more than one segment: no need to look
        segments = list(self._segments(offset, end)) if not prefetch or end - offset <= one else []
        if prefetch and len(segments) != 1:
            return self._pipelined(offset, end)
        return (piece for seg in segments for piece in self._cut(seg, self._fetch(*seg[:3])))

    def fetch_chunks(self, block_offset: int, first: int, last: int) -> Iterator[bytes]:
        """Plaintext of chunks ``first..last`` of the block at ``block_offset`` in the file,
        in order, each as soon as it is decoded, with replica failover.

        For callers that cache whole chunks (the FUSE mount's block cache)."""
        return self._iter_fetch(self.block_at(block_offset), first, last)

    def copy_to(self, out, offset: int = 0, length: int | None = None, *,
                progress: Callable[[int], None] | None = None) -> int:
        """Write the plaintext of [offset, offset+length) to ``out`` and return its length.

        ``out`` has ``write``; if it also lends room in its own buffer
        (``reserve(n)`` -> writable view or None, ``commit(n)``, ``cancel()``:
        see ``DirectFile``), whole chunks are decrypted straight into it.
        Nothing of a record that fails its checks reaches ``out``."""
        end = self._end(offset, length)
        pos = offset
        excluded: dict[int, set[str]] = {}
        while pos < end:
            pos, bad = self._copy_pass(out, pos, end, excluded, progress)
            if bad is not None:
                rec, e = bad
                log.warning("block %d on %s: %s; trying another replica", rec.bid, rec.addr, e)
                self.client.report_bad(rec.bid, rec.addr, str(e))
                excluded.setdefault(rec.bid, set()).add(rec.addr)
        return max(0, end - offset)

    def _end(self, offset: int, length: int | None) -> int:
        return self.size if length is None else min(self.size, offset + length)

    # -- planning -------------------------------------------------------
    def _segments(self, start: int, end: int, per: int = SEGMENT_CHUNKS):
        """(block, first chunk, last chunk, byte offset of first chunk, start, end) pieces."""
        cs = self.chunk_size
        for b in self.blocks_in(start, end):
            boff, blen = b.offset, b.block.length
            lo, hi = max(start, boff) - boff, min(end, boff + blen) - boff
            first, last = lo // cs, (hi - 1) // cs
            for f in range(first, last + 1, per):
                upto = min(last, f + per - 1)
                seg_start = boff + f * cs
                yield (b, f, upto, seg_start, max(start, seg_start), min(end, boff + (upto + 1) * cs))

    def _stream_segments(self, start: int, end: int) -> list:
        """The segments of one pass of a streamed read: the blocks of up to STREAM_WINDOW
        bytes from ``start``, whole (a pass that ended inside a chunk would fetch it twice)."""
        blocks = self.blocks_in(start, min(end, start + STREAM_WINDOW))
        stop = min(end, blocks[-1].offset + blocks[-1].block.length)
        return list(self._segments(start, stop, max(SEGMENT_CHUNKS, STREAM_BYTES // self.chunk_size)))

    def _cut(self, seg, chunks: list[bytes]) -> list[bytes]:
        """The chunks of one segment trimmed to the wanted range, unjoined:
        joining would copy every byte once more."""
        _, first, _, seg_start, lo, hi = seg
        cs = self.chunk_size
        out = []
        for i, c in enumerate(chunks):
            c_start = seg_start + i * cs
            a, b = max(lo, c_start) - c_start, min(hi, c_start + len(c)) - c_start
            if b > a:
                out.append(c if (a, b) == (0, len(c)) else c[a:b])
        return out

    # -- receive buffers ------------------------------------------------
    def _recv_buffer(self, n: int) -> bytearray:
        try:
            buf = _free_records.pop()
        except IndexError:
            buf = None
        if buf is None or len(buf) < n:
            buf = bytearray(max(n, self.chunk_size + OVERHEAD))
        return buf

    @staticmethod
    def _recycle(buf: bytearray) -> None:
        if len(_free_records) < _FREE_RECORDS:
            _free_records.append(buf)

    def _release(self, rec: _Record) -> None:
        rec.view.release()
        self._recycle(rec.buf)

    def _decode(self, rec: _Record) -> bytes:
        """Plaintext of a record as new bytes; the record's buffer is released."""
        try:
            codec: ChunkCodec = self.codec  # type: ignore[assignment]
            return codec.decode(rec.view, rec.bid, rec.index, rec.plain_length, None)   # xxh3 checked on receipt
        finally:
            self._release(rec)

    def _decode_into(self, rec: _Record, room) -> int:
        try:
            codec: ChunkCodec = self.codec  # type: ignore[assignment]
            return codec.decode_into(rec.view, rec.bid, rec.index, rec.plain_length, None, room)
        finally:
            self._release(rec)

    # -- records, with failover -----------------------------------------
    def _records(self, segments: list, excluded: dict, *, request_ahead: bool = True) -> Iterator[_Record]:
        """Every record of ``segments`` in order, received into reused buffers,
        its xxh3 checked. Whoever takes a record decrypts it and releases it
        (``_decode``/``_decode_into``).

        A replica that cannot be reached, says it is damaged or sends a
        record with a wrong checksum is left for the next one, going on from
        the chunk where it stopped (the locations are reloaded once when all
        have failed). A record that fails authentication is found by whoever
        decrypts it, who reports it and starts again from it without that
        replica (``excluded``: block index -> addresses). With
        ``request_ahead`` the next segment is asked for while this one drains."""
        ahead: tuple | None = None       # (segment number, address, socket) requested early
        try:
            for si, (seg_block, first, last, *_) in enumerate(segments):
                if ahead is not None and ahead[0] != si:
                    ahead[2].close()
                    ahead = None
                done = 0
                bid = seg_block.block.block_id
                tried: set[str] = set(excluded.get(bid, ()))
                refreshed = False
                block = self._find(seg_block) or seg_block       # as last loaded (_refresh)
                while True:
                    locs = [d.address for d in block.locations if d.address not in tried]
                    locs.sort(key=lambda a: a in self._dead)
                    if ahead is not None and ahead[0] == si and ahead[1] in locs:
                        locs.remove(ahead[1])
                        locs.insert(0, ahead[1])
                    for k, addr in enumerate(locs):
                        tried.add(addr)
                        s = None
                        early = False       # a connection asked for ahead of time
                        had = done
                        # silence from a replica is waited out only when no other is left
                        wait = frames.DATA_TIMEOUT
                        if k + 1 < len(locs):
                            wait = min(FAILOVER_TIMEOUT, wait)
                        try:
                            if ahead is not None and ahead[0] == si and ahead[1] == addr and done == 0:
                                s, early = ahead[2], True
                                ahead = None
                                s.settimeout(wait)
                                reply = self._reply(s, first, last)
                            else:
                                s = frames.connect(addr, timeout=wait)
                                self._send_request(s, block, first + done, last)
                                reply = self._reply(s, first + done, last)
                            if request_ahead and ahead is None and si + 1 < len(segments):
                                ahead = self._request_ahead(segments, si + 1, excluded)
                            for m in reply.chunks:
                                n = m.stored_length
                                buf = self._recv_buffer(n)
                                view = memoryview(buf)[:n]
                                try:
                                    frames.recv_into(s, view)
                                    # checked now, while the record is in this core's cache
                                    if checksum_of(view) != m.checksum:
                                        raise errors.ChecksumError(
                                            f"chunk {first + done} of block {bid}: checksum mismatch")
                                except BaseException:
                                    view.release()
                                    self._recycle(buf)
                                    raise
                                rec = _Record(bid, block.offset, first + done, addr,
                                              m.plain_length, buf, view)
                                done += 1
                                yield rec
                            break
                        except errors.DataIntegrityError as e:
                            log.warning("block %d on %s: %s; trying another replica", bid, addr, e)
                            self.client.report_bad(bid, addr, str(e))
                        except (OSError, frames.FrameError, _ReplicaUnavailable) as e:
                            if (early or done > had) and not isinstance(e, (_ReplicaUnavailable, TimeoutError)):
                                # It was sending: most likely it gave up waiting for a slow reader
                                # (a connection left idle longer than the data timeout). Ask it again.
                                log.info("block %d on %s: %s; asking again from chunk %d",
                                         bid, addr, e, first + done)
                                tried.discard(addr)
                                break
                            log.info("block %d on %s unavailable: %s", bid, addr, e)
                            self._dead.add(addr)
                        finally:
                            if s is not None:
                                s.close()
                    else:
                        if refreshed:
                            why = (f"tried {len(tried)}" if tried else
                                   "the namenode knows no live datanode holding it" if not block.corrupt
                                   else "every replica is corrupt")
                            raise errors.BlockMissingError(f"no readable replica of block {bid} ({why})", self.path)
                        refreshed = True
                        block = self._refresh(block)
                        continue
                    if done == last - first + 1:
                        break
        finally:
            if ahead is not None:
                ahead[2].close()

    def _request_ahead(self, segments: list, si: int, excluded: dict):
        seg_block, first, last, *_ = segments[si]
        block = self._find(seg_block) or seg_block
        skip = excluded.get(block.block.block_id, ())
        locs = [d.address for d in block.locations if d.address not in skip]
        locs.sort(key=lambda a: a in self._dead)
        if not locs:
            return None
        try:
            s = frames.connect(locs[0])
        except OSError:
            return None      # the ordinary path will find out properly
        try:
            self._send_request(s, block, first, last)
        except OSError:
            s.close()
            return None
        return si, locs[0], s

    @staticmethod
    def _send_request(s, block, first: int, last: int) -> None:
        frames.send_msg(s, dpb.OpHeader(op=dpb.OpHeader.READ_BLOCK, block_id=block.block.block_id,
                                        genstamp=block.block.genstamp, first_chunk=first, last_chunk=last))

    @staticmethod
    def _reply(s, first: int, last: int):
        reply = frames.recv_msg(s, dpb.ReadReply)
        if reply.error:
            # A damaged or vanished replica the namenode still lists: reported like a bad
            # checksum (the datanode reports it too; either report is enough).
            if any(w in reply.error for w in ("corrupt", "truncated", "missing")):
                raise errors.ChecksumError(reply.error)
            raise _ReplicaUnavailable(reply.error)
        if len(reply.chunks) != last - first + 1:
            raise errors.ChecksumError(f"replica has {len(reply.chunks)} chunks, expected {last - first + 1}")
        return reply

    # -- one segment on the caller's thread --------------------------------
    def _fetch(self, block, first: int, last: int) -> list[bytes]:
        return list(self._iter_fetch(block, first, last))

    def _iter_fetch(self, block, first: int, last: int) -> Iterator[bytes]:
        """Plaintext of chunks ``first..last`` of ``block`` in order, each as soon
        as it is decoded. Raw records are decrypted on this thread, while the record
        is still in this core's cache (a hand-off costs more than AES-GCM, and a
        record received into a cold buffer costs twice as much to receive);
        compressed ones on the pool, a few at once. A record that fails its checks
        is reported and the fetch goes on from it without that replica."""
        excluded: dict[int, set[str]] = {}
        nxt = first
        bad = None
        pending: collections.deque = collections.deque()    # (record, plaintext/future/error)

        def settle(everything: bool) -> Iterator[bytes]:
            """Hand on the decoded chunks at the head of ``pending``, in order; stop at
            an undecoded one (unless ``everything``, or too many wait) or a bad one."""
            nonlocal nxt, bad
            while pending:
                rec0, got = pending[0]
                if isinstance(got, Future):
                    if not (everything or got.done() or len(pending) > _ZSTD_IN_FLIGHT):
                        return
                    got = _outcome(got)
                if isinstance(got, errors.DataIntegrityError):
                    bad = (rec0, got)
                    return
                pending.popleft()
                nxt += 1
                yield got

        while nxt <= last:
            pending.clear()
            bad = None
            gen = self._records([(block, nxt, last)], excluded)
            try:
                for rec in gen:
                    pending.append((rec, self._decode_ahead(rec)))
                    yield from settle(False)
                    if bad is not None:
                        break
                else:
                    yield from settle(True)
            finally:
                gen.close()
                for _, f in pending:
                    if isinstance(f, Future):
                        f.exception()       # every decode has finished with its buffer
            if bad is not None:
                rec0, e = bad
                log.warning("block %d on %s: %s; trying another replica", rec0.bid, rec0.addr, e)
                self.client.report_bad(rec0.bid, rec0.addr, str(e))
                excluded.setdefault(rec0.bid, set()).add(rec0.addr)

    # -- iter_range: a read-ahead thread ----------------------------------
    def _pipelined(self, offset: int, end: int) -> Iterator[bytes]:
        """Plaintext of [offset, end) from a read-ahead thread, in order. A
        record that fails its checksum or authentication is reported here and
        the stream starts again at that chunk without the replica."""
        excluded: dict[int, set[str]] = {}
        pos = offset
        cs = self.chunk_size
        while pos < end:
            stream = _Stream(self, self._stream_segments(pos, end), excluded,
                             prepare=self._decode_ahead, lanes=1)
            try:
                for rec, piece in stream:
                    if isinstance(piece, Future):
                        try:
                            piece = piece.result()
                        except errors.DataIntegrityError as e:
                            piece = e
                    if isinstance(piece, errors.DataIntegrityError):
                        log.warning("block %d on %s: %s; trying another replica",
                                    rec.bid, rec.addr, piece)
                        self.client.report_bad(rec.bid, rec.addr, str(piece))
                        excluded.setdefault(rec.bid, set()).add(rec.addr)
                        break
                    c_start = rec.boff + rec.index * cs
                    a, b = max(pos, c_start) - c_start, min(end, c_start + len(piece)) - c_start
                    if b > a:
                        pos = c_start + b
                        yield piece if (a, b) == (0, len(piece)) else piece[a:b]
            finally:
                stream.close()

    def _decode_ahead(self, rec: _Record):
        """On the read-ahead thread: raw records decoded at once, compressed ones on the pool."""
        if rec.view[0] & FLAG_ZSTD:
            return self._pool.submit(self._decode, rec)
        try:
            return self._decode(rec)
        except errors.DataIntegrityError as e:
            return e

    # -- copy_to: two read-ahead threads, decryption into the sink -----------
    def _copy_pass(self, out, pos: int, end: int, excluded: dict, progress) -> tuple[int, tuple | None]:
        """Copy from ``pos`` until done or a bad record: (new pos, None or (record, error)).

        Raw records are decrypted on this thread into room lent by ``out``,
        compressed ones on the pool; ``pending`` keeps them in file order until
        they are committed. On a bad record, what came before it is committed
        and the room lent after it is cancelled."""
        cs = self.chunk_size
        lend = getattr(out, "reserve", None)
        pending: collections.deque = collections.deque()   # (record, future or None, length)
        limit = _ZSTD_IN_FLIGHT

        def settle(everything: bool) -> None:
            """Commit the decoded records at the head of ``pending``, in order."""
            nonlocal pos
            while pending:
                rec, fut, n = pending[0]
                if fut is not None:
                    if not (everything or len(pending) > limit or fut.done()):
                        return
                    try:
                        fut.result()
                    except errors.DataIntegrityError as e:
                        raise _Bad(rec, e) from None
                pending.popleft()
                out.commit(n)
                pos += n
                if progress:
                    progress(n)

        stream = _Stream(self, self._stream_segments(pos, end), excluded,
                         lanes=COPY_LANES, depth=_COPY_DEPTH)
        try:
            for rec in stream:
                c_start = rec.boff + rec.index * cs
                n = rec.plain_length
                a, b = max(pos, c_start) - c_start, min(end, c_start + n) - c_start
                room = None
                if lend is not None and (a, b) == (0, n):
                    room = lend(n)
                    if room is None and pending:
                        settle(True)
                        room = lend(n)
                if room is None:            # part of a chunk, or no room lent: a copy
                    settle(True)
                    try:
                        piece = self._decode(rec)
                    except errors.DataIntegrityError as e:
                        raise _Bad(rec, e) from None
                    if b > a:
                        out.write(piece if (a, b) == (0, n) else memoryview(piece)[a:b])
                        pos = c_start + b
                        if progress:
                            progress(b - a)
                elif rec.view[0] & FLAG_ZSTD:
                    pending.append((rec, self._pool.submit(self._decode_into, rec, room), n))
                    settle(False)
                else:
                    try:
                        self._decode_into(rec, room)
                    except errors.DataIntegrityError as e:
                        settle(True)        # the ones before it are good (or the first bad one is there)
                        raise _Bad(rec, e) from None
                    pending.append((rec, None, n))
                    settle(False)
            settle(True)
            return pos, None
        except _Bad as e:
            return pos, (e.rec, e.error)
        finally:
            stream.close()
            for _, fut, _ in pending:
                if fut is not None:
                    fut.exception()         # nothing may still be writing into the sink's buffer
            if lend is not None:
                out.cancel()


def _merged(index: tuple[list, list[int]], new: list) -> tuple[list, list[int]]:
    """``index`` (blocks, offsets) with the consecutive blocks ``new`` in their place,
    replacing those loaded before (their locations may have changed)."""
    if not new:
        return index
    blocks, offsets = index
    lo, hi = new[0].offset, new[-1].offset + new[-1].block.length
    ids = {b.block.block_id for b in new}
    i, j = bisect_left(offsets, lo), bisect_left(offsets, hi)
    while j < len(blocks) and blocks[j].block.block_id in ids:     # an empty block at hi
        j += 1
    merged = blocks[:i] + new + blocks[j:]
    return merged, offsets[:i] + [b.offset for b in new] + offsets[j:]


def _put_first(block, hosts: set[str]) -> None:
    """Order ``block``'s replicas so those on ``hosts`` (``bare_host`` forms) are tried first."""
    locs = list(block.locations)
    ordered = sorted(locs, key=lambda d: bare_host(d.address.rpartition(":")[0]) not in hosts)
    if ordered != locs:
        del block.locations[:]
        block.locations.extend(ordered)


def _outcome(fut: Future):
    """A decode's plaintext, or the integrity error it found (other errors raise)."""
    try:
        return fut.result()
    except errors.DataIntegrityError as e:
        return e


class _ReplicaUnavailable(Exception):
    pass


class _Bad(Exception):
    def __init__(self, rec: _Record, error: Exception):
        self.rec, self.error = rec, error


class _Stream:
    """The read-ahead threads of one pass over ``segments``: segment i is
    received by lane i % lanes, each lane a thread with its own queue, so two
    datanodes (or two places on one disk) are read at once while the records
    come out in order. ``prepare`` (if given) runs on the lane's thread and
    iterating gives (record, prepare(record)), else just records. ``close``
    stops the threads and drops what they queued."""

    def __init__(self, reader: FileReader, segments: list, excluded: dict, *, prepare=None,
                 lanes: int = 2, depth: int = _AHEAD):
        self._segments = segments
        lanes = max(1, min(lanes, len(segments)))
        self._qs = [queue.Queue(maxsize=depth) for _ in range(lanes)]
        self._stop = threading.Event()
        self._reader, self._excluded, self._prepare = reader, excluded, prepare
        self._threads = [threading.Thread(target=self._run, args=(j,), name=f"dfs-readahead-{j}",
                                          daemon=True) for j in range(lanes)]
        for t in self._threads:
            t.start()

    def _run(self, lane: int) -> None:
        r, q, prepare = self._reader, self._qs[lane], self._prepare
        gen = r._records(self._segments[lane::len(self._qs)], self._excluded,
                         request_ahead=len(self._qs) == 1)
        try:
            for rec in gen:
                if self._stop.is_set():
                    return
                q.put(rec if prepare is None else (rec, prepare(rec)))
        except BaseException as e:
            q.put(e)
        finally:
            gen.close()

    def __iter__(self):
        qs = self._qs
        for si, (_, first, last, *_) in enumerate(self._segments):
            q = qs[si % len(qs)]
            for _ in range(last - first + 1):
                item = q.get()
                if isinstance(item, BaseException):
                    raise item
                yield item

    def close(self) -> None:
        self._stop.set()
        while any(t.is_alive() for t in self._threads):
            for q in self._qs:
                try:
                    q.get(timeout=0.05)
                except queue.Empty:
                    pass
        for q in self._qs:
            while True:
                try:
                    q.get_nowait()
                except queue.Empty:
                    break
