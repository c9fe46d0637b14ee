"""Datanode process wiring: block store, transfer server, heartbeats, scanner,
presence check.

The heartbeat loop registers with the namenode, sends a full block report
(of what is on disk: the presence check runs first), then beats every
interval carrying incremental reports (blocks received, deleted or lost,
found corrupt, copies that failed); the namenode's reply carries
commands (delete these blocks, copy that block to those nodes: see
replicator.py) and may ask for the next beat sooner while repairs are under
way. News (a replica received, a copy done) triggers a beat soon: at most
2 per second, or 10 while repairs are under way.
"""

from __future__ import annotations

import logging
import threading
import time

import grpc

from dfs import datadir, errors
from dfs.config import setting
from dfs.datanode.blockstore import BlockStore, Replica
from dfs.datanode.presence import PresenceCheck
from dfs.datanode.replicator import Replicator
from dfs.datanode.scanner import Scanner
from dfs.datanode.transfer import TransferServer
from dfs.lifecycle import StopSignals, exit_after
from dfs.rpc import protocol, status
from dfs.rpc.channel import make_channel
from dfs.rpc.v1 import common_pb2 as cpb
from dfs.rpc.v1 import namenode_pb2 as pb
from dfs.rpc.v1 import namenode_pb2_grpc as grpc_pb

log = logging.getLogger("dfs.datanode")

RPC_TIMEOUT = 10.0
BLOCK_REPORT_INTERVAL = setting("DFS_BLOCK_REPORT_INTERVAL", 6 * 3600.0)
NEWS_GAP = 0.5        # seconds between news-triggered heartbeats
NEWS_GAP_FAST = 0.1   # ... while the namenode asks for fast beats or copies are running
MAX_TRANSFERS = setting("DFS_DATANODE_MAX_TRANSFERS", 4)   # copies this node sends at once


def beat_interval(own: float, namenode_says: float) -> float:
    """The interval a datanode beats at: the namenode's when it is shorter than its own.
    The namenode reckons silence (stale after 2 intervals, dead after its dead-node
    timeout) in its own interval: beating slower, healthy nodes were declared dead over
    and over. Beating faster costs only RPCs. 0: a namenode that does not say."""
    return min(own, namenode_says) if namenode_says > 0 else own


class ForeignCluster(Exception):
    """The namenode refused us: our data dir belongs to another cluster."""


