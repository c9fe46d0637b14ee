"""Namenode process wiring: files, gRPC server, monitor thread, signals."""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import sqlite3
import stat
import threading

from dfs import datadir, errors
from dfs.codec import keys
from dfs.config import setting
from dfs.lifecycle import StopSignals, exit_after
from dfs.namenode.namespace import LEASE_SOFT_LIMIT
from dfs.namenode.namesystem import CLUSTER_ID_KEY, NameSystem, new_cluster_id
from dfs.namenode.service import ClientNamenodeService, DatanodeNamenodeService
from dfs.namenode.store import SqliteStore
from dfs.rpc.channel import make_server
from dfs.rpc.v1 import namenode_pb2_grpc as grpc_pb

log = logging.getLogger("dfs.namenode")


def key_too_open(mode: int) -> str:
    """Why a master.key of this mode is refused ("" if it is not). The key unwraps every
    file's data key: like ssh with a private key ("UNPROTECTED PRIVATE KEY FILE"), any
    access for group or others is refused rather than warned about, a warning being
    one more line in a log nobody reads. dfs makes it 0600."""
    if mode & 0o077:
        return f"permissions {stat.S_IMODE(mode):04o} are too open (the key decrypts every file)"
    return ""


def load_master_key(path: str) -> bytes:
    """The master key wraps every file's data key; created 0600 at first start."""
    if not os.path.exists(path):
        try:
            fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)   # a .tmp left from before keeps its mode through O_CREAT
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32))
                f.flush()
                os.fsync(f.fileno())
            os.replace(path + ".tmp", path)
        except OSError as e:   # a full disk fails the flush, which names no file
            with contextlib.suppress(OSError):
                os.unlink(path + ".tmp")
            raise OSError(e.errno, e.strerror, path) from None
    with open(path, "rb") as f:
        too_open = key_too_open(os.fstat(f.fileno()).st_mode)
        if too_open:
            raise SystemExit(f"dfs: namenode: {path}: {too_open}: chmod 600 {path}")
        key = f.read()
    if len(key) != 32:
        raise SystemExit(f"dfs: namenode: {path}: master key is corrupt")
    return key


def lost_namespace(db: str) -> str:
    """What is wrong with ``db`` as the namespace of a master.key beside it ("" if
    nothing): missing, empty, or without a cluster id, which a namespace records
    before its key is made. One made before cluster ids existed still holds its
    root directory. A file SQLite cannot read is left to SqliteStore to refuse."""
    if not os.path.exists(db):
        return "missing"
    if os.path.isfile(db) and os.path.getsize(db) == 0:
        return "empty (0 bytes)"
    try:
        con = sqlite3.connect(db)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not {"meta", "inode"} <= tables:
                return "holds no namespace (no dfs tables)"
            if con.execute("SELECT 1 FROM meta WHERE k=? AND v != ''", (CLUSTER_ID_KEY,)).fetchone():
                return ""
            if con.execute("SELECT 1 FROM inode LIMIT 1").fetchone():
                return ""     # a namespace from before cluster ids: it gets one now
            return "holds no namespace (no cluster id, no root directory)"
        finally:
            con.close()
    except sqlite3.Error:
        return ""


