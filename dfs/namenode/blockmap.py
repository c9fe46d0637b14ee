"""The block map: which datanodes hold which blocks. Pure: no I/O.

Soft state, as in HDFS: the namespace knows each file's blocks, but where
their replicas are is learnt from datanode block reports and rebuilt after
every namenode restart. Not thread-safe; the namesystem lock guards it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BlockInfo:
    block_id: int
    inode: int
    genstamp: int
    length: int
    replication: int        # target number of replicas
    complete: bool = True   # committed: its length is known (False while being written)
    pipeline: frozenset[str] = frozenset()   # node uuids it was allocated to, while being written


@dataclass
class BlockMap:
    blocks: dict[int, BlockInfo] = field(default_factory=dict)
    replicas: dict[int, set[str]] = field(default_factory=dict)     # block -> node uuids
    corrupt: dict[int, set[str]] = field(default_factory=dict)      # block -> node uuids
    # Of those, the marks the holding node made itself (its scanner, or its own check of a
    # read or a copy, reported in every heartbeat while it holds the replica): its next full
    # report that lists the replica as healthy revokes them. Every other mark (a reader
    # found bad records, a reported length was wrong) stays until the replica is gone.
    holder_marked: dict[int, set[str]] = field(default_factory=dict)
    by_node: dict[str, set[int]] = field(default_factory=dict)      # node uuid -> blocks
    writing: set[int] = field(default_factory=set)   # allocated, not yet known committed (few)

    def add_block(self, info: BlockInfo) -> None:
        self.blocks[info.block_id] = info
        self.replicas.setdefault(info.block_id, set())
        if not info.complete:
            self.writing.add(info.block_id)

    def commit(self, block_id: int, length: int) -> BlockInfo | None:
        """The writer says ``block_id`` is stored, ``length`` bytes long."""
        info = self.blocks.get(block_id)
        if info is not None:
            info.length, info.complete, info.pipeline = length, True, frozenset()
        self.writing.discard(block_id)
        return info

    def writes_on(self, node: str) -> bool:
        """Does ``node`` hold, or is it receiving, a block not yet committed? Such a
        block is not re-replicated (its length is unknown until the writer commits it),
        so the node may hold its only copy."""
        for b in list(self.writing):
            info = self.blocks.get(b)
            if info is None or info.complete:
                self.writing.discard(b)
            elif node in info.pipeline or node in self.replicas.get(b, ()):
                return True
        return False

    def remove_block(self, block_id: int) -> set[str]:
        """Forget a block; returns the nodes that hold a replica of it (to invalidate)."""
        self.blocks.pop(block_id, None)
        self.writing.discard(block_id)
        holders = self.replicas.pop(block_id, set()) | self.corrupt.pop(block_id, set())
        self.holder_marked.pop(block_id, None)
        for n in holders:
            self.by_node.get(n, set()).discard(block_id)
        return holders

    def add_replica(self, block_id: int, node: str, genstamp: int, length: int) -> bool:
        """Record a reported replica. False if the block is unknown or stale (delete it)."""
        info = self.blocks.get(block_id)
        if info is None or genstamp < info.genstamp:
            return False
        if info.complete and length != info.length:
            self.mark_corrupt(block_id, node)
            return True
        if node in self.corrupt.get(block_id, ()):
            return True
        self.replicas[block_id].add(node)
        self.by_node.setdefault(node, set()).add(block_id)
        return True

    def remove_replica(self, block_id: int, node: str) -> None:
        self.replicas.get(block_id, set()).discard(node)
        self._unmark(block_id, node)
        self.by_node.get(node, set()).discard(block_id)

    def mark_corrupt(self, block_id: int, node: str, by_holder: bool = False) -> None:
        """``by_holder``: ``node`` itself found its replica bad (see ``holder_marked``)."""
        if block_id not in self.blocks:
            return
        self.replicas.get(block_id, set()).discard(node)
        marked = self.corrupt.setdefault(block_id, set())
        if not by_holder:
            self._unmark(block_id, node)
        elif node not in marked:   # (a reader's mark stays a reader's)
            self.holder_marked.setdefault(block_id, set()).add(node)
        marked.add(node)
        self.by_node.setdefault(node, set()).add(block_id)

    def _unmark(self, block_id: int, node: str) -> None:
        self.corrupt.get(block_id, set()).discard(node)
        own = self.holder_marked.get(block_id)
        if own is not None:
            own.discard(node)
            if not own:
                del self.holder_marked[block_id]

    def node_report(self, node: str, reported: list[tuple[int, int, int]]) -> list[int]:
        """Replace what ``node`` holds by a full report of (block_id, genstamp, length).

        A node lists only the replicas it holds as healthy (it reports its corrupt ones in
        every heartbeat instead), so a mark it made itself that it now lists is revoked:
        it found that replica bad for a reason that has gone (a restart re-checks every
        replica's meta and length; readers and the scanner check its records again).
        A reader's mark stays: the node cannot check what the reader saw.

        Returns the reported block ids the namenode does not want (to delete)."""
        for b in list(self.by_node.get(node, ())):
            self.replicas.get(b, set()).discard(node)
        self.by_node[node] = set()
        listed = {r[0] for r in reported}
        corrupt_here = {b for b, nodes in self.corrupt.items() if node in nodes}
        for b in corrupt_here - listed:
            self._unmark(b, node)   # no longer held: forget the bad copy
        revoked = {b for b in corrupt_here & listed if node in self.holder_marked.get(b, ())}
        for b in revoked:
            self._unmark(b, node)
        corrupt_here -= revoked
        unwanted = []
        for block_id, genstamp, length in reported:
            if block_id in corrupt_here:
                self.by_node[node].add(block_id)
                continue
            if not self.add_replica(block_id, node, genstamp, length):
                unwanted.append(block_id)
        return unwanted

    def remove_node(self, node: str) -> set[int]:
        """Drop every replica a node held (it died). Returns those blocks."""
        held = self.by_node.pop(node, set())
        for b in held:
            self.replicas.get(b, set()).discard(node)
            self._unmark(b, node)
        return held

    def holders(self, block_id: int) -> set[str]:
        return self.replicas.get(block_id, set())

    def counts(self, live: set[str], in_service: set[str] | None = None) -> tuple[int, int, int, int]:
        """(blocks, under_replicated, missing, corrupt) over complete blocks. Only replicas
        on ``in_service`` nodes (default: all of ``live``) count toward the target; those
        on other live nodes (decommissioning) keep a block from being missing (as fsck)."""
        under = missing = corrupt = 0
        for b, info in self.blocks.items():
            if not info.complete:
                continue
            held = self.replicas.get(b, set())
            n = len(held & live)
            if in_service is not None and n:
                n = len(held & in_service) or -1     # -1: readable, only from nodes leaving
            if n == 0:
                if self.corrupt.get(b):
                    corrupt += 1
                else:
                    missing += 1
            elif n < info.replication:
                under += 1
        return len(self.blocks), under, missing, corrupt
