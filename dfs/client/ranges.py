"""Many byte ranges of one file read together (``DFSFileSystem.cat_ranges``).

Callers such as kerchunk's ReferenceFileSystem and fsspec's parquet precaching
ask for hundreds of small ranges at once, several to a chunk. Read one by one,
each range fetched and decoded its whole chunk (1 MiB, AES-GCM and zstd) again:
1,000 ranges of one chunk cost 1,000 fetches. Here the ranges are cut, in file
order, from one ``_ChunkCache`` of the file: each chunk is fetched once, those
of the next ranges in parallel, and dropped once no later range can need it.
"""

from __future__ import annotations

import sys

from dfs.client.fsspec_file import _ChunkCache

#: How far past the start of the range being cut the chunks of later ranges are
#: already being fetched (on the fetch pool, so several datanode requests at once).
AHEAD_BYTES = 16 << 20


def resolve(size: int, start: int | None, end: int | None) -> tuple[int, int]:
    """fsspec's (start, end) of a file of ``size`` bytes as offsets in it: None is the
    file's start or end, a negative one counts from the end; an empty range has
    start >= end."""
    start = 0 if start is None else (max(0, size + start) if start < 0 else start)
    end = size if end is None else (max(0, size + end) if end < 0 else min(end, size))
    return start, end


def read_ranges(reader, ranges: list[tuple[int, int]]) -> list:
    """The bytes of each (start, end) of ``ranges`` (``resolve``d), in their order, or
    the exception reading that one raised.

    They are cut in order of start, so a chunk that ends at or before the range
    being cut is needed by no later one and is dropped: what is held is the chunks
    of the longest range in progress (its result holds as much) and those fetched
    up to AHEAD_BYTES ahead, whatever the number of ranges."""
    chunks = _ChunkCache(reader, max_bytes=sys.maxsize, readahead=0)   # dropped by position, not size
    order = sorted(range(len(ranges)), key=ranges.__getitem__)
    out: list = [b""] * len(ranges)
    asked = 0          # ranges in ``order`` whose chunks have been asked for
    # Chunks end at multiples of the chunk size (blocks are made of whole chunks): which
    # ones lie behind a range changes only when its start enters another chunk.
    in_chunk = -1
    try:
        for i in order:
            start, end = ranges[i]
            if start >= end:
                continue
            if start // reader.chunk_size != in_chunk:
                in_chunk = start // reader.chunk_size
                chunks.forget_before(start)
            upto = asked
            while upto < len(order) and ranges[order[upto]][0] < start + AHEAD_BYTES:
                upto += 1
            if upto > asked:
                try:
                    chunks.prefetch([ranges[j] for j in order[asked:upto]])
                except Exception:   # noqa: BLE001 - each read asks again and gets its own answer
                    pass
                asked = upto
            try:
                out[i] = chunks.read(start, end)
            except Exception as e:   # noqa: BLE001 - the caller decides (on_error)
                out[i] = e
    finally:
        chunks.close()
    return out
