"""Small files are written with a fan-out (the first datanode forwards to every
other replica directly) instead of a chain: real processes, real failures."""

import glob
import os

from dfs.codec import ChunkCodec
from dfs.rpc import frames
from dfs.rpc.v1 import datatransfer_pb2 as dpb


def _write_block(head: str, downstream: list[str], block_id: int, data: bytes, *, fanout: bool):
    enc = ChunkCodec(os.urandom(32)).encode(data, block_id, 0)
    s = frames.connect(head)
    try:
        frames.send_msg(s, dpb.OpHeader(op=dpb.OpHeader.WRITE_BLOCK, block_id=block_id, genstamp=1,
                                        downstream=downstream, chunk_size=1 << 20, fanout=fanout))
        frames.send_msg(s, dpb.ChunkFrame(meta=dpb.ChunkMeta(
            stored_length=enc.stored_length, plain_length=enc.plain_length, checksum=enc.checksum)), *enc.parts)
        frames.send_msg(s, dpb.ChunkFrame(end=True))
        return frames.recv_msg(s, dpb.WriteAck)
    finally:
        s.close()


def _has_replica(node, block_id: int) -> bool:
    return bool(glob.glob(os.path.join(node.data_dir, "current", "*", f"blk_{block_id}_1.meta")))


def test_fanout_stores_every_replica_and_reports_a_dead_one(make_cluster):
    c = make_cluster()
    a, b, d = c.datanodes
    ack = _write_block(a.address, [b.address, d.address], 9_000_001, b"x" * 5000, fanout=True)
    assert sorted(ack.stored) == sorted([a.address, b.address, d.address]) and not ack.failed
    assert all(_has_replica(n, 9_000_001) for n in (a, b, d))

    c.kill(d)
    ack = _write_block(a.address, [b.address, d.address], 9_000_002, b"y" * 5000, fanout=True)
    assert sorted(ack.stored) == sorted([a.address, b.address]) and list(ack.failed) == [d.address]
    assert _has_replica(a, 9_000_002) and _has_replica(b, 9_000_002)


def test_small_files_round_trip_with_all_replicas(make_cluster):
    c = make_cluster()
    client = c.client()
    for i in range(20):
        client.write_bytes(f"/small/f{i}", bytes([i]) * (100 + i * 997))
    for i in range(20):
        assert client.read_bytes(f"/small/f{i}") == bytes([i]) * (100 + i * 997)
        [loc] = client.block_locations(f"/small/f{i}")
        assert len(set(loc.names)) == 3


def test_fanout_reaches_the_last_node_while_the_middle_one_hangs(make_cluster):
    """In a chain, a stopped middle node would hold the block back from the last;
    with a fan-out the last node stores it at once."""
    import signal
    import threading

    c = make_cluster()
    a, b, d = c.datanodes
    c.kill(b, signal.SIGSTOP)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault(
        "ack", _write_block(a.address, [b.address, d.address], 9_000_003, b"z" * 5000, fanout=True)))
    t.start()
    try:
        # (on a timeout the servers' stacks go to their logs: where the head or the last node waits)
        c.wait_for(lambda: _has_replica(d, 9_000_003), 10, "the last node's replica", interval=0.1)
        assert not _has_replica(b, 9_000_003)
    finally:
        os.kill(b.proc.pid, signal.SIGCONT)
        t.join(timeout=60)
    assert sorted(result["ack"].stored) == sorted([a.address, b.address, d.address])
