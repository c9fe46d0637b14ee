"""Datanode process wiring: block store, transfer server, heartbeats, scanner.

The heartbeat loop registers with the namenode, sends a full block report,
then beats every interval carrying incremental reports (blocks received,
deleted, found corrupt); the namenode's reply carries commands (delete
these blocks, copy that block to those nodes), executed here.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

from dfs.datanode.blockstore import BlockStore, Replica
from dfs.datanode.scanner import Scanner
from dfs.datanode.transfer import TransferServer, push_replica
from dfs.rpc.channel import make_channel
from dfs.rpc.v1 import common_pb2 as cpb
from dfs.rpc.v1 import namenode_pb2 as pb
from dfs.rpc.v1 import namenode_pb2_grpc as grpc_pb

log = logging.getLogger("dfs.datanode")
RPC_TIMEOUT = 10.0


class DatanodeServer:
    def __init__(self, data_dir: str, namenode: str, listen: str, *, rack: str = "/default-rack",
                 heartbeat_interval: float = 3.0, scan_interval: float = 6 * 3600.0,
                 max_transfers: int = 4):
        self.store = BlockStore(data_dir)
        self.namenode = namenode
        self.rack = rack
        self.interval = heartbeat_interval
        self.transfer = TransferServer(self.store, listen, listen, self._received)
        self.address = listen
        self.stub = grpc_pb.DatanodeNamenodeStub(make_channel(namenode))
        self._lock = threading.Lock()
        self._received: list[cpb.Block] = []
        self._deleted: list[cpb.Block] = []
        self._corrupt: set[int] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=max_transfers, thread_name_prefix="replicate")
        self.scanner = Scanner(self.store, scan_interval, self._found_corrupt)
        self._registered = False

    # -- callbacks from the transfer server and the scanner --------------
    def _received(self, rep: Replica) -> None:
        with self._lock:
            self._received.append(cpb.Block(block_id=rep.block_id, genstamp=rep.genstamp, length=rep.length))
        self._wake.set()   # report soon: the namenode counts this replica from now on

    def _found_corrupt(self, block_id: int) -> None:
        with self._lock:
            self._corrupt.add(block_id)
        self._wake.set()

    # -- namenode conversation -----------------------------------------
    def _register(self) -> None:
        cap, used, free = self.store.usage()
        self.stub.Register(pb.RegisterRequest(uuid=self.store.uuid, address=self.address, rack=self.rack,
                                              capacity=cap, used=used, remaining=free), timeout=RPC_TIMEOUT)
        self._block_report()
        self._registered = True
        log.info("registered with namenode %s as %s", self.namenode, self.address)

    def _block_report(self) -> None:
        with self._lock:
            self._received.clear()   # the full report below covers them
        blocks = [cpb.Block(block_id=r.block_id, genstamp=r.genstamp, length=r.length) for r in self.store.report()]
        self.stub.BlockReport(pb.BlockReportRequest(uuid=self.store.uuid, blocks=blocks), timeout=60)

    def _heartbeat(self) -> None:
        cap, used, free = self.store.usage()
        with self._lock:
            received, self._received = self._received, []
            deleted, self._deleted = self._deleted, []
            corrupt = sorted(self._corrupt | set(self.store.corrupt_ids()))
            self._corrupt.clear()
        try:
            reply = self.stub.Heartbeat(pb.HeartbeatRequest(
                uuid=self.store.uuid, capacity=cap, used=used, remaining=free,
                xceivers=self.transfer.xceivers, blocks=len(self.store.replicas),
                received=received, deleted=deleted, corrupt=corrupt), timeout=RPC_TIMEOUT)
        except grpc.RpcError:
            with self._lock:   # not delivered: send again next time
                self._received = received + self._received
                self._deleted = deleted + self._deleted
            raise
        if reply.reregister:
            self._registered = False
            return
        for block_id in reply.invalidate:
            rep = self.store.get(block_id)
            if rep is not None and self.store.delete(block_id):
                with self._lock:
                    self._deleted.append(cpb.Block(block_id=block_id, genstamp=rep.genstamp))
        for cmd in reply.transfers:
            self._pool.submit(self._replicate, cmd.block.block_id, list(cmd.targets))
        if reply.request_block_report:
            self._block_report()

    def _replicate(self, block_id: int, targets: list[str]) -> None:
        rep = self.store.get(block_id)
        if rep is None or rep.corrupt:
            return
        try:
            stored = push_replica(self.store, rep, targets)
            log.info("copied block %d to %s", block_id, ",".join(stored))
        except Exception as e:
            log.warning("copying block %d to %s failed: %s", block_id, targets, e)
            if self.store.get(block_id) is not None and self.store.get(block_id).corrupt:  # type: ignore[union-attr]
                self._found_corrupt(block_id)

    def _heartbeat_loop(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            try:
                if not self._registered:
                    self._register()
                self._heartbeat()
            except grpc.RpcError as e:
                log.warning("namenode %s: %s", self.namenode, e.code() if hasattr(e, "code") else e)
                self._registered = self._registered and e.code() != grpc.StatusCode.UNAVAILABLE
            last = time.monotonic()
            # Beat every interval, or sooner (but at most 10/s) when there is news.
            self._wake.wait(self.interval)
            self._wake.clear()
            time.sleep(max(0.0, 0.1 - (time.monotonic() - last)))

    def serve(self) -> None:
        threading.Thread(target=self.transfer.serve_forever, name="transfer", daemon=True).start()
        threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True).start()
        threading.Thread(target=self.scanner.run, name="scanner", daemon=True).start()
        print(f"datanode {self.store.uuid} listening on {self.address}", flush=True)
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda s, f: done.set())
        signal.signal(signal.SIGINT, lambda s, f: done.set())
        done.wait()
        self._stop.set()
        self.scanner.stop()
        self.transfer.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        log.info("datanode stopped")
