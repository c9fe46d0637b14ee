#!/usr/bin/env python3
"""PyData benchmarks for dfs (issue 4). Run: .venv/bin/python scripts/bench_pydata.py [--json]

1. pandas: ``pd.read_parquet("dfs://...")`` against ``pd.read_parquet(local file)``,
   same file, same run, replication 3, 64 MiB blocks; rounds interleaved, medians
   compared (goal: dfs <= 2x local).
2. scan: a Dask job reading every block of a file, locality-aware
   (``dfs.dask.map_blocks``: each task softly restricted to the workers on its
   block's hosts) against the same tasks unrestricted. Reports the share of
   data-local tasks and the time of each.

   One machine has no network between "hosts", so by default (root, ``ip
   netns`` available) the scan runs on an emulated cluster: every host is a
   network namespace with its own address (10.203.0.x) and a NIC shaped with
   tc (``--nic-mbit``, default 1000 = 1 GbE), all joined by a bridge; the
   namenode and scheduler sit on a head host. A task reading its own host's
   datanode goes over that host's loopback, any other read crosses two shaped
   NICs, as on a real cluster. ``--no-netns`` runs it on plain loopback
   (127.0.x.y), where a remote read costs the same as a local one.

``bench_pydata(**options) -> dict`` is the entry point for scripts/bench.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


if __name__ != "__main__":      # imported (scripts/bench): ship this module's task functions by value
    import cloudpickle
    cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _log(msg: str) -> None:
    print(f"bench_pydata: {msg}", file=sys.stderr, flush=True)


# -- 1. pandas read_parquet ------------------------------------------------------
def bench_pandas(rows: int = 4_000_000, rounds: int = 7, base: str | None = None) -> dict:
    import numpy as np
    import pandas as pd

    from dfs.testing import Cluster
    base = base or tempfile.mkdtemp(prefix="dfs-bench-pd-")
    rng = np.random.default_rng(1)
    df = pd.DataFrame({
        "id": np.arange(rows, dtype="int64"),
        "x": rng.normal(size=rows),
        "y": rng.integers(0, 1000, rows),
        "cat": pd.Series(rng.choice(["alpha", "beta", "gamma", "delta"], rows)),
        "s": pd.Series([f"user-{i % 50_000}" for i in range(rows)]),
    })
    local = os.path.join(base, "table.parquet")
    df.to_parquet(local)
    size = os.path.getsize(local)
    with Cluster(os.path.join(base, "cluster"), datanodes=3, replication=3, block_size="64MiB") as c:
        import fsspec
        url = f"dfs://{c.namenode_address}/bench/table.parquet"
        fs = fsspec.filesystem("dfs", namenode=c.namenode_address)
        fs.put_file(local, "/bench/table.parquet")
        assert fs.info("/bench/table.parquet")["replication"] == 3
        t_local, t_dfs = [], []
        pd.read_parquet(local)
        pd.read_parquet(url)                           # warm both paths once
        for r in range(rounds):
            for which in (("local", "dfs") if r % 2 == 0 else ("dfs", "local")):
                t0 = time.perf_counter()
                out = pd.read_parquet(local if which == "local" else url)
                (t_local if which == "local" else t_dfs).append(time.perf_counter() - t0)
                assert len(out) == rows
    shutil.rmtree(base, ignore_errors=True)
    ml, md = statistics.median(t_local), statistics.median(t_dfs)
    return {"file_mb": round(size / 1e6, 1), "rows": rows, "rounds": rounds,
            "local_median_s": round(ml, 3), "dfs_median_s": round(md, 3), "ratio_median": round(md / ml, 2),
            "local_min_s": round(min(t_local), 3), "dfs_min_s": round(min(t_dfs), 3),
            "ratio_min": round(min(t_dfs) / min(t_local), 2)}


# -- 2. locality-aware vs unrestricted scan ---------------------------------------------
def _digest(block: bytes):
    import distributed
    import xxhash
    return (distributed.comm.get_address_host(distributed.get_worker().address),
            xxhash.xxh3_64_intdigest(block))


def _scan_client(namenode: str, scheduler: str, workers: int, total_mb: int, block_mb: int,
                 rounds: int) -> dict:
    """Runs where the cluster is reachable: writes the data, times both scans."""
    import numpy as np
    from distributed import Client

    import dfs.dask
    from dfs.client.filesystem import DFSFileSystem
    fs = DFSFileSystem(namenode=namenode)
    client = Client(scheduler, timeout=60)
    client.wait_for_workers(workers, timeout=120)
    path = "/bench/scan.bin"
    rng = np.random.default_rng(3)
    with fs.open(path, "wb", dfs_block_size=block_mb << 20) as f:
        for _ in range(total_mb // block_mb):
            f.write(rng.bytes(block_mb << 20))       # incompressible: every byte travels
    blocks = fs.get_block_locations(path)
    per_host: dict[str, int] = {}
    for b in blocks:
        for h in b["hosts"]:
            per_host[h] = per_host.get(h, 0) + 1

    def aware():
        return client.gather(dfs.dask.map_blocks(client, _digest, path, fs=fs))

    def unrestricted():
        return client.gather([client.submit(dfs.dask._block_task, fs, path, b["offset"], b["length"], _digest,
                                            pure=False) for b in blocks])

    times: dict[str, list[float]] = {"aware": [], "unrestricted": []}
    shares: dict[str, list[float]] = {"aware": [], "unrestricted": []}
    digests = None
    for r in range(rounds + 1):                      # round 0 warms page caches and imports
        for name in (("aware", "unrestricted") if r % 2 == 0 else ("unrestricted", "aware")):
            t0 = time.perf_counter()
            res = aware() if name == "aware" else unrestricted()
            dt = time.perf_counter() - t0
            if digests is None:
                digests = [d for _, d in res]
            assert [d for _, d in res] == digests
            share = sum(1 for (host, _), b in zip(res, blocks, strict=True) if host in b["hosts"]) / len(blocks)
            if r:
                times[name].append(dt)
                shares[name].append(share)
    client.close()
    out = {"blocks": len(blocks), "block_mb": block_mb, "data_mb": total_mb, "blocks_per_host": per_host,
           "replication": len(blocks[0]["hosts"]), "rounds": rounds}
    for name in times:
        out[name] = {"median_s": round(statistics.median(times[name]), 3),
                     "min_s": round(min(times[name]), 3),
                     "local_share": round(statistics.mean(shares[name]), 3),
                     "mb_per_s": round(total_mb / statistics.median(times[name]), 1)}
    out["speedup"] = round(out["unrestricted"]["median_s"] / out["aware"]["median_s"], 2)
    return out


class _Procs:
    def __init__(self, base: str):
        self.base, self.procs = base, []

    def spawn(self, name: str, argv: list[str], prefix: list[str] | None = None, env: dict | None = None):
        log = open(os.path.join(self.base, f"{name}.log"), "ab")
        p = subprocess.Popen([*(prefix or []), sys.executable, "-m", *argv], stdout=log,
                             stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        log.close()
        self.procs.append(p)
        return p

    def stop(self):
        for p in reversed(self.procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def _wait_port(prefix: list[str], host: str, port: int, timeout: float = 60) -> None:
    code = f"import socket; socket.create_connection(({host!r}, {port}), timeout=1).close()"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True).returncode == 0:
            return
        time.sleep(0.3)
    raise TimeoutError(f"{host}:{port} did not come up")


def _netns_ok() -> bool:
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("tc"):
        return False
    name = f"dfsprobe{os.getpid()}"
    ok = subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode == 0
    if ok:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return ok


class _Netns:
    """A head host and N data hosts, each a network namespace, on one shaped bridge."""

    def __init__(self, hosts: int, nic_mbit: int):
        self.tag = f"db{os.getpid() % 100000}"
        self.switch = f"{self.tag}sw"
        self.names = [f"{self.tag}h{i}" for i in range(hosts + 1)]      # h0 = head
        self.ips = [f"10.203.0.{i + 1}" for i in range(hosts + 1)]
        self.nic_mbit = nic_mbit

    def _ip(self, *args: str) -> None:
        subprocess.run(args, check=True, capture_output=True)

    def up(self) -> None:
        t, rate = self.tag, f"{self.nic_mbit}mbit"
        self._ip("ip", "netns", "add", self.switch)
        self._ip("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
        self._ip("ip", "-n", self.switch, "link", "set", "br0", "up")
        for i, (ns, ip) in enumerate(zip(self.names, self.ips, strict=True)):
            a, b = f"{t}a{i}", f"{t}b{i}"
            self._ip("ip", "netns", "add", ns)
            self._ip("ip", "-n", ns, "link", "set", "lo", "up")
            self._ip("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            self._ip("ip", "link", "set", a, "netns", ns)
            self._ip("ip", "link", "set", b, "netns", self.switch)
            self._ip("ip", "-n", ns, "link", "set", a, "name", "eth0")
            self._ip("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
            self._ip("ip", "-n", ns, "link", "set", "eth0", "up")
            self._ip("ip", "-n", self.switch, "link", "set", b, "master", "br0")
            self._ip("ip", "-n", self.switch, "link", "set", b, "up")
            for where, dev in ((ns, "eth0"), (self.switch, b)):      # the NIC, both directions
                self._ip("tc", "-n", where, "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate,
                         "burst", "256kb", "latency", "20ms")

    def down(self) -> None:
        for ns in [*self.names, self.switch]:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def prefix(self, i: int) -> list[str]:
        return ["ip", "netns", "exec", self.names[i]]


def bench_scan(total_mb: int = 384, block_mb: int = 8, rounds: int = 3, hosts: int = 3, replication: int = 1,
               netns: bool | None = None, nic_mbit: int = 1000, work_stealing: bool = True) -> dict:
    """Locality-aware vs unrestricted scan (see the module docstring)."""
    base = tempfile.mkdtemp(prefix="dfs-bench-scan-")
    procs = _Procs(base)
    use_netns = _netns_ok() if netns is None else netns
    net = _Netns(hosts, nic_mbit) if use_netns else None
    try:
        if net is not None:
            net.up()
            head, data_ips = net.ips[0], net.ips[1:]
            pre = [net.prefix(i) for i in range(hosts + 1)]
            dn_env: list[dict] = [{} for _ in range(hosts)]
        else:
            from dfs.testing.cluster import _host
            head, data_ips = "127.0.0.1", [_host() for _ in range(hosts)]
            pre = [[] for _ in range(hosts + 1)]
            dn_env = [{"DFS_CLIENT_HOST": ip} for ip in data_ips]   # loopback callers all look like 127.0.0.1
        from dfs.testing.cluster import free_port
        nn_port = free_port("127.0.0.1") if net is None else 8020
        sched_port = free_port("127.0.0.1") if net is None else 8786
        nn = f"{head}:{nn_port}"
        env = {"DFS_NAMENODE": "", "DASK_DISTRIBUTED__SCHEDULER__WORK_STEALING": str(work_stealing)}
        procs.spawn("namenode", ["dfs", "namenode", "--data-dir", os.path.join(base, "nn"), "--listen", nn,
                                 "--replication", str(replication), "--block-size", f"{block_mb}MiB",
                                 "--heartbeat-interval", "0.5", "--dead-node-timeout", "10"], pre[0], env)
        procs.spawn("scheduler", ["distributed.cli.dask_scheduler", "--host", head, "--port", str(sched_port),
                                  "--no-dashboard"], pre[0], env)
        _wait_port(pre[0], head, nn_port)
        for i, ip in enumerate(data_ips):
            dn_port = free_port(ip) if net is None else 9866
            procs.spawn(f"datanode{i}", ["dfs", "datanode", "--data-dir", os.path.join(base, f"dn{i}"),
                                         "--namenode", nn, "--listen", f"{ip}:{dn_port}",
                                         "--heartbeat-interval", "0.5"], pre[i + 1], {**env, **dn_env[i]})
            procs.spawn(f"worker{i}", ["distributed.cli.dask_worker", f"tcp://{head}:{sched_port}",
                                       "--host", ip, "--nthreads", "1", "--name", f"host{i}",
                                       "--no-dashboard", "--local-directory", os.path.join(base, f"w{i}")],
                        pre[i + 1], {**env, **dn_env[i]})
        _wait_port(pre[0], head, sched_port)
        if net is None:
            _wait_for_datanodes_in_client(nn, hosts)
            result = _scan_client(nn, f"tcp://{head}:{sched_port}", hosts, total_mb, block_mb, rounds)
        else:
            args = json.dumps([nn, f"tcp://{head}:{sched_port}", hosts, total_mb, block_mb, rounds])
            r = subprocess.run([*pre[0], sys.executable, os.path.abspath(__file__), "--_scan-client", args],
                               capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env},
                               timeout=900)
            if r.returncode != 0:
                raise RuntimeError(f"scan client failed:\n{r.stderr[-4000:]}")
            result = json.loads(r.stdout.strip().splitlines()[-1])
        result["work_stealing"] = work_stealing
        result["network"] = (f"emulated: {hosts} hosts + head in network namespaces, "
                             f"{nic_mbit} Mbit/s NIC each" if net is not None
                             else "loopback (no network cost between hosts)")
        return result
    finally:
        procs.stop()
        if net is not None:
            net.down()
        shutil.rmtree(base, ignore_errors=True)


def _wait_for_datanodes_in_client(namenode: str, n: int) -> None:
    from dfs.client import DfsClient
    c = DfsClient(namenode, retry_seconds=30)
    deadline = time.monotonic() + 60
    while sum(1 for d in c.report().datanodes if d.state == "live") < n:
        if time.monotonic() > deadline:
            raise TimeoutError("datanodes did not register")
        time.sleep(0.3)
    c.close()


def bench_pydata(pandas: bool = True, scan: bool = True, **options) -> dict:
    out = {}
    if pandas:
        _log("pandas read_parquet: dfs:// vs local disk")
        out["pandas_parquet"] = bench_pandas(**{k: options[k] for k in ("rows", "rounds") if k in options})
    if scan:
        _log("scan: locality-aware vs unrestricted")
        keys = ("total_mb", "block_mb", "hosts", "replication", "netns", "nic_mbit", "work_stealing")
        out["scan"] = bench_scan(rounds=options.get("scan_rounds", 3),
                                 **{k: options[k] for k in keys if k in options})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--only", choices=["pandas", "scan"])
    ap.add_argument("--rows", type=int, default=4_000_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--scan-rounds", type=int, default=3)
    ap.add_argument("--total-mb", type=int, default=384)
    ap.add_argument("--block-mb", type=int, default=8)
    ap.add_argument("--replication", type=int, default=1)
    ap.add_argument("--nic-mbit", type=int, default=1000)
    ap.add_argument("--work-stealing", action=argparse.BooleanOptionalAction, default=True,
                    help="Dask work stealing on the scheduler (default: on, Dask's default)")
    ap.add_argument("--netns", action=argparse.BooleanOptionalAction, default=None,
                    help="emulate hosts with network namespaces (default: when root)")
    ap.add_argument("--_scan-client", dest="scan_client", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.scan_client:
        _wait_for_datanodes_in_client(json.loads(a.scan_client)[0], json.loads(a.scan_client)[2])
        print(json.dumps(_scan_client(*json.loads(a.scan_client))))
        return 0
    res = bench_pydata(pandas=a.only != "scan", scan=a.only != "pandas", rows=a.rows, rounds=a.rounds,
                       scan_rounds=a.scan_rounds, total_mb=a.total_mb, block_mb=a.block_mb,
                       replication=a.replication, nic_mbit=a.nic_mbit, netns=a.netns,
                       work_stealing=a.work_stealing)
    if a.json:
        print(json.dumps(res))
        return 0
    if "pandas_parquet" in res:
        p = res["pandas_parquet"]
        print(f"pandas read_parquet, {p['file_mb']} MB, {p['rows']} rows, replication 3, "
              f"{p['rounds']} rounds:")
        print(f"  local disk   median {p['local_median_s']:.3f} s   min {p['local_min_s']:.3f} s")
        print(f"  dfs://       median {p['dfs_median_s']:.3f} s   min {p['dfs_min_s']:.3f} s")
        print(f"  ratio        median {p['ratio_median']:.2f}x     min {p['ratio_min']:.2f}x   (goal <= 2x)")
    if "scan" in res:
        s = res["scan"]
        print(f"scan of {s['data_mb']} MB in {s['blocks']} blocks of {s['block_mb']} MiB, replication "
              f"{s['replication']}, blocks per host {s['blocks_per_host']}; {s['network']}; "
              f"work stealing {'on' if s['work_stealing'] else 'off'}:")
        for name in ("aware", "unrestricted"):
            r = s[name]
            print(f"  {name:<13} median {r['median_s']:.3f} s ({r['mb_per_s']} MB/s)   "
                  f"data-local tasks {r['local_share'] * 100:.0f}%")
        print(f"  locality-aware speed-up {s['speedup']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
