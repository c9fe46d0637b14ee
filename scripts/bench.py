"""dfs benchmarks: each figure beside a ceiling measured in the same run.

    scripts/bench [--size-mib 1024] [--runs 3] [--sections core,meta,repair,fuse,pydata]

Core: `dfs put` / `dfs get` of a file (incompressible and CSV-like text) on a
local 3-datanode cluster at replication 3, beside: the chunk codec alone (all
cores), raw disk writing 3 copies with fsync, and a 3-hop socket chain with
fsync. Meta: mkdir, create-and-close, stat and listing a 10,000-entry
directory from one client thread, beside a no-op RPC timed in the same
rounds. Medians of --runs.
The repair, fuse and pydata sections run scripts/bench_*.py.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from dfs.codec import ChunkCodec  # noqa: E402
from dfs.testing import Cluster  # noqa: E402
from dfs.tuning import tune_malloc  # noqa: E402

MB = 1e6


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def make_inputs(workdir: str, size: int) -> dict[str, str]:
    rnd = os.path.join(workdir, "random.bin")
    with open(rnd, "wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))
    csv = os.path.join(workdir, "text.csv")
    rows = b"".join(b"%d,2026-11-%02d,customer-%05d,%.2f,widget %s,region-%d\n" % (
        i, i % 28 + 1, (i * 7919) % 100000, i * 1.37 % 9999, b"blue" if i % 3 else b"red", i % 17)
        for i in range(200_000))
    with open(csv, "wb") as f:
        written = 0
        while written < size:
            piece = rows[:size - written]
            f.write(piece)
            written += len(piece)
    return {"incompressible": rnd, "compressible": csv}


# -- ceilings ------------------------------------------------------------------
def codec_ceiling(path: str, size: int, runs: int) -> tuple[float, float, float]:
    """Encode and decode MB/s of the file's first 256 MiB on all cores: encode;
    decode keeping every output (256 MiB of fresh memory, as a reader filling a
    new buffer pays for it); decode dropping each output at once (steady state:
    the allocator hands the same warm memory back, the codec's own speed).

    On this VM fresh memory is the dominant cost: its first touch costs ~2-3 s
    per GiB (the host backs guest pages lazily and takes freed ones back within
    seconds), so the two decode figures can differ 5-10x (docs/benchmarks.md)."""
    codec = ChunkCodec(os.urandom(32))
    n = min(size, 256 << 20) >> 20
    with open(path, "rb") as f:
        chunks = [f.read(1 << 20) for _ in range(n)]
    threads = os.cpu_count() or 2

    def decode(i):
        return codec.decode(records[i], 1, i, encoded[i].plain_length, encoded[i].checksum)

    with ThreadPoolExecutor(threads) as pool:
        encoded = list(pool.map(lambda i: codec.encode(chunks[i], 1, i), range(n)))
        records = [b"".join(e.parts) for e in encoded]
        enc = median_time(lambda: list(pool.map(lambda i: codec.encode(chunks[i], 1, i), range(n))), runs)
        kept = median_time(lambda: list(pool.map(decode, range(n))), runs)
        steady = median_time(lambda: sum(map(len, pool.map(decode, range(n)))), runs)
    mb = n * (1 << 20) / MB
    return mb / enc, mb / kept, mb / steady


def copy_ceiling(src: str, workdir: str, size: int, runs: int) -> float:
    """What a get to a local file needs from the one disk: read a file nothing has
    cached and write a copy with O_DIRECT (as `dfs get` does), MB/s."""
    from dfs.directio import DirectFile
    from dfs.tuning import drop_cache

    def run():
        fd = os.open(src, os.O_RDONLY)
        drop_cache(fd, 0, 0)
        dst = os.path.join(workdir, "copy.out")
        try:
            with DirectFile(dst) as out:
                while True:
                    b = os.read(fd, 4 << 20)
                    if not b:
                        break
                    out.write(b)
        finally:
            os.close(fd)
            os.unlink(dst)
    return size / median_time(run, runs) / MB


def duplex_ceiling(src: str, workdir: str, size: int) -> float:
    """What the one disk gives a get, whose datanode reads a replica while the client
    writes the copy: a cold read of ``src`` and an O_DIRECT write of as many bytes,
    at once, on two threads. MB/s of each (the later of the two to finish)."""
    from dfs.directio import DirectFile
    from dfs.tuning import drop_cache
    block = os.urandom(4 << 20)

    def read():
        fd = os.open(src, os.O_RDONLY)
        drop_cache(fd, 0, 0)
        try:
            while os.read(fd, 4 << 20):
                pass
        finally:
            os.close(fd)

    def write():
        dst = os.path.join(workdir, "duplex.out")
        with DirectFile(dst) as out:
            for _ in range(size // len(block)):
                out.write(block)
        os.unlink(dst)

    t = time.perf_counter()
    ts = [threading.Thread(target=f) for f in (read, write)]
    for x in ts:
        x.start()
    for x in ts:
        x.join()
    return size / (time.perf_counter() - t) / MB


def disk_ceiling(src: str, workdir: str, size: int, runs: int) -> float:
    """Three fsync'd copies written at once (plain buffered writes), MB/s of one copy."""
    def copy(i: int) -> None:
        dst = os.path.join(workdir, f"disk{i}.out")
        with open(src, "rb", buffering=0) as f, open(dst, "wb", buffering=0) as g:
            while True:
                b = f.read(4 << 20)
                if not b:
                    break
                g.write(b)
            os.fsync(g.fileno())
        os.unlink(dst)

    def run():
        ts = [threading.Thread(target=copy, args=(i,)) for i in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    return size / median_time(run, runs) / MB


def chain_ceiling(src: str, workdir: str, size: int, runs: int, mode: str) -> float:
    def run():
        ports = [free_port() for _ in range(3)]
        procs = []
        for i in (2, 1, 0):
            nxt = str(ports[i + 1]) if i < 2 else "-"
            p = subprocess.Popen([sys.executable, os.path.join(HERE, "bench_chain.py"), "node", str(ports[i]), nxt,
                                  os.path.join(workdir, f"chain{i}.out"), mode], stdout=subprocess.PIPE)
            p.stdout.readline()
            procs.append(p)
        import socket
        s = socket.create_connection(("127.0.0.1", ports[0]))
        with open(src, "rb", buffering=0) as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                s.sendall(b)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
        s.close()
        for p in procs:
            p.wait()
    t = median_time(run, runs)
    for i in range(3):
        try:
            os.unlink(os.path.join(workdir, f"chain{i}.out"))
        except FileNotFoundError:
            pass
    return size / t / MB


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- dfs ------------------------------------------------------------------------
def dfs_put_get(c: Cluster, inputs: dict, workdir: str, size: int, runs: int) -> tuple[dict, dict]:
    """Each run measures a ceiling just before the dfs rows compared with it, so a
    ratio compares figures from the same minute (this machine's disk drifts 2x
    over an hour). Returns the rates and the per-run ratios, by row name."""
    rates: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    c.cli("mkdir", "-p", "/bench")
    client = c.client()
    src = inputs["incompressible"]

    def timed(key: str, fn) -> float:
        t = time.perf_counter()
        fn()
        rate = size / (time.perf_counter() - t) / MB
        rates.setdefault(key, []).append(rate)
        return rate

    def cli(*args):
        r = c.cli(*args, timeout=600)
        assert r.returncode == 0, r.stderr

    for run in range(runs):
        chain_b = chain_ceiling(src, workdir, size, 1, "buffered")
        chain_d = chain_ceiling(src, workdir, size, 1, "direct")
        chain = max(chain_b, chain_d)
        for k, v in (("3-hop chain, buffered", chain_b), ("3-hop chain, O_DIRECT", chain_d), ("3-hop chain", chain)):
            rates.setdefault(k, []).append(v)
        for kind, path in inputs.items():
            v = timed(f"put {kind}", lambda path=path, kind=kind: cli("put", "-f", path, f"/bench/{kind}"))
            ratios.setdefault(f"put {kind}", []).append(v / chain)
        copy = copy_ceiling(src, workdir, size, 1)
        rates.setdefault("local disk copy", []).append(copy)
        duplex = duplex_ceiling(src, workdir, size)
        rates.setdefault("disk read + write at once", []).append(duplex)
        for kind, path in inputs.items():
            dst = os.path.join(workdir, f"get-{kind}")
            v = timed(f"get {kind}", lambda kind=kind, dst=dst: cli("get", "-f", f"/bench/{kind}", dst))
            ratios.setdefault(f"get {kind} vs copy", []).append(v / copy)
            ratios.setdefault(f"get {kind} vs duplex", []).append(v / duplex)
            if run == 0 and not _same(path, dst):
                raise SystemExit(f"bench: {kind}: data read back differs")
            os.unlink(dst)
        for kind in inputs:
            def read(kind=kind):
                for _ in client.open_read(f"/bench/{kind}").iter_range():
                    pass
            timed(f"read {kind} (API, no local write)", read)
            # The CLI's read path without this VM's one disk as the sink: what a job
            # piping `dfs cat` into a consumer gets (TestDFSIO's read discards its data too).
            timed(f"cat {kind} > /dev/null", lambda kind=kind: cat_devnull(c, f"/bench/{kind}"))
    return ({k: statistics.median(v) for k, v in rates.items()},
            {k: statistics.median(v) for k, v in ratios.items()})


def cat_devnull(c: Cluster, path: str) -> None:
    subprocess.run([sys.executable, "-m", "dfs", "--namenode", c.namenode_address, "cat", path],
                   stdout=subprocess.DEVNULL, env=c.env, check=True, timeout=600)


def _same(a: str, b: str) -> bool:
    with open(a, "rb") as f, open(b, "rb") as g:
        while True:
            x, y = f.read(16 << 20), g.read(16 << 20)
            if x != y:
                return False
            if not x:
                return True


def metadata_rates(c: Cluster, runs: int, n: int = 2000, listing: int = 10_000,
                   rounds: int = 10) -> tuple[dict, dict]:
    """Rates from one client thread, and each operation's ratio to the no-op RPC.

    Every run is cut into ``rounds`` rounds of n/rounds calls of each operation in
    turn, and a ratio is taken within each round: on this shared machine the
    no-op rate drifts by 30% between minutes, and ratios of figures taken
    seconds apart do not. -> (median rates, median of the per-round ratios)."""
    client = c.client()
    client.ping()
    names = ("no-op RPC", "mkdir", "create+close", "stat")
    rates: dict[str, list[float]] = {k: [] for k in names}
    ratios: dict[str, list[float]] = {k: [] for k in names}
    per = n // rounds
    for r in range(runs):
        base = f"/meta{r}"
        client.mkdir(base)
        spent = {k: 0.0 for k in names}
        ops = {"no-op RPC": lambda i: client.ping(),
               "mkdir": lambda i, base=base: client.mkdir(f"{base}/d{i}"),
               "create+close": lambda i, base=base: client.create(f"{base}/f{i}").close(),
               "stat": lambda i, base=base: client.stat(f"{base}/f{i}")}
        for k in range(rounds):
            took = {}
            for name, fn in ops.items():
                t = time.perf_counter()
                for i in range(k * per, (k + 1) * per):
                    fn(i)
                took[name] = time.perf_counter() - t
                spent[name] += took[name]
            for name in names:
                ratios[name].append(took["no-op RPC"] / took[name])
        for name in names:
            rates[name].append(per * rounds / spent[name])
    out = {k: statistics.median(v) for k, v in rates.items()}
    big = "/listing"
    client.mkdir(big)
    for i in range(listing):
        client.create(f"{big}/f{i:05d}").close()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        got = len(client.listdir(big))
        times.append(time.perf_counter() - t)
    assert got == listing
    out[f"list {listing} entries (entries/s)"] = listing / statistics.median(times)
    return out, {k: statistics.median(v) for k, v in ratios.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sections", default="core,meta")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    tune_malloc()
    sections = set(args.sections.split(","))
    size = args.size_mib << 20
    workdir = tempfile.mkdtemp(prefix="dfs-bench-", dir=args.workdir)
    # The interpreter moves the Python-bound figures by 5-8% (docs/benchmarks.md, session 24).
    python = f"Python {platform.python_version()} ({os.path.realpath(sys.executable)})"
    print(f"dfs bench: {args.size_mib} MiB, median of {args.runs}, {os.cpu_count()} cores, "
          f"{python}, workdir {workdir}\n")
    try:
        if "core" in sections or "meta" in sections:
            with Cluster(os.path.join(workdir, "cluster"), datanodes=3, replication=3, block_size="64MiB",
                         heartbeat=3.0, dead_timeout=30.0) as c:
                if "core" in sections:
                    core(c, workdir, size, args.runs)
                if "meta" in sections:
                    meta, ratios = metadata_rates(c, args.runs)
                    print("metadata, one client thread (ops/s)          rate   vs no-op RPC (median of"
                          " per-round ratios)")
                    for k, v in meta.items():
                        ratio = f"{ratios[k]:10.2f}" if k in ratios else ""
                        print(f"  {k:42} {v:8.0f} {ratio}")
                    print()
        for name in ("repair", "fuse", "pydata"):
            if name in sections:
                script = os.path.join(HERE, f"bench_{name}.py")
                print(f"== {name}: {script}", flush=True)
                # The mount's figures are medians of --runs too: one dd read on this
                # shared machine ranges from 840 to 1,685 MB/s.
                extra = ["--repeat", str(args.runs), "--size", str(args.size_mib)] if name == "fuse" else []
                subprocess.run([sys.executable, script, *extra], check=False)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def core(c: Cluster, workdir: str, size: int, runs: int) -> None:
    inputs = make_inputs(workdir, size)
    figures, same_run = dfs_put_get(c, inputs, workdir, size, runs)
    enc_r, kept_r, dec_r = codec_ceiling(inputs["incompressible"], size, runs)
    enc_c, kept_c, dec_c = codec_ceiling(inputs["compressible"], size, runs)
    disk = disk_ceiling(inputs["incompressible"], workdir, size, runs)
    chain, copy = figures["3-hop chain"], figures["local disk copy"]
    print("ceilings (MB/s)")
    print(f"  codec encode, incompressible / compressible, all cores      {enc_r:8.0f} / {enc_c:.0f}")
    print(f"  codec decode into fresh memory kept, incompr. / compr.      {kept_r:8.0f} / {kept_c:.0f}")
    print(f"  codec decode, steady state (output dropped), incompr. / c.  {dec_r:8.0f} / {dec_c:.0f}")
    print(f"  raw disk, 3 fsync'd copies at once (per copy)               {disk:8.0f}")
    print(f"  local disk copy: cold read + O_DIRECT write                 {copy:8.0f}")
    print(f"  disk: cold read and O_DIRECT write at once (each)           {figures['disk read + write at once']:8.0f}")
    print(f"  3-hop socket chain + fsync, buffered / O_DIRECT              "
          f"{figures['3-hop chain, buffered']:8.0f} / {figures['3-hop chain, O_DIRECT']:.0f}")
    print()
    print("dfs (MB/s); chain and disk-copy ratios are medians of same-run ratios")
    print("                                                    rate   ceiling   ratio")
    rows = [
        ("put incompressible", "3-hop chain", chain, same_run["put incompressible"]),
        ("put compressible", "3-hop chain", chain, same_run["put compressible"]),
        ("get incompressible", "decode, fresh memory", kept_r, None),
        ("get incompressible", "decode, steady state", dec_r, None),
        ("get incompressible", "local disk copy", copy, same_run["get incompressible vs copy"]),
        ("get incompressible", "disk read + write at once", figures["disk read + write at once"],
         same_run["get incompressible vs duplex"]),
        ("get compressible", "decode, fresh memory", kept_c, None),
        ("get compressible", "decode, steady state", dec_c, None),
        ("get compressible", "local disk copy", copy, same_run["get compressible vs copy"]),
        ("get compressible", "disk read + write at once", figures["disk read + write at once"],
         same_run["get compressible vs duplex"]),
        ("cat incompressible > /dev/null", "decode, fresh memory", kept_r, None),
        ("cat compressible > /dev/null", "decode, fresh memory", kept_c, None),
        ("read incompressible (API, no local write)", "decode, steady state", dec_r, None),
        ("read compressible (API, no local write)", "decode, steady state", dec_c, None),
    ]
    for key, cname, ceil, ratio in rows:
        v = figures[key]
        ratio = v / ceil if ratio is None else ratio
        print(f"  {key:46} {v:8.0f} {ceil:8.0f}  {ratio:6.2f}  ({cname})")
    print()


if __name__ == "__main__":
    sys.exit(main())
