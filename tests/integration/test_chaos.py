"""Randomized fault injection ("chaos") against the core promise (SPEC §2, §5, §6):
an acknowledged write survives kill -9 of any single process, and a read never
returns wrong bytes.

A real cluster (1 namenode, 4 or 5 datanodes, replication 3, blocks of 256 KiB
to 4 MiB: the seed picks) serves
three concurrent clients, each on its own directory: the CLI (`dfs put`,
`put -f`, `get`, `mv`, `rm` as subprocesses), the Python client
(DfsClient.write_bytes / read_bytes / rename / delete) and fsspec
(fs.open('wb') written in pieces, cat_file, mv, rm). Meanwhile a fault thread
repeatedly does one of: SIGKILL a datanode or the namenode and restart it,
SIGSTOP/SIGCONT one (longer than the dead-node timeout at times), or flip
bytes in a random finalized replica file on a datanode's disk.

The single-fault promise is what is tested, so faults never overlap: after
each one the fault thread waits until the cluster has healed (every process
up and registered, a corrupted replica found and replaced, fsck HEALTHY)
before it injects the next. Two simultaneous faults (e.g. two of a block's
three replicas lost at once) are outside the promise.

Every operation is recorded in a ``dfs.testing.chaos.Model``: what each path
may hold. An operation that fails with a clear error (allowed during a fault)
may or may not have been applied; an acknowledged one (put exited 0, close()
returned) is certain. Checked during the run: every read returns one of the
possible contents (or a clear error), no error is a traceback or an
unexpected exception type, and no client operation outlives OP_DEADLINE.
Checked at the end, after the last fault has healed: the namespace holds
exactly the possible states (acknowledged files byte-identical, deleted files
gone, no file that was never acknowledged visible with other contents), fsck
is HEALTHY, and everything still reads back byte-identical with each datanode
SIGKILLed in turn.

The seed is printed and part of every failure message; replay with
DFS_CHAOS_SEED=N (the fault and operation choices replay; the timing cannot).
DFS_CHAOS_SECONDS sets how long faults are injected (default 35, ~75 s in all;
above 60 the final check kills every datanode in turn, not one).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import traceback

import pytest

from dfs import errors
from dfs.client import DfsClient
from dfs.client.filesystem import DFSFileSystem
from dfs.testing.chaos import Model, sha
from dfs.testing.faults import log_text, replica_files

SEED = int(os.environ.get("DFS_CHAOS_SEED") or random.SystemRandom().randrange(1 << 32))
SECONDS = float(os.environ.get("DFS_CHAOS_SECONDS", "35"))
OP_DEADLINE = 120.0          # no client operation may take longer (a hang)
HEAL_TIMEOUT = 90.0          # a single fault is healed within this (generous: 2 shared cores)
KiB, MiB = 1 << 10, 1 << 20
# A clear error: what the client raises by design. Anything else is a bug.
CLEAR_ERRORS = (errors.DfsError, OSError)


class Chaos:
    def __init__(self, cluster, tmp_path):
        self.c = cluster
        self.tmp = tmp_path
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.violations: list[str] = []
        self.log: list[str] = []
        self.t0 = time.monotonic()
        self.current: dict[str, tuple[str, float]] = {}    # worker -> (op, started)
        self.models: dict[str, Model] = {}

    def note(self, msg: str) -> None:
        with self.lock:
            self.log.append(f"{time.monotonic() - self.t0:7.2f} {msg}")

    def violation(self, msg: str) -> None:
        self.note("VIOLATION " + msg)
        with self.lock:
            self.violations.append(msg)

    def report(self) -> str:
        with self.lock:
            return (f"[chaos seed {SEED}; replay with DFS_CHAOS_SEED={SEED}]\n" + "\n".join(self.violations)
                    + "\n--- event log (last 150) ---\n" + "\n".join(self.log[-150:]))

    # -- watchdog -------------------------------------------------------
    def hung(self) -> list[str]:
        now = time.monotonic()
        with self.lock:
            return [f"{w}: {op} running for {now - t:.0f}s" for w, (op, t) in self.current.items()
                    if now - t > OP_DEADLINE]

    def stacks(self) -> str:
        names = {t.ident: t.name for t in threading.enumerate()}
        return "\n".join(f"--- {names.get(i, i)}\n" + "".join(traceback.format_stack(f))
                         for i, f in sys._current_frames().items() if str(names.get(i, "")).startswith("chaos-"))


# -- workload ---------------------------------------------------------------
class Worker:
    """One client on its own directory: writes new files, overwrites, reads,
    renames and deletes, checking every read against the model."""

    def __init__(self, chaos: Chaos, name: str):
        self.chaos, self.name = chaos, name
        self.rng = random.Random(f"{SEED}-{name}")
        self.model = chaos.models[name] = Model()
        self.root = f"/chaos/{name}"
        self.n = 0

    def fresh(self) -> str:
        self.n += 1
        return f"{self.root}/d{self.n % 3}/f{self.n:04d}"

    def data(self) -> bytes:
        r = self.rng.random()
        if r < 0.08:
            size = 0
        elif r < 0.3:
            size = self.rng.randrange(1, 200 * KiB)
        elif r < 0.4:
            size = MiB * self.rng.randint(1, 3)            # exactly on block boundaries
        else:
            size = self.rng.randrange(MiB // 2, 4 * MiB + 300 * KiB)
        return self.rng.randbytes(size)

    def run(self) -> None:
        try:
            while not self.chaos.stop.is_set():
                self.step()
        except BaseException as e:   # noqa: BLE001 - a crash of the workload is a finding
            self.chaos.violation(f"{self.name}: workload crashed: {type(e).__name__}: {e}\n{traceback.format_exc()}")
        finally:
            with self.chaos.lock:
                self.chaos.current.pop(self.name, None)

    def step(self) -> None:
        live = self.model.live_paths()
        op = self.rng.choices(["create", "overwrite", "read", "rename", "delete"],
                              [4, 2 if live else 0, 4 if live else 0, 1 if live else 0, 1 if live else 0])[0]
        path = self.fresh() if op == "create" or not live else self.rng.choice(sorted(live))
        if op == "read":
            self.timed(f"read {path}", lambda: self.check_read(path))
            return
        # An error is allowed during a fault, but "No such file" about a path that
        # certainly exists (the parents always do) is a wrong answer.
        must_exist = op != "create" and None not in self.model.possible(path)
        if op in ("create", "overwrite"):
            data = self.data()
            self.model.intend(path, {sha(data)})
            ok = self.timed(f"{op} {path} ({len(data)} B)", lambda: self.write(path, data, op == "overwrite"),
                            must_exist=True)
            self.model.write(path, sha(data), ok)
        elif op == "rename":
            dst = self.fresh()
            self.model.intend(dst, self.model.possible(path) - {None})
            ok = self.timed(f"rename {path} {dst}", lambda: self.rename(path, dst), must_exist=must_exist)
            self.model.rename(path, dst, ok)
        else:
            ok = self.timed(f"delete {path}", lambda: self.delete(path), must_exist=must_exist)
            self.model.delete(path, ok)

    def timed(self, what: str, fn, must_exist: bool = False) -> bool:
        """Run one operation: True if acknowledged, False if it failed with a clear error."""
        with self.chaos.lock:
            self.chaos.current[self.name] = (what, time.monotonic())
        t = time.monotonic()
        try:
            fn()
            ok, outcome = True, "ok"
        except CLEAR_ERRORS as e:
            ok, outcome = False, f"failed: {type(e).__name__}: {str(e)[:200]}"
            if must_exist and isinstance(e, FileNotFoundError):
                self.chaos.violation(f"{self.name}: {what}: {outcome}, but it certainly exists")
            if isinstance(e, errors.DataIntegrityError) or "no readable replica" in str(e):
                # One fault at a time leaves every block two good replicas: a read goes on
                # from another one (SPEC §5), it does not fail.
                self.chaos.violation(f"{self.name}: {what}: {outcome}, with at most one replica bad")
        finally:
            with self.chaos.lock:
                self.chaos.current.pop(self.name, None)
        took = time.monotonic() - t
        if took > OP_DEADLINE:
            self.chaos.violation(f"{self.name}: {what} took {took:.0f}s (deadline {OP_DEADLINE:.0f}s)")
        self.chaos.note(f"{self.name} {what}: {outcome} [{took:.1f}s]")
        return ok

    def check_read(self, path: str) -> None:
        try:
            got = self.read(path)
        except FileNotFoundError:
            got = None
        problem = self.model.check(path, None if got is None else sha(got))
        if problem:
            self.chaos.violation(f"{self.name}: read {problem}")


class PyWorker(Worker):
    def __init__(self, chaos, name):
        super().__init__(chaos, name)
        self.client = DfsClient(chaos.c.namenode_address, retry_seconds=30)

    def write(self, path, data, overwrite):
        self.client.write_bytes(path, data, overwrite=overwrite)

    def read(self, path):
        return self.client.read_bytes(path)

    def rename(self, src, dst):
        self.client.mkdir(dst.rpartition("/")[0], parents=True)
        self.client.rename(src, dst)

    def delete(self, path):
        if not self.client.delete(path):
            raise FileNotFoundError(path)


class FsspecWorker(Worker):
    def __init__(self, chaos, name):
        super().__init__(chaos, name)
        self.fs = DFSFileSystem(namenode=chaos.c.namenode_address, retry_seconds=30, skip_instance_cache=True)

    def write(self, path, data, overwrite):
        # fsspec's "wb" overwrites; a fresh path is never taken, so both cases are the same call.
        with self.fs.open(path, "wb") as f:
            view = memoryview(data)
            step = self.rng.choice([64 * KiB, 300 * KiB, MiB])
            for i in range(0, len(data), step):
                f.write(view[i:i + step])

    def read(self, path):
        return self.fs.cat_file(path)

    def rename(self, src, dst):
        self.fs.makedirs(dst.rpartition("/")[0], exist_ok=True)
        self.fs.mv(src, dst)

    def delete(self, path):
        self.fs.rm(path)


class CliWorker(Worker):
    def __init__(self, chaos, name):
        super().__init__(chaos, name)
        self.local = chaos.tmp / name
        self.local.mkdir()
        self.proc: subprocess.Popen | None = None

    def cli(self, *args) -> None:
        c = self.chaos.c
        argv = [sys.executable, "-m", "dfs", "--namenode", c.namenode_address, *args]
        with self.chaos.lock:
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         env={**c.env, "DFS_RETRY_SECONDS": "30"})
        try:
            _, err = self.proc.communicate(timeout=OP_DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise TimeoutError(f"dfs {' '.join(args)} still running after {OP_DEADLINE}s") from None
        rc = self.proc.returncode
        err = err.decode(errors="replace")
        if rc == -signal.SIGKILL:                       # the fault thread's kill -9 of this client
            raise errors.DfsError(f"dfs {args[0]} killed")
        if "Traceback" in err or rc not in (0, 1):
            self.chaos.violation(f"{self.name}: dfs {' '.join(args)} exited {rc}: {err[-2000:]}")
        if rc != 0:
            if "No such file or directory" in err:
                raise FileNotFoundError(err.strip())
            raise errors.DfsError(err.strip().splitlines()[-1] if err.strip() else f"exit {rc}")

    def write(self, path, data, overwrite):
        src = self.local / "up"
        src.write_bytes(data)
        self.cli("put", *(["-f"] if overwrite else []), str(src), path)

    def read(self, path):
        dst = self.local / "down"
        self.cli("get", "-f", path, str(dst))
        return dst.read_bytes()

    def rename(self, src, dst):
        self.cli("mv", src, dst)

    def delete(self, path):
        self.cli("rm", path)


class Snooper:
    """Reads the other workers' files while they write, overwrite, rename and delete
    them: a read may fail (the file went away under it), but what it returns is a
    whole content that path has held, never a mix or a truncation."""

    def __init__(self, chaos: Chaos, name: str = "snoop"):
        self.chaos, self.name = chaos, name
        self.rng = random.Random(f"{SEED}-{name}")
        self.client = DfsClient(chaos.c.namenode_address, retry_seconds=30)
        self.reads = self.whole = 0

    def run(self) -> None:
        try:
            while not self.chaos.stop.is_set():
                ever = {p: s for m in list(self.chaos.models.values()) for p, s in m.ever().items()}
                if not ever:
                    time.sleep(0.2)
                    continue
                path = self.rng.choice(sorted(ever))
                with self.chaos.lock:
                    self.chaos.current[self.name] = (f"read {path}", time.monotonic())
                try:
                    got = sha(self.client.read_bytes(path))
                except CLEAR_ERRORS as e:
                    got = None
                    if not isinstance(e, FileNotFoundError):
                        self.chaos.note(f"{self.name} read {path}: failed: {type(e).__name__}: {str(e)[:200]}")
                finally:
                    with self.chaos.lock:
                        self.chaos.current.pop(self.name, None)
                self.reads += 1
                if got is not None:
                    self.whole += 1
                    owner = next(m for m in self.chaos.models.values() if path in m.ever())
                    if got not in owner.ever()[path]:
                        self.chaos.violation(f"{self.name}: read {path}: {got[:12]} is no content it ever held")
                time.sleep(0.05)
        except BaseException as e:   # noqa: BLE001 - a crash of the workload is a finding
            self.chaos.violation(f"{self.name}: crashed: {type(e).__name__}: {e}\n{traceback.format_exc()}")


# -- faults -----------------------------------------------------------------
class Faults:
    KINDS = ["kill_datanode", "kill_namenode", "stop_datanode", "stop_namenode", "corrupt", "kill_client"]
    WEIGHTS = [4, 2, 2, 1, 3, 2]

    def __init__(self, chaos: Chaos, seconds: float, cli_worker: CliWorker):
        self.chaos, self.c, self.cli_worker = chaos, chaos.c, cli_worker
        self.rng = random.Random(f"{SEED}-faults")
        self.until = time.monotonic() + seconds
        self.count: dict[str, int] = {k: 0 for k in self.KINDS}

    def run(self) -> None:
        try:
            while time.monotonic() < self.until and not self.chaos.violations:
                time.sleep(self.rng.uniform(0.2, 1.5))
                kind = self.rng.choices(self.KINDS, self.WEIGHTS)[0]
                getattr(self, kind)()
                self.count[kind] += 1
                self.heal(kind)
        except BaseException as e:   # noqa: BLE001 - reported with the seed
            self.chaos.violation(f"fault thread: {type(e).__name__}: {e}\n{traceback.format_exc()}")

    def kill_datanode(self):
        d = self.rng.choice(self.c.datanodes)
        down = self.rng.choice([0.0, 0.5, 2.0, 4.5])       # 4.5 s: past the 3 s dead-node timeout
        self.chaos.note(f"FAULT SIGKILL {d.name}, restart after {down}s")
        self.kill_restart(d, down)

    def kill_restart(self, d, down: float, meanwhile=lambda: None) -> None:
        lives = log_text(d).count("registered with namenode")
        self.c.kill(d)
        time.sleep(down)
        meanwhile()
        self.c.restart(d)
        # Its new life has registered (sent its block report), not just the old one still "live".
        self.c.wait_for(lambda: log_text(d).count("registered with namenode") > lives, HEAL_TIMEOUT,
                        f"{d.name} to register again")

    def kill_namenode(self):
        down = self.rng.choice([0.0, 0.5, 2.0])
        self.chaos.note(f"FAULT SIGKILL namenode, restart after {down}s")
        self.c.kill(self.c.namenode)
        time.sleep(down)
        self.c.restart(self.c.namenode)

    def _stop(self, node):
        paused = self.rng.choice([0.5, 2.0, 5.0])
        self.chaos.note(f"FAULT SIGSTOP {node.name} for {paused}s")
        self.c.pause(node)
        time.sleep(paused)
        self.c.resume(node)
        self.chaos.note(f"SIGCONT {node.name}")

    def stop_datanode(self):
        self._stop(self.rng.choice(self.c.datanodes))

    def stop_namenode(self):
        self._stop(self.c.namenode)

    def kill_client(self):
        """kill -9 of a `dfs` client process (a put half sent, most often): never
        acknowledged, so its file may be whole or absent, never partial; its lease
        expires (DFS_LEASE_SOFT_LIMIT) and frees the path."""
        time.sleep(self.rng.uniform(0.0, 0.6))
        with self.chaos.lock:
            p = self.cli_worker.proc
        if p is None or p.poll() is not None:
            self.chaos.note("FAULT kill -9 client: none running")
            return
        self.chaos.note(f"FAULT kill -9 client {' '.join(p.args[5:])}")
        p.kill()

    def corrupt(self):
        d = self.rng.choice(self.c.datanodes)
        files = sorted(replica_files(d))
        if files and self.rng.random() < 0.3:          # its meta file (lengths and checksums)
            files = [f[:-5] + ".meta" for f in files]
        if not files:
            self.chaos.note(f"FAULT corrupt: no replica on {d.name} yet")
            return
        path = self.rng.choice(files)
        try:
            with open(path, "r+b") as f:
                size = os.fstat(f.fileno()).st_size
                if size == 0:
                    return
                off = self.rng.randrange(size)
                f.seek(off)
                old = f.read(8)
                f.seek(off)
                f.write(bytes(b ^ 0xFF for b in old))
                f.flush()
                os.fsync(f.fileno())
                ino = os.fstat(f.fileno()).st_ino
        except FileNotFoundError:           # deleted meanwhile (its file was removed)
            self.chaos.note(f"FAULT corrupt: {path} vanished")
            return
        self.chaos.note(f"FAULT flipped {len(old)} bytes at {off}/{size} of {d.name}:{os.path.basename(path)}")

        def replaced():
            try:
                return os.stat(path).st_ino != ino
            except FileNotFoundError:
                return True
        # Found by the scanner (or a reader), dropped and replaced: the corrupt file is gone.
        self.c.wait_for(replaced, HEAL_TIMEOUT, f"the corrupt replica {path} to be dropped", interval=0.2)

    def heal(self, kind: str) -> None:
        t = time.monotonic()
        self.c.wait_for_datanodes(len(self.c.datanodes), timeout=HEAL_TIMEOUT)
        self.c.wait_for_status("HEALTHY", "/", timeout=HEAL_TIMEOUT)
        self.chaos.note(f"healed after {kind} in {time.monotonic() - t:.1f}s")


# -- the test ---------------------------------------------------------------
def verify_namespace(chaos: Chaos, client: DfsClient, read: bool = True) -> int:
    """The namespace holds exactly what the models allow; returns the files checked."""
    seen: dict[str, str | None] = {}
    stack = ["/chaos"]
    while stack:
        for st in client.listdir(stack.pop()):
            if st.is_dir:
                stack.append(st.path)
            else:
                seen[st.path] = sha(client.read_bytes(st.path)) if read else "?"
    owner = {p: m for m in chaos.models.values() for p in m.states}
    for path, digest in seen.items():
        if path not in owner:
            chaos.violation(f"{path} exists but was never written")
        elif read:
            problem = owner[path].check(path, digest)
            if problem:
                chaos.violation(f"final state: {problem}")
    for path, m in owner.items():
        if path not in seen:
            problem = m.check(path, None)
            if problem:
                chaos.violation(f"final state: {problem}")
    return len(seen)


@pytest.mark.timeout(max(300, int(4 * SECONDS) + 600))   # a longer DFS_CHAOS_SECONDS needs longer
def test_chaos(make_cluster, tmp_path):
    config = random.Random(f"{SEED}-config")
    datanodes, block_size = config.choice([4, 5]), config.choice(["256KiB", "1MiB", "1MiB", "4MiB"])
    print(f"chaos seed {SEED} (replay: DFS_CHAOS_SEED={SEED}), faults for {SECONDS}s, "
          f"{datanodes} datanodes, {block_size} blocks")
    c = make_cluster(datanodes=datanodes, replication=3, block_size=block_size, scan_interval=1.0,
                     env={"DFS_LEASE_SOFT_LIMIT": "10"})
    chaos = Chaos(c, tmp_path)
    for w in ("cli", "py", "fs"):
        for i in range(3):                                 # `dfs put` needs the parent (as HDFS's)
            c.client().mkdir(f"/chaos/{w}/d{i}", parents=True)
    workers = [CliWorker(chaos, "cli"), PyWorker(chaos, "py"), FsspecWorker(chaos, "fs")]
    snooper = Snooper(chaos)
    threads = [threading.Thread(target=w.run, name=f"chaos-{w.name}", daemon=True) for w in [*workers, snooper]]
    faults = Faults(chaos, SECONDS, workers[0])
    fault_thread = threading.Thread(target=faults.run, name="chaos-faults", daemon=True)
    for t in threads:
        t.start()
    fault_thread.start()

    def wait_threads(ts, deadline):
        while any(t.is_alive() for t in ts):
            hung = chaos.hung()
            if hung or time.monotonic() > deadline:
                pytest.fail(f"operations hung: {hung or 'fault thread'}\n{chaos.stacks()}\n{chaos.report()}")
            time.sleep(0.5)

    if os.environ.get("DFS_CHAOS_LOG"):               # the whole event log, for a post-mortem
        import atexit
        atexit.register(lambda: open(os.environ["DFS_CHAOS_LOG"], "w").write("\n".join(chaos.log) + "\n"))
    wait_threads([fault_thread], time.monotonic() + SECONDS + 4 * HEAL_TIMEOUT + 30)
    chaos.stop.set()
    wait_threads(threads, time.monotonic() + OP_DEADLINE + 30)
    stopped = time.monotonic()
    assert not chaos.violations, chaos.report()

    # Everything back and healed: the final state is one the operations allow.
    faults.heal("the run")
    client = DfsClient(c.namenode_address, retry_seconds=30)
    n = verify_namespace(chaos, client)
    assert not chaos.violations, chaos.report()
    acked = sum(m.acked_writes for m in chaos.models.values())
    failed = sum(m.failed_ops for m in chaos.models.values())
    ops = sum(m.ops for m in chaos.models.values())
    print(f"seed {SEED}: {ops} ops ({acked} acknowledged writes, {failed} failed ops), faults {faults.count}, "
          f"{n} files at the end; snooper read {snooper.whole} of {snooper.reads} whole")
    assert acked >= 10, chaos.report()                     # the workload really ran
    for line in chaos.log:
        if "failed:" in line:
            print(line)

    # Any one datanode lost: every file still reads back byte-identical. The CI run
    # kills one (chosen by the seed); a longer run kills each in turn.
    rng = random.Random(f"{SEED}-final")
    victims = c.datanodes if SECONDS > 60 else [rng.choice(c.datanodes)]
    for d in victims:
        chaos.note(f"final: SIGKILL {d.name}")
        faults.kill_restart(d, 0.0, lambda: verify_namespace(chaos, client))
        assert not chaos.violations, chaos.report()
        faults.heal(f"restarting {d.name}")

    # The leases of killed writers have expired by now (10 s): what they left is
    # whole or gone, never a partial file completed by the lease recovery.
    time.sleep(max(0.0, stopped + 12 - time.monotonic()))
    uncertain = {p: m for m in chaos.models.values() for p, s in m.states.items() if len(s) > 1}
    for path, m in uncertain.items():
        try:
            got = sha(client.read_bytes(path))
        except FileNotFoundError:
            got = None
        problem = m.check(path, got)
        if problem:
            chaos.violation(f"after the leases expired: {problem}")
    assert not chaos.violations, chaos.report()
    print(f"{len(uncertain)} paths left uncertain by failed operations hold one of their possible states")
    client.close()


# -- regressions for what the chaos runs found -----------------------------------
def test_namenode_paused_past_dead_timeout_keeps_its_datanodes(make_cluster):
    """A namenode SIGSTOPped for longer than the dead-node timeout used to declare
    every datanode dead when it resumed (their silence was its own): writes failed
    "no live datanodes (0 live)", reads "no readable replica", until they
    re-registered. Found by test_chaos (seed 2776710984)."""
    c = make_cluster(datanodes=3)                      # dead timeout 3 s
    client = c.client(retry_seconds=30)
    data = os.urandom(3 * MiB + 123)
    client.write_bytes("/before", data)
    c.pause(c.namenode)
    time.sleep(5.0)
    c.resume(c.namenode)
    assert client.read_bytes("/before") == data        # served at once: replicas still known
    client.write_bytes("/after", data)
    assert client.read_bytes("/after") == data
    log = open(c.namenode.log_path, errors="replace").read()
    assert "declared dead" not in log, log[-3000:]
    assert "was not running for" in log
    assert len(c.report()["live"]) == 3
