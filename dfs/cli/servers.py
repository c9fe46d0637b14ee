"""Server commands: namenode, datanode, and `cluster up` (a local dev cluster)."""

from __future__ import annotations

import argparse
import ctypes
import faulthandler
import fcntl
import os
import signal
import subprocess
import sys
import time

from dfs import config, errors
from dfs.cli import args as a


def _data_dir(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("invalid data dir '' (a directory path)")
    return text


def add_parsers(sub) -> None:
    # Every value is checked here, by the parser: a bad one is a one-line usage
    # error (exit 2) before the process binds a port or touches its data dir.
    p = sub.add_parser("namenode", help="run a namenode")
    p.add_argument("--data-dir", type=_data_dir, required=True, metavar="DIR",
                   help="where the namespace (SQLite) and the master key live")
    p.add_argument("--listen", type=a.listen_address, default=config.DEFAULT_NAMENODE, metavar="HOST:PORT",
                   help=f"the address clients and datanodes are given (default {config.DEFAULT_NAMENODE})")
    p.add_argument("--replication", type=a.replication, default=config.DEFAULT_REPLICATION, metavar="N",
                   help=f"replicas of a block unless the file says (default {config.DEFAULT_REPLICATION})")
    p.add_argument("--block-size", type=a.block_size, default=config.DEFAULT_BLOCK_SIZE, metavar="SIZE",
                   help=f"unless the file says (default {config.DEFAULT_BLOCK_SIZE >> 20}MiB)")
    p.add_argument("--heartbeat-interval", type=a.seconds, default=config.DEFAULT_HEARTBEAT, metavar="SECS",
                   help=f"what datanodes are told to beat at (default {config.DEFAULT_HEARTBEAT:g})")
    p.add_argument("--dead-node-timeout", type=a.seconds, default=config.DEFAULT_DEAD_TIMEOUT, metavar="SECS",
                   help=f"silence after which a datanode is dead and its blocks copied "
                        f"(default {config.DEFAULT_DEAD_TIMEOUT:g})")
    p.set_defaults(func=cmd_namenode)

    p = sub.add_parser("datanode", help="run a datanode")
    p.add_argument("--data-dir", type=_data_dir, required=True, metavar="DIR")
    p.add_argument("--namenode", dest="nn_address", type=a.namenode, required=True, metavar="HOST:PORT")
    p.add_argument("--listen", type=a.datanode_address, default=config.DEFAULT_DATANODE, metavar="HOST:PORT",
                   help=f"the address clients and other nodes are given (default {config.DEFAULT_DATANODE})")
    p.add_argument("--rack", type=a.rack, default="/default-rack", metavar="/RACK",
                   help="for rack-aware placement (default /default-rack)")
    p.add_argument("--heartbeat-interval", type=a.seconds, default=config.DEFAULT_HEARTBEAT, metavar="SECS",
                   help=f"at most; the namenode's --heartbeat-interval when shorter "
                        f"(default {config.DEFAULT_HEARTBEAT:g})")
    p.add_argument("--scan-interval", type=a.seconds, default=6 * 3600.0, metavar="SECS",
                   help="seconds between full checksum scans of every replica (default 6 h)")
    p.add_argument("--scan-rate", type=_rate, default=256 << 20, metavar="SIZE",
                   help="bytes/s the checksum scan reads at most (default 256MiB)")
    p.add_argument("--replica-check-interval", type=a.seconds, default=60.0, metavar="SECS",
                   help="seconds between checks that every replica's files are still on disk "
                        "(a directory listing; default 60)")
    p.add_argument("--repair-bandwidth", type=a.size, default=0, metavar="SIZE",
                   help="cap on bytes/s this node sends for re-replication (default: no cap; "
                        "copies always yield to client traffic)")
    p.set_defaults(func=cmd_datanode)

    cluster = sub.add_parser("cluster", help="local development cluster")
    csub = cluster.add_subparsers(dest="cluster_command", metavar="CLUSTER_COMMAND", required=True)
    p = csub.add_parser("up", help="run 1 namenode + N datanodes in the foreground")
    p.add_argument("--base-dir", type=_data_dir, default="./.dfs-local", metavar="DIR",
                   help="every node's data dir and log (default ./.dfs-local)")
    p.add_argument("--datanodes", type=a.positive_count, default=3, metavar="N", help="default 3")
    p.add_argument("--port", type=a.port, default=8020, metavar="P",
                   help="the namenode's port on 127.0.0.1 (default 8020); datanodes use "
                        "127.0.0.2, 127.0.0.3, ... on a port derived from it (9866 for 8020)")
    p.add_argument("--replication", type=a.replication, default=None, metavar="N",
                   help="default replication (default: 3, or N datanodes when fewer)")
    p.add_argument("--block-size", type=a.block_size, default=None, metavar="SIZE")
    p.set_defaults(func=cmd_cluster_up)


def _not_ready_why(client, want: int) -> str:
    """Why a cluster whose servers all run is not ready: too few datanodes live, or
    safe mode (a --base-dir restarted with fewer datanodes than held its blocks)."""
    try:
        r = client.report()
        live = sum(1 for d in r.datanodes if d.state == "live")
        why = f": not ready within 30 s: {live} of {want} datanodes live"
        if r.safemode:
            why += f"; the namenode is in safe mode ({client.safemode('get').reason})"
        return why
    except Exception:   # noqa: BLE001 - only the message is at stake
        return ": not ready within 30 s"


def _rate(text: str) -> int:
    """A SIZE per second, > 0 (the scanner's limit)."""
    n = a.size(text)
    if n <= 0:
        raise argparse.ArgumentTypeError(f"invalid rate {text!r} (a SIZE per second > 0)")
    return n


def _stack_dumps_on_sigusr1() -> None:
    """``kill -USR1 <pid>`` writes every thread's stack to the server's stderr (its log),
    as ``jstack`` does for HDFS's daemons: what a hung or slow server is doing, asked
    without stopping it."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)


MIN_DEAD_BEATS = 3   # heartbeats a datanode may miss before it is dead: 2 missed and some slack


def cmd_namenode(args) -> int:
    if args.dead_node_timeout < MIN_DEAD_BEATS * args.heartbeat_interval:
        # At 1 s against 3 s beats, healthy nodes flapped dead and writes failed with
        # "no live datanodes" (HDFS derives its dead interval from the heartbeat's).
        raise a.UsageError(f"--dead-node-timeout {args.dead_node_timeout:g} is under {MIN_DEAD_BEATS} "
                           f"heartbeats ({args.heartbeat_interval:g} s each): live datanodes would be "
                           "declared dead")
    from dfs.namenode.server import NamenodeServer
    _stack_dumps_on_sigusr1()
    NamenodeServer(args.data_dir, args.listen, replication=args.replication, block_size=args.block_size,
                   heartbeat_interval=args.heartbeat_interval,
                   dead_timeout=args.dead_node_timeout).serve()
    return 0


def cmd_datanode(args) -> int:
    from dfs.datanode.server import DatanodeServer
    _stack_dumps_on_sigusr1()
    DatanodeServer(args.data_dir, args.nn_address, args.listen, rack=args.rack,
                   heartbeat_interval=args.heartbeat_interval, scan_interval=args.scan_interval,
                   scan_rate=args.scan_rate, replica_check_interval=args.replica_check_interval,
                   repair_bandwidth=args.repair_bandwidth).serve()
    return 0


def datanode_port(namenode_port: int) -> int:
    """The port `cluster up` gives its datanodes: 9866 beside the default 8020, and
    in general a one-to-one function of the namenode's port, so two local clusters
    (distinct --port) never share a datanode address, and one cluster restarted
    keeps its datanodes' addresses. Datanode i (from 0) listens on 127.0.0.(i+2), the
    namenode on 127.0.0.1, so this port may equal another cluster's namenode port.
    Unprivileged ports map onto unprivileged ports; a privileged one (root) is kept."""
    if namenode_port < 1024:
        return namenode_port
    return 1024 + (namenode_port + (9866 - 8020) - 1024) % (65536 - 1024)


def _die_with_parent(parent: int):
    """preexec_fn for `cluster up`'s servers: SIGTERM when `cluster up` dies, even by
    SIGKILL, so no orphaned namenode or datanode keeps the cluster's ports."""
    def arm() -> None:
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
        except (OSError, AttributeError):   # not Linux: the servers outlive a killed parent
            return
        if os.getppid() != parent:          # it died before the line above
            os.kill(os.getpid(), signal.SIGTERM)
    return arm


MAX_LOCAL_DATANODES = 253   # 127.0.0.2 .. 127.0.0.254


def _last_line(path: str, start: int = 0) -> str:
    """The last line of a log, of what was written from ``start`` on."""
    try:
        with open(path, "rb") as f:
            f.seek(max(start, os.path.getsize(path) - 4096))
            lines = [x for x in f.read().decode(errors="replace").splitlines() if x.strip()]
    except OSError:
        return "?"
    return lines[-1].strip() if lines else "?"


def cmd_cluster_up(args) -> int:
    if args.datanodes > MAX_LOCAL_DATANODES:
        raise a.UsageError(f"--datanodes: at most {MAX_LOCAL_DATANODES} on one machine")
    base = os.path.abspath(args.base_dir)
    dn_port = datanode_port(args.port)
    nn = f"127.0.0.1:{args.port}"
    exe = [sys.executable, "-m", "dfs"]
    procs: list[subprocess.Popen] = []
    names: list[str] = []
    if os.path.lexists(base) and not os.path.isdir(base):   # makedirs would say "File exists"
        raise errors.DfsNotADirectoryError(path=args.base_dir)
    os.makedirs(base, exist_ok=True)
    # One `cluster up` per base dir: two at once each won some servers' locks and lost
    # others, and each quoted a line of the other's log (they share the log files).
    lock = os.open(os.path.join(base, "cluster-up.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        raise errors.DfsError("in use by another `dfs cluster up`", args.base_dir) from None

    log_from: dict[str, int] = {}   # each log's size before this start (they are appended to)

    def start(name: str, argv: list[str]) -> None:
        names.append(name)
        path = os.path.join(base, f"{name}.log")
        log_from[name] = os.path.getsize(path) if os.path.exists(path) else 0
        log = open(path, "ab")
        # No threads run yet (the client comes after), so a preexec_fn is safe here.
        procs.append(subprocess.Popen(exe + argv, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True, preexec_fn=_die_with_parent(os.getpid())))

    nn_args = ["namenode", "--data-dir", os.path.join(base, "namenode"), "--listen", nn]
    # A 1- or 2-datanode dev cluster at replication 3 had every block under-replicated
    # for good: fsck said DEGRADED (exit 1) for a healthy cluster.
    nn_args += ["--replication", str(args.replication or min(config.DEFAULT_REPLICATION, args.datanodes))]
    if args.block_size:
        nn_args += ["--block-size", str(args.block_size)]
    start("namenode", nn_args)
    for i in range(args.datanodes):
        host = f"127.0.0.{i + 2}"
        rack = f"/rack{i % 2 + 1}"
        start(f"datanode{i + 1}", ["datanode", "--data-dir", os.path.join(base, f"datanode{i + 1}"),
                                   "--namenode", nn, "--listen", f"{host}:{dn_port}", "--rack", rack])
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
    def ours_listening() -> bool:
        """Our namenode has said it listens: another cluster's namenode on this port
        answered the report below and passed for ours (its datanodes live), so a
        second `scripts/run` printed the banner and exited 0 having started nothing."""
        try:
            with open(os.path.join(base, "namenode.log"), "rb") as f:
                f.seek(log_from["namenode"])
                return b"namenode listening on" in f.read()
        except OSError:
            return False

    while not stopping and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        if not ours_listening():
            time.sleep(0.1)
            continue
        try:
            r = client.report()
            live = [d for d in r.datanodes if d.state == "live"]
            if len(live) == args.datanodes and not r.safemode:   # restarted: old files readable
                ready = True
                break
        except Exception:
            pass
        time.sleep(0.3)
    interrupted = stopping and not ready
    if ready:
        print(f"dfs cluster up: namenode {nn}, {args.datanodes} datanodes "
              f"(port {dn_port}), state in {base}")
        print(f"  export DFS_NAMENODE={nn} PATH={os.path.dirname(sys.executable)}:$PATH")
        # Pasted from anywhere, and again on every later start (the state persists).
        print("  echo hello | dfs put -f - /hello.txt && dfs ls / && dfs get -f /hello.txt /tmp/hello.txt"
              " && cat /tmp/hello.txt")
        print("Ctrl-C stops the cluster.", flush=True)
    elif stopping:
        print("dfs: cluster up: interrupted while starting; stopping", file=sys.stderr)
    else:
        # Say why: the first server that exited said it in the last line of its log
        # (e.g. "in use by another namenode": this --base-dir is already up). The
        # namenode's reason comes first: the datanodes fail for the same cause (their
        # dirs are in use too) and one of them may exit a moment before it does.
        settle = time.monotonic() + 2
        while procs[0].poll() is None and time.monotonic() < settle and not stopping:
            time.sleep(0.05)
        why = ""
        for name, p in zip(names, procs, strict=True):
            if p.poll() is not None:
                why = f": {name} exited: {_last_line(os.path.join(base, f'{name}.log'), log_from[name])}"
                break
        else:   # all running, not ready in time: say what it waits for
            why = _not_ready_why(client, args.datanodes)
        print(f"dfs: cluster up: failed to start{why}; see the logs in {base}", file=sys.stderr)
        stopping = True
    while not stopping and all(p.poll() is None for p in procs):
        time.sleep(0.2)
    died = None if stopping else next(((n, p) for n, p in zip(names, procs, strict=True)
                                       if p.poll() is not None), None)
    if died is not None:   # a server died under a running cluster: say which, and why
        name, p = died
        how = f"killed by signal {-p.returncode}" if p.returncode < 0 else f"status {p.returncode}"
        print(f"dfs: cluster up: {name} exited ({how}): "
              f"{_last_line(os.path.join(base, f'{name}.log'), log_from[name])}; stopping the others",
              file=sys.stderr)
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
    return 1 if died is not None else 0 if ready else 130 if interrupted else 1
