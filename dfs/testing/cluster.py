"""A local cluster of real `dfs namenode` / `dfs datanode` processes, for tests.

Nodes listen on distinct loopback addresses (127.0.0.x). Faults are the real
ones: SIGKILL, SIGSTOP, restart on the same data dir, bytes flipped in a
block file. Every wait has a timeout; logs are kept per node and shown by
``dump_logs()`` when a test fails.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field

from dfs.client import DfsClient
from dfs.config import format_address

# pytest-xdist runs workers side by side: each takes its own range of addresses.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
_next_host = itertools.count(10 + 6000 * (int(_WORKER) if _WORKER.isdigit() else 0))


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def read_until(proc, marker: bytes, timeout: float) -> bytes:
    """What ``proc`` (stdout a pipe) prints up to and including the line holding
    ``marker``, or up to its exit or ``timeout``: e.g. `dfs cluster up`'s banner."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and marker not in out:
        line = proc.stdout.readline()
        if not line:
            break
        out += line
    return out


def _host() -> str:
    n = next(_next_host)
    return f"127.0.{n // 250}.{n % 250 + 2}"


@dataclass
class Node:
    name: str
    argv: list[str]
    data_dir: str
    address: str
    log_path: str
    rack: str = ""
    proc: subprocess.Popen | None = field(default=None, repr=False)
    env: dict = field(default_factory=dict)   # over the cluster's: e.g. PYTHONPATH of an older dfs

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Cluster:
    def __init__(self, base_dir: str, *, datanodes: int = 3, replication: int | None = None,
                 block_size: str = "1MiB", heartbeat: float = 0.5, dead_timeout: float | None = None,
                 racks: list[str] | None = None, scan_interval: float | None = None,
                 replica_check_interval: float | None = None, env: dict | None = None,
                 ipv6: bool = False, datanode_heartbeat: float | None = None):
        """``ipv6``: every node on [::1] (IPv6 has one loopback address), on its own port.
        ``datanode_heartbeat``: the datanodes' --heartbeat-interval, when not the
        namenode's ``heartbeat`` (they beat at the shorter of the two)."""
        self.base = base_dir
        self._host = (lambda: "::1") if ipv6 else _host
        os.makedirs(base_dir, exist_ok=True)
        self.replication = replication or min(3, datanodes)
        self.heartbeat = heartbeat
        self.datanode_heartbeat = datanode_heartbeat or heartbeat
        if dead_timeout is None:   # 6 s, or 4 beats of slow ones (the namenode wants at least 3)
            dead_timeout = max(6.0, 4 * heartbeat)
        self.scan_interval = scan_interval
        self.replica_check_interval = replica_check_interval
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.env.pop("DFS_NAMENODE", None)
        host = self._host()
        self.namenode_address = format_address(host, free_port(host))
        self.namenode = Node("namenode", [
            "namenode", "--data-dir", os.path.join(base_dir, "namenode"), "--listen", self.namenode_address,
            "--replication", str(self.replication), "--block-size", block_size,
            "--heartbeat-interval", str(heartbeat), "--dead-node-timeout", str(dead_timeout)],
            os.path.join(base_dir, "namenode"), self.namenode_address, os.path.join(base_dir, "namenode.log"))
        self.datanodes: list[Node] = []
        racks = racks or [f"/rack{i % 2 + 1}" for i in range(datanodes)]
        for i in range(datanodes):
            self._new_datanode(racks[i])
        self._clients: list[DfsClient] = []
        self._stacks_dumped = False   # dump_logs then shows them (they are long)

    def _new_datanode(self, rack: str, env: dict | None = None) -> Node:
        i = len(self.datanodes)
        host = self._host()
        addr = format_address(host, free_port(host))
        data = os.path.join(self.base, f"datanode{i}")
        argv = ["datanode", "--data-dir", data, "--namenode", self.namenode_address, "--listen", addr,
                "--rack", rack, "--heartbeat-interval", str(self.datanode_heartbeat)]
        if self.scan_interval:
            argv += ["--scan-interval", str(self.scan_interval)]
        if self.replica_check_interval:
            argv += ["--replica-check-interval", str(self.replica_check_interval)]
        node = Node(f"datanode{i}", argv, data, addr, os.path.join(self.base, f"datanode{i}.log"), rack,
                    env=env or {})
        self.datanodes.append(node)
        return node

    # -- lifecycle ------------------------------------------------------
    def _spawn(self, node: Node) -> None:
        log = open(node.log_path, "ab")
        node.proc = subprocess.Popen([sys.executable, "-m", "dfs", *node.argv], stdout=log,
                                     stderr=subprocess.STDOUT, env={**self.env, **node.env}, start_new_session=True)
        log.close()

    def start(self, wait: bool = True) -> Cluster:
        self._spawn(self.namenode)
        for d in self.datanodes:
            self._spawn(d)
        if wait:
            try:
                self.wait_for_datanodes(len(self.datanodes))
            except BaseException:
                # Never left running: a bench whose namenode refused to start left its
                # three datanodes beating at nothing after the script had exited.
                self.stop()
                raise
        return self

    def stop(self) -> None:
        for c in self._clients:
            c.close()
        nodes = [*self.datanodes, self.namenode]
        for n in nodes:
            if n.alive:
                try:
                    os.kill(n.proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
                except ProcessLookupError:
                    pass
                n.proc.terminate()  # type: ignore[union-attr]
        for n in nodes:
            if n.proc is not None:
                try:
                    n.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.dump_stacks([n])   # a server must stop at once on SIGTERM: where does it hang?
                    n.proc.kill()
                    n.proc.wait()
                    with open(n.log_path, errors="replace") as f:
                        tail = "".join(f.readlines()[-150:])
                    warnings.warn(f"{n.name} ({n.address}) still ran 10 s after SIGTERM; its log ends:\n{tail}",
                                  stacklevel=2)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def add_datanode(self, rack: str = "/rack1", start: bool = True, env: dict | None = None) -> Node:
        """``env``: this node's environment over the cluster's."""
        node = self._new_datanode(rack, env)
        if start:
            self._spawn(node)
        return node

    # -- faults ---------------------------------------------------------
    def kill(self, node: Node, sig: int = signal.SIGKILL) -> None:
        assert node.proc is not None
        node.proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            node.proc.wait(timeout=15)

    def restart(self, node: Node) -> None:
        if node.alive:
            self.kill(node)
        self._spawn(node)

    def pause(self, node: Node) -> None:
        node.proc.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]

    def resume(self, node: Node) -> None:
        node.proc.send_signal(signal.SIGCONT)  # type: ignore[union-attr]

    def replica_files(self, block_id: int) -> list[tuple[Node, str]]:
        out = []
        for d in self.datanodes:
            for path in glob.glob(os.path.join(d.data_dir, "current", "*", f"blk_{block_id}_*.data")):
                out.append((d, path))
        return out

    def corrupt_replica(self, block_id: int, node: Node, offset: int | None = None, nbytes: int = 16) -> str:
        """Flip bytes in one replica's data file (in the middle unless ``offset`` is given)."""
        for d, path in self.replica_files(block_id):
            if d is node:
                size = os.path.getsize(path)
                off = size // 2 if offset is None else offset
                with open(path, "r+b") as f:
                    f.seek(off)
                    data = f.read(nbytes)
                    f.seek(off)
                    f.write(bytes(b ^ 0xFF for b in data))
                    f.flush()
                    os.fsync(f.fileno())
                return path
        raise FileNotFoundError(f"no replica of block {block_id} on {node.name}")

    # -- access ---------------------------------------------------------
    def client(self, **kw) -> DfsClient:
        c = DfsClient(self.namenode_address, **kw)
        self._clients.append(c)
        return c

    def cli(self, *args: str, input: bytes | None = None, timeout: float = 120, env: dict | None = None,
            check: bool = False) -> subprocess.CompletedProcess:
        r = subprocess.run([sys.executable, "-m", "dfs", "--namenode", self.namenode_address, *args],
                           input=input, capture_output=True, timeout=timeout, env={**self.env, **(env or {})})
        if check and r.returncode != 0:
            raise AssertionError(f"dfs {' '.join(args)} exited {r.returncode}: {r.stderr.decode()}")
        return r

    def report(self) -> dict:
        return json.loads(self.cli("admin", "report", "--json", check=True).stdout)

    def fsck(self, path: str = "/") -> dict:
        return json.loads(self.cli("fsck", "--json", path).stdout)

    # -- waiting --------------------------------------------------------
    def wait_for(self, predicate, timeout: float = 30.0, what: str = "condition", interval: float = 0.2,
                 hopeless=None):
        """``hopeless()``: why the wait cannot end well (raised at once), else ''."""
        deadline = time.monotonic() + timeout
        last_exc = None
        while time.monotonic() < deadline:
            why = hopeless() if hopeless is not None else ""
            if why:
                raise RuntimeError(f"waiting for {what}: {why}")
            try:
                result = predicate()
                if result:
                    return result
            except Exception as e:   # noqa: BLE001 - keep polling; reported below
                last_exc = e
            time.sleep(interval)
        self.dump_stacks()
        last = f" (last error: {last_exc})" if last_exc else ""
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}{last}")

    def wait_for_datanodes(self, n: int, timeout: float = 30.0) -> None:
        client = DfsClient(self.namenode_address, retry_seconds=0)
        try:
            def ready():
                r = client.report()
                return not r.safemode and sum(1 for d in r.datanodes if d.state == "live") >= n
            self.wait_for(ready, timeout, f"{n} live datanodes", hopeless=self._namenode_exited)
        finally:
            client.close()

    def _namenode_exited(self) -> str:
        p = self.namenode.proc
        if p is None or p.poll() is None:
            return ""
        try:
            with open(self.namenode.log_path, "rb") as f:
                lines = f.read().decode(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        return f"the namenode exited ({p.returncode}): {lines[-1] if lines else 'no log'}"

    def wait_for_status(self, status: str = "HEALTHY", path: str = "/", timeout: float = 60.0) -> dict:
        return self.wait_for(lambda: (f := self.fsck(path))["status"] == status and f, timeout,
                             f"fsck {path} to be {status}", interval=0.5)

    def dump_stacks(self, nodes: list[Node] | None = None) -> None:
        """Have the running servers (default: all) write their threads' stacks to their logs (SIGUSR1)."""
        for n in nodes or [self.namenode, *self.datanodes]:
            if n.alive:
                try:
                    os.kill(n.proc.pid, signal.SIGUSR1)  # type: ignore[union-attr]
                except ProcessLookupError:
                    pass
        time.sleep(0.5)
        self._stacks_dumped = True

    def dump_logs(self, lines: int = 40) -> str:
        if self._stacks_dumped:
            lines = max(lines, 400)   # the stacks of the moment a wait timed out
        out = []
        for n in [self.namenode, *self.datanodes]:
            try:
                with open(n.log_path, errors="replace") as f:
                    tail = f.readlines()[-lines:]
            except OSError:
                tail = []
            out.append(f"===== {n.name} ({n.address}) =====\n" + "".join(tail))
        return "\n".join(out)
