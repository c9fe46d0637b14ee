"""Where each block of a big file starts, kept for readers' windows.

A reader asks for the blocks of a byte range plus a few ahead (GetBlockLocations
with ``offset``/``length``/``ahead``). Finding them takes every earlier block's
length: reading a file's whole block list from the store for each window made a
sequential read of a 20,000-block file cost ~1,250 calls of ~25 ms under the
namesystem lock. A complete file never changes its blocks (files are write-once,
and inode ids are never reused), so the offsets of a file with many blocks are
computed once and kept, least recently used first out, up to ``limit`` blocks.
"""

from __future__ import annotations

import bisect
import itertools
from collections import OrderedDict
from collections.abc import Callable

MANY_BLOCKS = 64          # fewer: read from the store each time (cheap), not kept
LIMIT_BLOCKS = 500_000    # ~50 MB of (id, genstamp, length) tuples and offsets


class FileBlockIndex:
    def __init__(self, limit: int = LIMIT_BLOCKS):
        self.limit = limit
        self._files: OrderedDict[int, tuple[list[tuple[int, int, int]], list[int]]] = OrderedDict()
        self._held = 0

    def window(self, inode_id: int, read_blocks: Callable[[int], list[dict]], offset: int,
               end: int, ahead: int) -> list[tuple[int, int, int, int]]:
        """(block id, genstamp, offset, length) of the complete file ``inode_id``'s
        blocks overlapping [offset, end) (a 0-long block in it too), then up to
        ``ahead`` more. ``read_blocks(inode_id)``: its block rows, in order."""
        blocks, starts = self._blocks(inode_id, read_blocks)
        first = max(0, bisect.bisect_right(starts, offset) - 1)
        while first < len(blocks) and starts[first] + blocks[first][2] <= offset and not (
                blocks[first][2] == 0 and starts[first] >= offset):
            first += 1
        out = []
        for i in range(first, len(blocks)):
            bid, gs, length = blocks[i]
            if starts[i] >= end:
                if ahead <= 0:
                    break
                ahead -= 1
            out.append((bid, gs, starts[i], length))
        return out

    def _blocks(self, inode_id: int, read_blocks) -> tuple[list[tuple[int, int, int]], list[int]]:
        kept = self._files.get(inode_id)
        if kept is not None:
            self._files.move_to_end(inode_id)
            return kept
        blocks = [(b["id"], b["genstamp"], b["length"]) for b in read_blocks(inode_id)]
        starts = list(itertools.accumulate((b[2] for b in blocks[:-1]), initial=0)) if blocks else []
        if len(blocks) >= MANY_BLOCKS:
            self._files[inode_id] = (blocks, starts)
            self._held += len(blocks)
            while self._held > self.limit and len(self._files) > 1:
                _, (gone, _) = self._files.popitem(last=False)
                self._held -= len(gone)
        return blocks, starts

    def clear(self) -> None:
        """A transaction was lost (rolled back): a file it completed may complete again
        with other blocks."""
        self._files.clear()
        self._held = 0
