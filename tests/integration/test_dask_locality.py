"""Locality: Dask tasks run where their blocks live, and a dead host never stalls a job.

Three datanodes on distinct loopback hosts (127.0.x.y), replication 2 (so each
block lives on two of the three hosts and placement matters), and one Dask
worker process (with its nanny) per datanode host, started with ``dask worker
--host <that ip>``; the scheduler runs in its own process on 127.0.0.1.
"""

from __future__ import annotations

import errno
import io
import os
import random
import signal
import subprocess
import sys
import time

import cloudpickle
import pandas as pd
import pytest
from distributed import Client, get_task_stream, get_worker

import dfs.dask
from dfs import errors
from dfs.client.filesystem import DFSFileSystem
from dfs.testing import Cluster
from dfs.testing.cluster import free_port

BLOCK = 256 << 10
# Task functions defined here travel by value: workers need not import this module.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _spawn(args, env, log):
    out = open(log, "ab")
    try:
        return subprocess.Popen([sys.executable, "-m", *args], stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    finally:
        out.close()


def _killpg(proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("locality")
    cluster = Cluster(str(base / "dfs"), datanodes=3, replication=2, block_size="256KiB").start()
    hosts = [d.address.rpartition(":")[0] for d in cluster.datanodes]
    assert len(set(hosts)) == 3
    penv = {**os.environ, "PYTHONUNBUFFERED": "1", "DASK_DISTRIBUTED__WORKER__DAEMON": "False",
            # strictly local placement: no stealing of a busy host's tasks by an idle one
            "DASK_DISTRIBUTED__SCHEDULER__WORK_STEALING": "False"}
    penv.pop("DFS_NAMENODE", None)
    port = free_port("127.0.0.1")
    sched = _spawn(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
                    "--no-dashboard"], penv, base / "scheduler.log")
    workers = {}
    for h in hosts:
        # DFS_CLIENT_HOST: on a real network the namenode sees this host as the
        # caller; on loopback every connection comes from 127.0.0.1, so say it.
        workers[h] = _spawn(["distributed.cli.dask_worker", f"tcp://127.0.0.1:{port}", "--host", h,
                             "--nthreads", "2", "--name", f"dn-{h}", "--no-dashboard",
                             "--local-directory", str(base / f"w-{h}")],
                            {**penv, "DFS_CLIENT_HOST": h}, base / f"worker-{h}.log")
    client = Client(f"tcp://127.0.0.1:{port}", timeout=60)
    try:
        client.wait_for_workers(3, timeout=90)
        fs = DFSFileSystem(namenode=cluster.namenode_address, skip_instance_cache=True)
        yield {"cluster": cluster, "client": client, "fs": fs, "hosts": hosts, "workers": workers,
               "scheduler": sched, "base": base}
    finally:
        client.close()
        for p in [*workers.values(), sched]:
            _killpg(p, signal.SIGTERM)
        cluster.stop()


def _where(block: bytes):
    """Runs on a worker: where it ran, and what it read."""
    import xxhash
    return get_worker().address.split("://")[1].rsplit(":", 1)[0], len(block), xxhash.xxh64_hexdigest(block)


def _local_share(placements, blocks) -> float:
    local = sum(1 for host, b in zip(placements, blocks, strict=True) if host in b["hosts"])
    return local / len(blocks)


def test_map_blocks_runs_every_block_on_a_worker_holding_it(env):
    import xxhash
    fs, client = env["fs"], env["client"]
    data = os.urandom(12 * BLOCK + 1000)             # 13 blocks
    fs.pipe_file("/loc/data.bin", data)
    blocks = fs.get_block_locations("/loc/data.bin")
    assert len(blocks) == 13
    assert all(len(b["hosts"]) == 2 for b in blocks)
    # Replication 2 of 3 hosts: a random worker would hold a block only 2/3 of the time.
    assert len({tuple(sorted(b["hosts"])) for b in blocks}) > 1

    futures = dfs.dask.map_blocks(client, _where, f"dfs://{fs.namenode}/loc/data.bin")
    results = client.gather(futures)
    assert [r[1] for r in results] == [b["length"] for b in blocks]        # block order
    assert [r[2] for r in results] == [xxhash.xxh64_hexdigest(data[b["offset"]:b["offset"] + b["length"]])
                                       for b in blocks]
    assert _local_share([r[0] for r in results], blocks) == 1.0, (results, blocks)


def test_csv_partitions_are_read_where_their_blocks_live(env):
    fs, client = env["fs"], env["client"]
    n = 40_000
    df = pd.DataFrame({"id": range(n), "x": [i * 0.5 for i in range(n)],
                       "s": [f"row-{i:06d}" for i in range(n)]})
    with fs.open("/loc/table.csv", "wb") as f:
        f.write(df.to_csv(index=False).encode())
    parts = dfs.dask.splits(fs, "/loc/table.csv")
    assert len(parts) >= 3
    with get_task_stream(client) as ts:
        ddf = dfs.dask.read_csv(client, f"dfs://{fs.namenode}/loc/table.csv")
        assert ddf.npartitions == len(parts)
        out = ddf.compute()
    pd.testing.assert_frame_equal(out.reset_index(drop=True), df)
    ran = {t["key"].rsplit("-", 1)[1]: t["worker"] for t in ts.data
           if str(t["key"]).startswith("dfs-read-csv")}
    assert len(ran) == len(parts)
    for i, s in enumerate(parts):
        assert ran[str(i)].split("://")[1].rsplit(":", 1)[0] in s.hosts


def test_a_csv_header_longer_than_the_sample_is_given_to_every_split(env):
    # The header for later splits came from a 64 KiB sample cut at its last newline:
    # an 80 KB header was cut to nothing and pandas took each split's first row for it
    # ((23, 170000) instead of (41, 10000), silently).
    fs, client = env["fs"], env["client"]
    cols = [f"c{i:06d}" for i in range(10_000)]
    df = pd.DataFrame([[r] * 10_000 for r in range(41)], columns=cols)
    fs.pipe_file("/loc/wide.csv", df.to_csv(index=False).encode())
    assert len(dfs.dask.splits(fs, "/loc/wide.csv")) >= 3
    got = dfs.dask.read_csv(client, f"dfs://{fs.namenode}/loc/wide.csv").compute()
    pd.testing.assert_frame_equal(got.reset_index(drop=True), df)


def test_parquet_row_groups_are_read_where_they_live(env):
    fs, client = env["fs"], env["client"]
    n = 60_000
    df = pd.DataFrame({"a": range(n), "b": [float(i) for i in range(n)]})
    buf = io.BytesIO()
    df.to_parquet(buf, row_group_size=10_000, compression=None)
    fs.pipe_file("/loc/table.parquet", buf.getvalue())
    with get_task_stream(client) as ts:
        ddf = dfs.dask.read_parquet(client, f"dfs://{fs.namenode}/loc/table.parquet")
        assert ddf.npartitions == 6
        out = ddf.compute()
    pd.testing.assert_frame_equal(out.reset_index(drop=True), df)
    blocks = fs.get_block_locations("/loc/table.parquet")
    tasks = [t for t in ts.data if str(t["key"]).startswith("dfs-read-parquet")]
    assert len(tasks) == 6
    # every row group was read on a host holding at least one of its blocks
    import pyarrow.parquet as pq
    md = pq.ParquetFile(io.BytesIO(buf.getvalue())).metadata
    for t in tasks:
        rg = int(t["key"].rsplit("-", 1)[1])
        lo, hi = dfs.dask._row_group_range(md.row_group(rg))
        hosts = {h for b in blocks if b["offset"] < hi and b["offset"] + b["length"] > lo for h in b["hosts"]}
        assert t["worker"].split("://")[1].rsplit(":", 1)[0] in hosts


def test_text_bag_lines(env):
    fs, client = env["fs"], env["client"]
    lines = [f"line {i} " + "x" * (i % 50) + "\n" for i in range(20_000)]
    fs.pipe_file("/loc/lines.txt", "".join(lines).encode())
    bag = dfs.dask.read_text(client, f"dfs://{fs.namenode}/loc/lines.txt")
    assert bag.npartitions == len(fs.get_block_locations("/loc/lines.txt"))
    assert bag.compute() == lines


def test_text_lines_are_cut_at_newlines_only(env):
    # JSON lines may hold U+2028 or a form feed inside a string: str.splitlines cut
    # records there. Lines are what dask.bag.read_text and a text-mode file give.
    fs, client = env["fs"], env["client"]
    text = '{"msg": "para\u2028graph"}\npage1\x0cpage2\r\nlast'
    fs.pipe_file("/loc/odd.txt", text.encode())
    got = dfs.dask.read_text(client, f"dfs://{fs.namenode}/loc/odd.txt").compute()
    assert got == ['{"msg": "para\u2028graph"}\n', "page1\x0cpage2\n", "last"]


def test_compressed_text_is_read_whole_and_decompressed(env):
    import gzip

    fs, client = env["fs"], env["client"]
    url = f"dfs://{fs.namenode}/loc/gz"
    rnd = random.Random(7)
    df = pd.DataFrame({"a": range(60_000), "b": [f"{rnd.getrandbits(64):016x}" for _ in range(60_000)]})
    raw = df.to_csv(index=False).encode()
    packed = gzip.compress(raw, compresslevel=1)
    assert len(packed) > 2 * BLOCK          # several blocks, yet one split
    fs.pipe_file("/loc/gz/t.csv.gz", packed)
    parts = dfs.dask.splits(fs, "/loc/gz/t.csv.gz", compression="infer")
    assert [(s.offset, s.length, s.compression) for s in parts] == [(0, len(packed), "gzip")]
    ddf = dfs.dask.read_csv(client, f"{url}/t.csv.gz")
    pd.testing.assert_frame_equal(ddf.compute().reset_index(drop=True), df)
    lines = dfs.dask.read_text(client, f"{url}/t.csv.gz").compute()
    assert "".join(lines).encode() == raw
    fs.pipe_file("/loc/gz/r.json.gz", gzip.compress(df.to_json(orient="records", lines=True).encode()))
    got = dfs.dask.read_json(client, f"{url}/r.json.gz").compute().reset_index(drop=True)
    pd.testing.assert_frame_equal(got, df)
    # Raw bytes stay raw unless asked: read_bytes is dask's read_bytes.
    assert client.gather(dfs.dask.read_bytes(client, f"{url}/t.csv.gz"))[0] == packed[:BLOCK]
    assert client.gather(dfs.dask.read_bytes(client, f"{url}/t.csv.gz", compression="gzip")) == [raw]


def test_a_dfs_error_in_a_task_reaches_the_client_as_itself(env):
    # Workers pickle a task's exception (tblib) for the client: DfsError's errno had no
    # setter and a gRPC error hung on __context__, so every one arrived as a bare
    # Exception and `except FileNotFoundError` around compute() never matched.
    fs, client = env["fs"], env["client"]
    with pytest.raises(FileNotFoundError) as e:
        client.submit(fs.cat_file, "/loc/nope", pure=False).result()
    assert isinstance(e.value, errors.DfsFileNotFoundError) and e.value.errno == errno.ENOENT
    assert str(e.value) == "/loc/nope: No such file or directory"
    fs.pipe_file("/loc/private", b"x")
    fs.chmod("/loc/private", 0o600)
    other = DFSFileSystem(namenode=fs.namenode, user="mallory", skip_instance_cache=True)
    with pytest.raises(PermissionError):
        client.submit(other.cat_file, "/loc/private", pure=False).result()


def test_job_completes_with_one_host_killed(env):
    """Kill a whole host -- its Dask worker (nanny and all) and its datanode -- mid-job."""
    import xxhash
    fs, client, cluster = env["fs"], env["client"], env["cluster"]
    data = os.urandom(24 * BLOCK)
    fs.pipe_file("/loc/survive.bin", data)
    blocks = fs.get_block_locations("/loc/survive.bin")
    victim = env["hosts"][0]

    def slow(block: bytes):
        time.sleep(0.2)
        return _where(block)

    futures = dfs.dask.map_blocks(client, slow, f"dfs://{fs.namenode}/loc/survive.bin")
    time.sleep(0.5)                                  # some tasks are running on the victim now
    _killpg(env["workers"][victim])
    cluster.kill(next(d for d in cluster.datanodes if d.address.startswith(victim + ":")))
    results = client.gather(futures)                 # completes: soft restrictions
    assert [r[2] for r in results] == [xxhash.xxh64_hexdigest(data[b["offset"]:b["offset"] + b["length"]])
                                       for b in blocks]
    survivors = set(env["hosts"][1:])
    assert {r[0] for r in results} - {victim} <= survivors
    # A block whose only other replica was on the victim still ran (on a survivor).
    again = client.gather(dfs.dask.map_blocks(client, _where, f"dfs://{fs.namenode}/loc/survive.bin"))
    assert {r[0] for r in again} <= survivors
    assert [r[2] for r in again] == [r[2] for r in results]


def _has_ipv6_loopback() -> bool:
    import socket
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback ([::1]) here")
def test_ipv6_blocks_are_placed_on_the_workers_of_their_host(tmp_path):
    """On an IPv6 cluster block hosts are "[::1]" (the host part of "[::1]:9866", SPEC
    §3) and a Dask worker's host is "::1": they never matched, so no task was restricted
    to its block's host (locality lost, silently). IPv6 has one loopback address, so the
    datanodes differ by port and every worker is on every block's host."""
    from distributed import LocalCluster
    with Cluster(str(tmp_path / "dfs"), datanodes=2, replication=2, block_size="256KiB", ipv6=True) as cluster, \
            LocalCluster(n_workers=1, threads_per_worker=2, processes=False, host="[::1]", protocol="tcp://",
                         dashboard_address=None) as dask_cluster, Client(dask_cluster) as client:
        fs = DFSFileSystem(namenode=cluster.namenode_address, skip_instance_cache=True)
        fs.pipe_file("/v6/data.bin", os.urandom(2 * BLOCK + 10))
        blocks = fs.get_block_locations("/v6/data.bin")
        assert [b["hosts"] for b in blocks] == [["[::1]", "[::1]"]] * 3         # the SPEC's shape, kept
        assert dfs.dask.hosts_to_workers(client, blocks[0]["hosts"]) == ["::1"]
        futures = dfs.dask.map_blocks(client, len, f"dfs://{fs.namenode}/v6/data.bin")
        assert client.gather(futures) == [b["length"] for b in blocks]
        keys = {f.key for f in futures}
        restrictions = client.run_on_scheduler(
            lambda dask_scheduler: [(ts.host_restrictions, ts.loose_restrictions)
                                    for k, ts in dask_scheduler.tasks.items() if k in keys])
        assert restrictions == [({"::1"}, True)] * 3
