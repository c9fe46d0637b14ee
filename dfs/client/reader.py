"""Reading a file: nearest replica first, failover on any error, never wrong bytes.

A read asks a datanode for just the chunks covering the range; records are
received on this thread and decoded (xxh3, AES-GCM, zstd) on a thread pool,
so receiving the next record overlaps decoding this one. A record that fails
its checksum or authentication is reported to the namenode and the read goes
on from the next replica at the chunk where it stopped.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

from dfs import errors
from dfs.codec import ChunkCodec
from dfs.rpc import frames
from dfs.rpc.v1 import datatransfer_pb2 as dpb
from dfs.rpc.v1 import namenode_pb2 as pb

log = logging.getLogger(__name__)
SEGMENT_CHUNKS = 16
_ALL = 0xFFFFFFFF


class FileReader:
    def __init__(self, client, path: str, *, pool: ThreadPoolExecutor, start: int = 0,
                 length: int | None = None):
        """``start``/``length`` limit the block locations loaded to the blocks overlapping
        that range (a Dask task reading one block of a huge file); reads must stay inside."""
        self.client, self.path, self._pool = client, path, pool
        self.window = None if length is None else (start, start + max(1, length))
        self._load()

    def _load(self) -> None:
        if self.window is None:
            req = pb.GetBlockLocationsRequest(path=self.path, all=True)
        else:
            req = pb.GetBlockLocationsRequest(path=self.path, offset=self.window[0],
                                              length=self.window[1] - self.window[0])
        r = self.client.nn.call("GetBlockLocations", req)
        self.status = r.status
        self.size = r.status.length
        self.blocks = list(r.blocks)
        self.chunk_size = r.key.chunk_size or 1 << 20
        self.codec = ChunkCodec(r.key.key) if r.key.key else None
        self._dead: set[str] = set()

    # -- public ---------------------------------------------------------
    @property
    def covered(self) -> tuple[int, int]:
        """The byte range whose block locations are loaded (the whole file unless windowed)."""
        if self.window is None:
            return 0, self.size
        if not self.blocks:
            return 0, 0
        last = self.blocks[-1]
        return self.blocks[0].offset, last.offset + last.block.length

    def read_range(self, offset: int, length: int) -> bytes:
        return b"".join(self.iter_range(offset, length, prefetch=False))

    def iter_range(self, offset: int = 0, length: int | None = None, *, prefetch: bool = True) -> Iterator[bytes]:
        """Plaintext of [offset, offset+length) in pieces, in order."""
        end = self.size if length is None else min(self.size, offset + length)
        if offset >= end:
            return iter(())
        if self.window is not None:
            lo, hi = self.covered
            if not (lo <= offset and end <= hi):
                raise ValueError(f"{self.path}: range {offset}-{end} is outside the blocks this reader loaded")
        segments = list(self._segments(offset, end))
        if not prefetch or len(segments) == 1:
            return (piece for seg in segments for piece in self._cut(seg, self._fetch(*seg[:3])))
        return self._prefetched(segments)

    def fetch_chunks(self, block_index: int, first: int, last: int) -> list[bytes]:
        """Plaintext of chunks ``first..last`` of ``self.blocks[block_index]``, with replica failover.

        For callers that cache whole chunks (the FUSE mount's block cache)."""
        return self._fetch(block_index, first, last)

    # -- planning -------------------------------------------------------
    def _segments(self, start: int, end: int):
        """(block index, first chunk, last chunk, byte offset of first chunk, start, end) pieces."""
        cs = self.chunk_size
        for bi, b in enumerate(self.blocks):
            boff, blen = b.offset, b.block.length
            if boff + blen <= start or boff >= end:
                continue
            lo, hi = max(start, boff) - boff, min(end, boff + blen) - boff
            first, last = lo // cs, (hi - 1) // cs
            for f in range(first, last + 1, SEGMENT_CHUNKS):
                l = min(last, f + SEGMENT_CHUNKS - 1)
                seg_start = boff + f * cs
                yield (bi, f, l, seg_start, max(start, seg_start), min(end, boff + (l + 1) * cs))

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

    def _prefetched(self, segments) -> Iterator[bytes]:
        q: queue.Queue = queue.Queue(maxsize=2)
        stop = threading.Event()

        def produce():
            try:
                for seg in segments:
                    if stop.is_set():
                        return
                    q.put(self._cut(seg, self._fetch(*seg[:3])))
                q.put(None)
            except BaseException as e:
                q.put(e)

        t = threading.Thread(target=produce, name="dfs-readahead", daemon=True)
        t.start()
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield from item
        finally:
            stop.set()
            while t.is_alive():
                try:
                    q.get(timeout=0.1)
                except queue.Empty:
                    pass

    # -- fetching with failover -----------------------------------------
    def _fetch(self, bi: int, first: int, last: int) -> list[bytes]:
        out: list[bytes] = []
        refreshed = False
        tried: set[str] = set()
        while True:
            block = self.blocks[bi]
            locs = [d.address for d in block.locations if d.address not in tried]
            locs.sort(key=lambda a: a in self._dead)
            for addr in locs:
                tried.add(addr)
                try:
                    self._fetch_from(addr, block, first + len(out), last, out)
                    return out
                except errors.DataIntegrityError as e:
                    log.warning("block %d on %s: %s; trying another replica", block.block.block_id, addr, e)
                    self.client.report_bad(block.block.block_id, addr, str(e))
                except (OSError, frames.FrameError, _ReplicaUnavailable) as e:
                    log.info("block %d on %s unavailable: %s", block.block.block_id, addr, e)
                    self._dead.add(addr)
            if refreshed:
                raise errors.BlockMissingError(
                    f"no readable replica of block {block.block.block_id} (tried {len(tried)})", self.path)
            refreshed = True
            old_id = block.block.block_id
            self._load()
            if bi >= len(self.blocks) or self.blocks[bi].block.block_id != old_id:
                raise errors.DfsFileNotFoundError("file changed while being read", self.path)

    def _fetch_from(self, addr: str, block, first: int, last: int, out: list[bytes]) -> None:
        bid = block.block.block_id
        s = frames.connect(addr)
        try:
            frames.send_msg(s, dpb.OpHeader(op=dpb.OpHeader.READ_BLOCK, block_id=bid,
                                            genstamp=block.block.genstamp, first_chunk=first, last_chunk=last))
            reply = frames.recv_msg(s, dpb.ReadReply)
            if reply.error:
                if "corrupt" in reply.error or "truncated" in reply.error:
                    raise errors.ChecksumError(reply.error)
                raise _ReplicaUnavailable(reply.error)
            if len(reply.chunks) != last - first + 1:
                raise errors.ChecksumError(f"replica has {len(reply.chunks)} chunks, expected {last - first + 1}")
            futures = []
            for i, m in enumerate(reply.chunks):
                buf = frames.recv_exact(s, m.stored_length)
                futures.append(self._pool.submit(self.codec.decode, buf, bid, first + i,  # type: ignore[union-attr]
                                                 m.plain_length, m.checksum))
            for f in futures:
                out.append(f.result())   # a bad record raises here; earlier chunks are kept
        finally:
            s.close()


class _ReplicaUnavailable(Exception):
    pass
