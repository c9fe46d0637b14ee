"""Server commands: namenode, datanode, and `cluster up` (a local dev cluster)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from dfs import config
from dfs.config import parse_address, parse_size


def _address(text: str) -> str:
    host, port = parse_address(text)
    return f"{host}:{port}"


def add_parsers(sub) -> None:
    p = sub.add_parser("namenode", help="run a namenode")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--listen", type=_address, default=config.DEFAULT_NAMENODE)
    p.add_argument("--replication", type=int, default=config.DEFAULT_REPLICATION)
    p.add_argument("--block-size", type=parse_size, default=config.DEFAULT_BLOCK_SIZE)
    p.add_argument("--heartbeat-interval", type=float, default=config.DEFAULT_HEARTBEAT)
    p.add_argument("--dead-node-timeout", type=float, default=config.DEFAULT_DEAD_TIMEOUT)
    p.set_defaults(func=cmd_namenode)

    p = sub.add_parser("datanode", help="run a datanode")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--namenode", dest="nn_address", type=_address, required=True, metavar="HOST:PORT")
    p.add_argument("--listen", type=_address, default=config.DEFAULT_DATANODE)
    p.add_argument("--rack", default="/default-rack")
    p.add_argument("--heartbeat-interval", type=float, default=config.DEFAULT_HEARTBEAT)
    p.add_argument("--scan-interval", type=float, default=6 * 3600.0,
                   help="seconds between full checksum scans of every replica (default 6 h)")
    p.add_argument("--replica-check-interval", type=float, default=60.0, metavar="SECS",
                   help="seconds between checks that every replica's files are still on disk "
                        "(a directory listing; default 60)")
    p.add_argument("--repair-bandwidth", type=parse_size, default=0, metavar="SIZE",
                   help="cap on bytes/s this node sends for re-replication (default: no cap; "
                        "copies always yield to client traffic)")
    p.set_defaults(func=cmd_datanode)

    cluster = sub.add_parser("cluster", help="local development cluster")
    csub = cluster.add_subparsers(dest="cluster_command", required=True)
    p = csub.add_parser("up", help="run 1 namenode + N datanodes in the foreground")
    p.add_argument("--base-dir", default="./.dfs-local")
    p.add_argument("--datanodes", type=int, default=3)
    p.add_argument("--port", type=int, default=8020)
    p.add_argument("--replication", type=int, default=None)
    p.add_argument("--block-size", default=None)
    p.set_defaults(func=cmd_cluster_up)


def cmd_namenode(args) -> int:
    if args.replication < 1 or args.block_size < config.MIN_BLOCK_SIZE:
        raise ValueError("replication must be >= 1 and block size >= 64KiB")
    from dfs.namenode.server import NamenodeServer
    NamenodeServer(args.data_dir, args.listen, replication=args.replication, block_size=args.block_size,
                   heartbeat_interval=args.heartbeat_interval,
                   dead_timeout=args.dead_node_timeout).serve()
    return 0


def cmd_datanode(args) -> int:
    for flag in ("heartbeat_interval", "scan_interval", "replica_check_interval"):
        if not 0 < getattr(args, flag) < 1e9:   # 0 would make its loop spin; inf overflows a wait
            raise ValueError(f"--{flag.replace('_', '-')} must be a positive number of seconds")
    from dfs.datanode.server import DatanodeServer
    DatanodeServer(args.data_dir, args.nn_address, args.listen, rack=args.rack,
                   heartbeat_interval=args.heartbeat_interval, scan_interval=args.scan_interval,
                   replica_check_interval=args.replica_check_interval, repair_bandwidth=args.repair_bandwidth).serve()
    return 0


def cmd_cluster_up(args) -> int:
    base = os.path.abspath(args.base_dir)
    nn = f"127.0.0.1:{args.port}"
    exe = [sys.executable, "-m", "dfs"]
    procs: list[subprocess.Popen] = []
    os.makedirs(base, exist_ok=True)

    def start(name: str, argv: list[str]) -> None:
        log = open(os.path.join(base, f"{name}.log"), "ab")
        procs.append(subprocess.Popen(exe + argv, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))

    nn_args = ["namenode", "--data-dir", os.path.join(base, "namenode"), "--listen", nn]
    if args.replication:
        nn_args += ["--replication", str(args.replication)]
    if args.block_size:
        nn_args += ["--block-size", str(args.block_size)]
    start("namenode", nn_args)
    for i in range(args.datanodes):
        host = f"127.0.0.{i + 2}"
        rack = f"/rack{i % 2 + 1}"
        start(f"datanode{i + 1}", ["datanode", "--data-dir", os.path.join(base, f"datanode{i + 1}"),
                                   "--namenode", nn, "--listen", f"{host}:9866", "--rack", rack])
    stopping = False

    def stop(signum=None, frame=None):
        nonlocal stopping
        stopping = True
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    from dfs.client import DfsClient
    client = DfsClient(nn, retry_seconds=0)
    deadline = time.monotonic() + 30
    ready = False
    while not stopping and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        try:
            live = [d for d in client.report().datanodes if d.state == "live"]
            if len(live) == args.datanodes:
                ready = True
                break
        except Exception:
            pass
        time.sleep(0.3)
    if ready:
        print(f"dfs cluster up: namenode {nn}, {args.datanodes} datanodes, state in {base}")
        print(f"  export DFS_NAMENODE={nn}")
        print("  dfs put README.md /readme.md && dfs ls / && dfs get /readme.md /tmp/readme.md")
        print("Ctrl-C stops the cluster.", flush=True)
    else:
        print(f"dfs: cluster: failed to start; see the logs in {base}", file=sys.stderr)
        stopping = True
    while not stopping and all(p.poll() is None for p in procs):
        time.sleep(0.2)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    if ready:
        print("dfs cluster stopped")
    return 0 if ready else 1