class DatanodeServer:
    def __init__(self, data_dir: str, namenode: str, listen: str, *, rack: str = "/default-rack",
                 heartbeat_interval: float = 3.0, scan_interval: float = 6 * 3600.0,
                 scan_rate: float = 256 << 20,
                 replica_check_interval: float = 60.0,
                 max_transfers: int = MAX_TRANSFERS, repair_bandwidth: float = 0.0):
        self.store = BlockStore(data_dir)
        self._wake = threading.Event()
        self.store.on_failed = self._wake.set   # the namenode hears "no room" now, not in a beat
        self.namenode = namenode
        self.rack = rack
        self.own_interval = heartbeat_interval   # --heartbeat-interval
        self.interval = heartbeat_interval       # what it beats at: see beat_interval
        self.transfer = TransferServer(self.store, listen, listen, self._received,
                                       on_corrupt=self._found_corrupt, on_lost=self._lost)
        self.address = listen
        self.stub = grpc_pb.DatanodeNamenodeStub(make_channel(namenode))
        self._lock = threading.Lock()
        self._received: list[cpb.Block] = []
        self._deleted: list[cpb.Block] = []
        self._corrupt: set[int] = set()
        self._failed: list[pb.TransferFailure] = []
        self._next_beat = 0.0          # the namenode's hint: beat again sooner than the interval
        self._clients_active = False   # the namenode says some datanode serves clients
        self._stop = threading.Event()
        self._done = threading.Event()       # a signal, or a fatal error (_fatal)
        self._fatal: Exception | None = None
        self.replicator = Replicator(self.store, max_transfers=max_transfers, bandwidth=repair_bandwidth,
                                     foreground=lambda: self.transfer.foreground or self._clients_active,
                                     on_corrupt=self._found_corrupt, on_failed=self._copy_failed,
                                     on_done=self._wake.set)
        self.scanner = Scanner(self.store, scan_interval, self._found_corrupt, rate=scan_rate,
                               on_lost=self._lost)
        self.presence = PresenceCheck(self.store, replica_check_interval, self._lost)
        self._registered = False
        self._last_report = 0.0
        self._reported_dead = False   # the empty block report of a dead data dir is sent

    # -- callbacks from the transfer server and the scanner --------------
    def _received(self, rep: Replica) -> None:
        with self._lock:
            self._received.append(cpb.Block(block_id=rep.block_id, genstamp=rep.genstamp, length=rep.length))
        self._wake.set()   # report soon: the namenode counts this replica from now on

    def _found_corrupt(self, block_id: int) -> None:
        with self._lock:
            self._corrupt.add(block_id)
        self._wake.set()

    def _lost(self, rep: Replica, what: str = "") -> None:
        """A replica's files vanished from disk: tell the namenode it is gone, now."""
        with self._lock:
            self._deleted.append(cpb.Block(block_id=rep.block_id, genstamp=rep.genstamp))
        self._wake.set()

    def _copy_failed(self, block_id: int, targets: list[str], reason: str) -> None:
        with self._lock:
            self._failed.append(pb.TransferFailure(block=cpb.Block(block_id=block_id), targets=targets,
                                                   reason=reason[:200]))
        self._wake.set()

    # -- namenode conversation -----------------------------------------
    def _storage_failure(self) -> dict:
        """The dead data dir's fields of Register and Heartbeat (none while it works):
        the namenode shows the node as needing its disk replaced, and places nothing there."""
        if not self.store.dead:
            return {}
        return {"storage_failed": self.store.dead,
                "storage_failed_for": max(0.0, time.monotonic() - self.store.dead_since)}

    def _register(self) -> None:
        cap, used, free = self.store.usage()
        try:
            reply = self.stub.Register(pb.RegisterRequest(
                uuid=self.store.uuid, address=self.address, rack=self.rack, capacity=cap, used=used,
                remaining=free, cluster_id=self.store.cluster_id, protocol=protocol.DATA_TRANSFER,
                **self._storage_failure()),
                timeout=RPC_TIMEOUT,
                # A namenode not listening yet (both started at once, as `cluster up` and
                # compose do): register as soon as its port opens, not a retry later.
                wait_for_ready=True)
        except grpc.RpcError as e:
            err = status.from_rpc_error(e, self.namenode)
            if isinstance(err, errors.ForeignClusterError):
                raise ForeignCluster(err.detail) from None
            if not isinstance(err, errors.NamenodeUnreachableError):
                log.warning("namenode %s refused to register us: %s", self.namenode, err.detail)
            raise
        # Recorded before the block report: from now on these replicas are this cluster's.
        reason = datadir.foreign_cluster(reply.cluster_id, self.store.cluster_id)
        if reason:    # a namenode that did not check (the same rule, on our side)
            raise ForeignCluster(reason)
        if reply.cluster_id and not self.store.cluster_id:
            self.store.join_cluster(reply.cluster_id)
        self._adopt_interval(reply.heartbeat_interval)
        self._block_report()
        self._registered = True
        log.info("registered with namenode %s as %s", self.namenode, self.address)

    def _adopt_interval(self, namenode_says: float) -> None:
        """At every registration: a namenode restarted with another interval is heeded."""
        interval = beat_interval(self.own_interval, namenode_says)
        if interval != self.interval:
            log.info("heartbeat every %g s (namenode %s's interval %g s, our --heartbeat-interval %g s)",
                     interval, self.namenode, namenode_says, self.own_interval)
        self.interval = interval

    def _block_report(self) -> None:
        with self._lock:
            self._received.clear()   # the full report below covers them
        try:
            self.presence.check_once()   # report what is on disk, not what the map remembers
        except OSError as e:
            log.warning("replica presence check failed: %s", e)
        dead = bool(self.store.dead)   # (read first: a dead store's report is empty)
        blocks = [cpb.Block(block_id=r.block_id, genstamp=r.genstamp, length=r.length) for r in self.store.report()]
        self.stub.BlockReport(pb.BlockReportRequest(uuid=self.store.uuid, blocks=blocks), timeout=60)
        self._last_report = time.monotonic()
        self._reported_dead = dead

    def _heartbeat(self) -> None:
        cap, used, free = self.store.usage()   # reads the data dir back: is it dead?
        if self.store.dead and not self._reported_dead:
            # Its replicas are gone from the map: an empty report drops them at the
            # namenode now, which copies them elsewhere (not when this node dies).
            self._block_report()
        with self._lock:
            received, self._received = self._received, []
            deleted, self._deleted = self._deleted, []
            corrupt = sorted(self._corrupt | set(self.store.corrupt_ids()))
            self._corrupt.clear()
            failed, self._failed = self._failed, []
        try:
            reply = self.stub.Heartbeat(pb.HeartbeatRequest(
                uuid=self.store.uuid, capacity=cap, used=used, remaining=free,
                xceivers=self.transfer.xceivers + self.replicator.active, blocks=len(self.store.replicas),
                received=received, deleted=deleted, corrupt=corrupt, failed_transfers=failed,
                repair_bytes=self.replicator.copied_bytes, client_ops=self.transfer.foreground,
                **self._storage_failure()),
                timeout=RPC_TIMEOUT)
        except grpc.RpcError:
            with self._lock:   # not delivered: send again next time
                self._received = received + self._received
                self._deleted = deleted + self._deleted
                self._failed = failed + self._failed
            raise
        self._next_beat = reply.next_heartbeat
        self._clients_active = reply.clients_active
        if reply.reregister:
            self._registered = False
            self._wake.set()
            return
        for block_id in reply.invalidate:
            rep = self.store.get(block_id)
            if rep is not None and self.store.delete(block_id):
                with self._lock:
                    self._deleted.append(cpb.Block(block_id=block_id, genstamp=rep.genstamp))
        for cmd in reply.transfers:
            self.replicator.submit(cmd.block.block_id, list(cmd.targets), urgent=cmd.urgent)
        if reply.request_block_report:
            self._block_report()

    def _heartbeat_loop(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            try:
                if not self._registered:
                    self._register()
                elif time.monotonic() - self._last_report > BLOCK_REPORT_INTERVAL:
                    # Periodic full report, as HDFS: heals any drift between the
                    # namenode's soft block map and what is really on disk.
                    self._block_report()
                self._heartbeat()
            except ForeignCluster as e:
                # Serving or reporting these replicas would hand another cluster's
                # blocks to this namenode (which would delete them as unknown): stop.
                self._fatal = datadir.DataDirError(self.store.root, str(e))
                self._done.set()
                return
            except grpc.RpcError as e:
                code = e.code() if hasattr(e, "code") else e
                if not self._registered and code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    log.warning("namenode %s: not reachable, or no answer in time (%s); still trying "
                                "to register", self.namenode, code)
                else:
                    log.warning("namenode %s: %s", self.namenode, code)
                self._registered = self._registered and code != grpc.StatusCode.UNAVAILABLE
            except Exception:   # noqa: BLE001 - e.g. a disk error: this thread must not die
                # (a datanode without heartbeats serves on but is declared dead)
                log.exception("heartbeat failed")
            last = time.monotonic()
            # Beat every interval -- sooner while the namenode asks for it (repairs
            # under way: at most 10/s) -- and soon when there is news, at most
            # 2/s: a stream of small files would otherwise cost every datanode and
            # the namenode a heartbeat RPC per file (writers report their replicas
            # with Complete anyway).
            fast = self._next_beat > 0
            wait = self.interval if not fast else min(self.interval, self._next_beat)
            news = self._wake.wait(wait)
            self._wake.clear()
            if news or fast:   # not after a plain interval: a namenode beating faster than
                # NEWS_GAP (0.3 s in tests) saw beats 0.5 s apart, a healthy node stale
                gap = NEWS_GAP_FAST if fast or self.replicator.active else NEWS_GAP
                time.sleep(max(0.0, gap - (time.monotonic() - last)))

    def serve(self) -> None:
        stop = StopSignals()   # before "listening": a signal from then on is a clean stop
        threading.Thread(target=self.transfer.serve_forever, name="transfer", daemon=True).start()
        threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True).start()
        threading.Thread(target=self.scanner.run, name="scanner", daemon=True).start()
        threading.Thread(target=self.presence.run, name="presence", daemon=True).start()
        print(f"datanode {self.store.uuid} listening on {self.address}", flush=True)
        stop.wait(self._done)
        exit_after()
        self._stop.set()
        self.scanner.stop()
        self.presence.stop()
        self.transfer.close()
        self.replicator.shutdown()
        if self._fatal is not None:
            raise self._fatal     # the CLI prints it as one line and exits 1
        log.info("datanode stopped")
