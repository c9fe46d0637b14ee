"""Storage properties checked from outside: round trips, encryption at rest,
compression, crash safety of the namenode, integrity checks at both ends."""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os

import pytest

from dfs.codec import checksum_of
from dfs.rpc import frames
from dfs.rpc.v1 import datatransfer_pb2 as dpb
from dfs.rpc.v1 import namenode_pb2 as pb
from dfs.testing import Cluster


def csv_text(n_bytes: int) -> bytes:
    rows, i = [], 0
    size = 0
    while size < n_bytes:
        row = b"%d,2026-11-%02d,customer-%05d,%.2f,widget %s\n" % (
            i, i % 28 + 1, i % 7919, i * 1.37, b"blue" if i % 3 else b"red")
        rows.append(row)
        size += len(row)
        i += 1
    return b"".join(rows)[:n_bytes]


def datanode_files(cluster: Cluster) -> list[str]:
    out = []
    for d in cluster.datanodes:
        out += [p for p in glob.glob(os.path.join(d.data_dir, "**"), recursive=True) if os.path.isfile(p)]
    return out


@pytest.mark.parametrize("block_size,size", [
    ("64KiB", 64 * 1024 * 5 + 17),        # many small blocks, last one partial
    ("1MiB", 3 * 1024 * 1024),            # exact multiple of the block size
    ("64MiB", 64 * 1024 * 1024 + 4096),   # the default block size, two blocks
])
def test_multi_block_round_trip(shared_cluster, tmp_path, block_size, size):
    data = os.urandom(size)
    src = tmp_path / "src"
    src.write_bytes(data)
    path = f"/roundtrip-{block_size}"
    r = shared_cluster.cli("put", "-f", "--block-size", block_size, str(src), path)
    assert r.returncode == 0, r.stderr
    locs = json.loads(shared_cluster.cli("locate", "--json", path).stdout)
    bs = {"64KiB": 65536, "1MiB": 1 << 20, "64MiB": 64 << 20}[block_size]
    assert len(locs) == -(-size // bs)
    assert all(len(b["names"]) == 3 for b in locs)
    out = tmp_path / "out"
    assert shared_cluster.cli("get", path, str(out)).returncode == 0
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
    # A ranged read through the client API matches too.
    client = shared_cluster.client()
    assert client.read_bytes(path, size // 3, 100_000) == data[size // 3: size // 3 + 100_000]


def test_no_plaintext_at_rest_and_compression_pays(cluster, tmp_path):
    text = csv_text(6 * 1024 * 1024)
    marker = os.urandom(24).hex().encode()          # 48 printable bytes, unique
    text = text[:1000] + marker + text[1000 + len(marker):]
    rnd = os.urandom(2 * 1024 * 1024)
    (tmp_path / "t.csv").write_bytes(text)
    (tmp_path / "r.bin").write_bytes(rnd)
    assert cluster.cli("put", str(tmp_path / "t.csv"), "/t.csv").returncode == 0
    assert cluster.cli("put", str(tmp_path / "r.bin"), "/r.bin").returncode == 0
    probes = [marker, text[5000:5032], text[-64:-32], rnd[:32], rnd[1 << 20:(1 << 20) + 32], rnd[-32:]]
    files = datanode_files(cluster)
    assert files
    for path in files:
        with open(path, "rb") as f:
            blob = f.read()
        for p in probes:
            assert p not in blob, f"plaintext found in {path}"
    # Three replicas of compressible text take less room than one plain copy.
    replicas = glob.glob(os.path.join(cluster.base, "datanode*", "current", "*", "*.data"))
    stored = sum(os.path.getsize(p) for p in replicas
                 if _block_of(p) in _blocks(cluster, "/t.csv"))
    assert 0 < stored < len(text), (stored, len(text))
    assert cluster.client().read_bytes("/t.csv") == text


def _blocks(cluster, path):
    return {b["block_id"] for b in json.loads(cluster.cli("locate", "--json", path).stdout)}


def _block_of(data_path: str) -> int:
    return int(os.path.basename(data_path).split("_")[1])


def test_namenode_sigkill_loses_no_acknowledged_file(cluster, tmp_path):
    files = {}
    for i in range(6):
        data = os.urandom(300_000 * (i + 1))
        files[f"/ack/f{i}"] = data
        (tmp_path / f"f{i}").write_bytes(data)
    assert cluster.cli("mkdir", "/ack").returncode == 0
    for i, path in enumerate(files):
        assert cluster.cli("put", str(tmp_path / f"f{i}"), path).returncode == 0
    assert cluster.cli("mkdir", "-p", "/ack/dir/sub").returncode == 0
    assert cluster.cli("mv", "/ack/f5", "/ack/dir/sub/f5").returncode == 0
    files["/ack/dir/sub/f5"] = files.pop("/ack/f5")
    cluster.kill(cluster.namenode)
    cluster.restart(cluster.namenode)
    cluster.wait_for_datanodes(3)
    client = cluster.client()
    for path, data in files.items():
        assert client.read_bytes(path) == data, path
    assert cluster.fsck()["status"] == "HEALTHY"


def test_writes_with_fewer_datanodes_than_replication(tmp_path):
    with Cluster(str(tmp_path / "c"), datanodes=2, replication=3) as c:
        (tmp_path / "x").write_bytes(b"x" * 100_000)
        r = c.cli("put", str(tmp_path / "x"), "/x")
        assert r.returncode == 0, r.stderr
        f = c.fsck()
        assert f["status"] == "DEGRADED" and f["under_replicated"] == 1
        assert c.cli("fsck", "/").returncode == 1
        assert c.cli("cat", "/x").stdout == b"x" * 100_000


def test_no_live_datanodes_fails_clearly(tmp_path):
    with Cluster(str(tmp_path / "c"), datanodes=0, replication=1) as c:
        (tmp_path / "x").write_bytes(b"data")
        r = c.cli("put", str(tmp_path / "x"), "/x")
        assert r.returncode == 1
        assert b"no live datanodes" in r.stderr and b"Traceback" not in r.stderr
        assert c.cli("test", "-e", "/x").returncode == 1


def test_datanode_rejects_a_chunk_with_a_wrong_checksum(shared_cluster):
    node = shared_cluster.datanodes[0]
    block_id = 987_654_321
    record = os.urandom(4096)
    s = frames.connect(node.address)
    try:
        frames.send_msg(s, dpb.OpHeader(op=dpb.OpHeader.WRITE_BLOCK, block_id=block_id, genstamp=1,
                                        chunk_size=1 << 20))
        frames.send_msg(s, dpb.ChunkFrame(meta=dpb.ChunkMeta(stored_length=len(record), plain_length=4000,
                                                               checksum=checksum_of(record) ^ 1)), record)
        frames.send_msg(s, dpb.ChunkFrame(end=True))
        ack = frames.recv_msg(s, dpb.WriteAck)
    finally:
        s.close()
    assert "checksum" in ack.error and not ack.stored
    assert shared_cluster.replica_files(block_id) == []
    assert not os.listdir(os.path.join(node.data_dir, "tmp"))


def test_tampered_chunks_never_reach_the_reader(cluster, tmp_path):
    data = os.urandom(2 * 1024 * 1024 + 333)
    (tmp_path / "d").write_bytes(data)
    assert cluster.cli("put", str(tmp_path / "d"), "/d").returncode == 0
    blocks = json.loads(cluster.cli("locate", "--json", "/d").stdout)
    first = blocks[0]["block_id"]
    holders = [n for n, _ in cluster.replica_files(first)]
    # One bad replica: the read goes on from another and returns the right bytes.
    cluster.corrupt_replica(first, holders[0])
    for _ in range(3):
        r = cluster.cli("cat", "/d")
        assert r.returncode == 0 and r.stdout == data
    # Every replica bad: the read fails with a clear error, never with wrong bytes.
    second = blocks[1]["block_id"]
    for node, _ in cluster.replica_files(second):
        cluster.corrupt_replica(second, node)
    r = cluster.cli("cat", "/d")
    assert r.returncode == 1
    assert r.stdout == data[:len(r.stdout)]     # whatever came out before the bad block is right
    assert len(r.stdout) <= 1 << 20
    assert b"no readable replica" in r.stderr and b"Traceback" not in r.stderr
    # that read reported them all: the next one is told why there is nothing to try
    r = cluster.cli("cat", "/d")
    assert r.returncode == 1 and f"no readable replica of block {second} (every replica is corrupt)".encode() \
        in r.stderr, r.stderr
    out = tmp_path / "o"
    assert cluster.cli("get", "/d", str(out)).returncode == 1
    assert not out.exists()


def test_streamed_reads_fail_over_in_the_middle_of_a_block(cluster, tmp_path):
    """The read-ahead iter_range and copy_to (decrypting straight into a DirectFile's
    buffer) go on from the chunk where a replica turned out bad, never pass its bytes
    on, and give up cleanly when no good copy is left."""
    from dfs import errors
    from dfs.directio import DirectFile
    mib = 1 << 20
    data = os.urandom(20 * mib + 333)                     # blocks of 8, 8 and 4+ chunks
    (tmp_path / "s").write_bytes(data)
    assert cluster.cli("put", "--block-size", "8MiB", str(tmp_path / "s"), "/s").returncode == 0
    blocks = [b["block_id"] for b in json.loads(cluster.cli("locate", "--json", "/s").stdout)]
    assert len(blocks) == 3
    record = mib + 29                                      # stored size of a random 1 MiB chunk

    def damage(block_id, node, chunk):
        cluster.corrupt_replica(block_id, node, offset=chunk * record + record // 2)

    holders = [n for n, _ in cluster.replica_files(blocks[0])]
    damage(blocks[0], holders[0], 2)                       # whichever is read first goes bad part way
    damage(blocks[0], holders[1], 5)
    third = [n for n, _ in cluster.replica_files(blocks[2])][0]
    damage(blocks[2], third, 1)
    bad = {(blocks[0], holders[0].address), (blocks[0], holders[1].address), (blocks[2], third.address)}
    client = cluster.client()
    reports = []
    client.report_bad = lambda block_id, address, reason="": reports.append((block_id, address))  # keep them

    def bad_first(r):
        """Replica order is the namenode's; put the damaged replicas first so the
        reads below cannot all happen to start on the good one."""
        for b in r.blocks:
            locs = []
            for d in sorted(b.locations, key=lambda d: (b.block.block_id, d.address) not in bad):
                copy = type(d)()
                copy.CopyFrom(d)
                locs.append(copy)
            del b.locations[:]
            b.locations.extend(locs)
        return r

    assert b"".join(bad_first(client.open_read("/s")).iter_range()) == data
    out = tmp_path / "out"
    with DirectFile(str(out)) as f:
        assert bad_first(client.open_read("/s")).copy_to(f) == len(data)
    assert out.read_bytes() == data
    with DirectFile(str(out)) as f:
        assert client.download("/s", f) == len(data)
    assert out.read_bytes() == data
    r = bad_first(client.open_read("/s"))
    for lo, n in ((3 * mib + 5, 9 * mib), (0, 1), (mib - 1, 2), (19 * mib, 2 * mib)):
        with DirectFile(str(out)) as f:
            r.copy_to(f, lo, n)
        assert out.read_bytes() == data[lo:lo + n]
        assert b"".join(r.iter_range(lo, n)) == data[lo:lo + n]
    # The mount's chunk fetch (fetch_chunks): both damaged replicas of block 0 first.
    assert b"".join(bad_first(client.open_read("/s")).fetch_chunks(0, 0, 7)) == data[:8 * mib]
    assert reports and set(reports) <= bad
    # No good copy of the middle block: an error, and what was written before it is right.
    for node, _ in cluster.replica_files(blocks[1]):
        damage(blocks[1], node, 3)
    with pytest.raises(errors.BlockMissingError):
        b"".join(client.open_read("/s").iter_range())
    with pytest.raises(errors.BlockMissingError), DirectFile(str(out)) as f:
        client.open_read("/s").copy_to(f)
    sink = io.BytesIO()
    with pytest.raises(errors.BlockMissingError):
        client.open_read("/s").copy_to(sink)
    got = sink.getvalue()
    assert got == data[:len(got)] and len(got) <= 11 * mib


@pytest.mark.parametrize("fail_ack", [1, 3, 5], ids=["first-draining", "middle-draining", "last"])
def test_a_failed_acknowledgement_rewrites_that_block_and_the_one_after_it(cluster, monkeypatch, fail_ack):
    """The writer reads block N's acknowledgement only after streaming block N+1
    (no drain between blocks). When that acknowledgement says the pipeline failed,
    N+1 is dropped, N is written again elsewhere, then N+1 again, and the file
    reads back whole. The namenode and datanodes are real; the failure is made
    in the client by turning the chosen acknowledgement into a failure."""
    from dfs.client import writer as writer_mod

    real_ack = writer_mod.FileWriter._ack
    calls = []

    def ack(self, block, sock):
        calls.append(block.block_id)
        if len(calls) == fail_ack:
            sock.close()
            return block.targets[:1]
        return real_ack(self, block, sock)

    monkeypatch.setattr(writer_mod.FileWriter, "_ack", ack)
    data = os.urandom(5 * 1024 * 1024 - 5)             # 5 blocks of 1 MiB, the last short
    client = cluster.client()
    st = client.write_bytes("/acked.bin", data)
    assert st.size == len(data)
    assert len(calls) == 6                             # five blocks, one written twice
    assert client.read_bytes("/acked.bin") == data
    blocks = json.loads(cluster.cli("locate", "--json", "/acked.bin").stdout)
    assert [b["length"] for b in blocks] == [1 << 20] * 4 + [(1 << 20) - 5]
    assert calls[fail_ack - 1] not in [b["block_id"] for b in blocks]
    cluster.wait_for_status("HEALTHY", timeout=30)


def test_blocks_stream_back_to_back_without_a_drain(cluster, monkeypatch):
    """Every block after the first is allocated while the one before it is still
    being acknowledged (AddBlock names it as draining)."""
    from dfs.client import writer as writer_mod

    real_add = writer_mod.FileWriter._add_block
    draining = []

    def add_block(self):
        draining.append(self._sending.draining is not None)
        return real_add(self)

    monkeypatch.setattr(writer_mod.FileWriter, "_add_block", add_block)
    data = os.urandom(5 * 1024 * 1024)
    client = cluster.client()
    client.write_bytes("/streamed.bin", data)
    assert draining == [False, True, True, True, True]   # the first comes with Create
    assert client.read_bytes("/streamed.bin") == data


def test_mode_zero_from_the_client_api_is_kept_and_no_mode_means_the_default(shared_cluster):
    """0 is a mode (mkdir -m 0, a private file): the namenode used to read it as
    "unset" and made such a directory 0755 and such a file 0644."""
    client = shared_cluster.client()
    assert client.mkdir("/mode0-dir", mode=0).mode == 0
    client.create("/mode0-empty", mode=0).close()
    assert client.stat("/mode0-empty").mode == 0
    client.write_bytes("/mode0-data", b"secret", mode=0)
    assert client.stat("/mode0-data").mode == 0
    assert client.mkdir("/default-dir").mode == 0o755
    client.write_bytes("/default-file", b"x")
    assert client.stat("/default-file").mode == 0o644
    # A request without the field at all (an older client) still gets the defaults.
    raw = client.nn.call("Mkdir", pb.MkdirRequest(path="/unset-dir"))
    assert raw.status.mode == 0o755
