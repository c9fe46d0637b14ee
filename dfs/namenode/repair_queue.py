"""The blocks waiting for a copy, in planning order. Pure: no I/O, no clock.

HDFS's UnderReplicatedBlocks: a bucket per priority and a cursor in each, so a
plan resumes where the last one stopped instead of starting over. Here a bucket
is a (priority, fraction of the target present) key -- the planner's order, lowest
first -- holding its block ids in order; its cursor is the last block a plan looked
at. The queue persists between plans: only the blocks an event touched are filed
again, so a plan costs the copies it places and the changes since the last one,
not the whole backlog (walked and sorted at every tick before session 31: a tick
follows every landed copy, and a 20,480-block repair ran at 21-24 blocks/s with the
namenode's monitor thread busy half the time).

A block filed behind its bucket's cursor (a new one, or one that moved) waits
until the cursor comes round: at most one plan that reaches the bucket's end.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

Key = tuple[int, float]     # (priority, fraction of the target present)


class _Bucket:
    __slots__ = ("ids", "cursor")

    def __init__(self) -> None:
        self.ids: list[int] = []     # sorted
        self.cursor = -1             # the last block a plan looked at (-1: none yet)


class RepairQueue:
    def __init__(self) -> None:
        self._buckets: dict[Key, _Bucket] = {}
        self._key: dict[int, Key] = {}      # block -> its bucket

    def __len__(self) -> int:
        return len(self._key)

    def __contains__(self, block_id: int) -> bool:
        return block_id in self._key

    def key(self, block_id: int) -> Key | None:
        return self._key.get(block_id)

    def put(self, block_id: int, key: Key) -> None:
        """File ``block_id`` under ``key`` (moving it if it was elsewhere)."""
        old = self._key.get(block_id)
        if old == key:
            return
        if old is not None:
            self._remove(block_id, old)
        self._key[block_id] = key
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket()
        ids = bucket.ids
        if not ids or block_id > ids[-1]:
            ids.append(block_id)    # the common case: block ids grow
        else:
            bisect.insort(ids, block_id)

    def discard(self, block_id: int) -> None:
        key = self._key.pop(block_id, None)
        if key is not None:
            self._remove(block_id, key)

    def _remove(self, block_id: int, key: Key) -> None:
        bucket = self._buckets[key]
        ids = bucket.ids
        i = bisect.bisect_left(ids, block_id)
        del ids[i]
        if not ids:
            del self._buckets[key]

    def walk(self) -> Iterator[tuple[Key, Iterator[int]]]:
        """The buckets in planning order, as (key, its blocks from its cursor on).

        A bucket's cursor moves past a block once the caller asks for the next one
        (leaving a bucket's blocks early leaves it on the last block handled), and
        goes back to the start at the bucket's end. The caller may put and discard
        blocks meanwhile."""
        for key in sorted(self._buckets):
            bucket = self._buckets.get(key)
            if bucket is not None:
                yield key, self._from_cursor(key, bucket)

    def _from_cursor(self, key: Key, bucket: _Bucket) -> Iterator[int]:
        # A bucket emptied meanwhile is dropped; one filed again under its key is new
        # (its blocks were put during this walk) and waits for the next.
        while self._buckets.get(key) is bucket:
            i = bisect.bisect_right(bucket.ids, bucket.cursor)
            if i == len(bucket.ids):
                bucket.cursor = -1
                return
            block_id = bucket.ids[i]
            yield block_id
            bucket.cursor = block_id

    def blocks(self) -> set[int]:
        return set(self._key)