class NamenodeServer:
    def __init__(self, data_dir: str, listen: str, *, replication: int, block_size: int,
                 heartbeat_interval: float, dead_timeout: float):
        # Read before anything is opened: a bad value is refused with nothing started.
        lease_limit = setting("DFS_LEASE_SOFT_LIMIT", LEASE_SOFT_LIMIT)   # tests shorten it
        # One namenode per directory, and never one on a directory of somebody's files.
        self._dir_lock = datadir.open_data_dir(data_dir, "namenode", ("namespace.db", "master.key"))
        # Bound first: a port in use or a bad address is refused before a fresh data dir
        # gets a namespace and a key.
        self.server, self.port = make_server(listen, max_workers=32)
        db = os.path.join(data_dir, "namespace.db")
        lost = os.path.exists(os.path.join(data_dir, "master.key")) and lost_namespace(db)
        if lost:
            # The key is made after the namespace's cluster id: this one lost its namespace.
            # A new empty one got a new cluster id, and every datanode was told its data dir
            # was another cluster's, "start the datanode on an empty directory": the only copies.
            raise SystemExit(f"dfs: namenode: {db}: {lost} beside master.key: restore it from a "
                             "backup (to start a new, empty cluster here, remove master.key too)")
        try:
            self.store = SqliteStore(db)
            if not self.store.get_meta(CLUSTER_ID_KEY):   # a new namespace
                # Durable before master.key is made, so that a key beside a namespace
                # without an id is always a namespace lost, never a first start cut short.
                self.store.set_meta(CLUSTER_ID_KEY, new_cluster_id())
                self.store.want_durable()
                self.store.sync()
            self.ns = NameSystem(self.store, self._master_key(os.path.join(data_dir, "master.key"), db),
                                 superuser=getpass.getuser(), replication=replication,
                                 block_size=block_size, heartbeat_interval=heartbeat_interval,
                                 dead_timeout=dead_timeout)
        except (sqlite3.Error, errors.MetadataStoreError) as e:   # e.g. a full disk
            raise SystemExit(f"dfs: namenode: {db}: cannot open the metadata store: {e}") from None
        self.ns.on_unsyncable = self._halt
        self.ns.ns.lease_limit = lease_limit
        grpc_pb.add_ClientNamenodeServicer_to_server(ClientNamenodeService(self.ns), self.server)
        grpc_pb.add_DatanodeNamenodeServicer_to_server(DatanodeNamenodeService(self.ns), self.server)
        self.listen = listen
        self._stop = threading.Event()
        self._interval = min(1.0, heartbeat_interval / 2)
        # The monitor ticks every _interval: a gap of several is the namenode paused, not its datanodes.
        self.ns.members.pause_allowance = max(2.0, 2 * heartbeat_interval, 4 * self._interval)

    def _master_key(self, path: str, db: str) -> bytes:
        """The master key, made at the first start. A namespace whose files were
        encrypted under another key (its key file lost, or another namenode's restored
        beside a backup of namespace.db) is refused: a key made or taken silently would
        leave every file unreadable, and new files under a key the old ones lack."""
        sample = self.store.any_wrapped_key()
        if sample is not None and not os.path.exists(path):
            raise SystemExit(f"dfs: namenode: {path}: missing, and {db} holds files encrypted under "
                             "it: restore that key (a new one would leave every file unreadable)")
        key = load_master_key(path)
        if sample is not None and not keys.opens(key, *sample):
            raise SystemExit(f"dfs: namenode: {path}: not the key the files of {db} were encrypted "
                             "under: restore the right one")
        return key

    @staticmethod
    def _halt(e: errors.MetadataStoreError) -> None:
        """Fail-stop on a failed fsync of the metadata (see NameSystem._unsyncable):
        exit at once, without answering the calls waiting on that commit."""
        log.critical("stopping: %s (its log could not be synced; restart the namenode once "
                     "the disk is sound)", e)
        for h in logging.getLogger().handlers:
            h.flush()
        os._exit(1)

    def _monitor(self) -> None:
        # A tick is due every interval, at the moment a silent node reaches the
        # dead timeout, and soon after news that frees or creates repair work.
        while not self._stop.is_set():
            self.ns.wait_for_work(self._interval)
            if self._stop.is_set():
                return
            try:
                self.ns.tick()
            except errors.MetadataStoreError as e:
                log.error("monitor tick: %s", e)   # a full disk: said once per tick, no traceback
            except Exception:
                log.exception("monitor tick failed")
            self._stop.wait(0.02)   # batch bursts of news

    def serve(self) -> None:
        stop = StopSignals()   # before "listening": a signal from then on is a clean stop
        self.server.start()
        t = threading.Thread(target=self._monitor, name="monitor", daemon=True)
        t.start()
        log.info("namenode listening on %s", self.listen)
        print(f"namenode listening on {self.listen}", flush=True)
        stop.wait()
        exit_after()
        self._stop.set()
        self.ns.wake()
        self.server.stop(grace=2).wait()
        with self.ns.lock:
            self.store.close()
        log.info("namenode stopped")
