"""gRPC servicers of the namenode: protobuf in, NameSystem call, protobuf out."""

from __future__ import annotations

import functools
import os
import signal
import urllib.parse

from dfs import config, errors
from dfs.model import DatanodeDescriptor
from dfs.namenode.namespace import Caller, check_principal
from dfs.namenode.namesystem import LocatedBlock, NameSystem
from dfs.rpc import convert
from dfs.rpc.status import servicer_method
from dfs.rpc.v1 import common_pb2 as cpb
from dfs.rpc.v1 import namenode_pb2 as pb
from dfs.rpc.v1 import namenode_pb2_grpc as grpc_pb


def out_of_range(msg) -> str:
    """The name of the first uint64 field of ``msg`` (nested ones too) holding 2^63 or more,
    or ''. No id, offset or length is that large, and SQLite cannot even look one up: a
    request holding one failed deep in the store with an internal error and a traceback."""
    for fd, value in msg.ListFields():
        values = value if fd.is_repeated else (value,)
        if fd.type == fd.TYPE_MESSAGE:
            for m in values:
                inner = out_of_range(m)
                if inner:
                    return f"{fd.name}.{inner}"
        elif fd.type == fd.TYPE_UINT64 and any(v > config.INT64_MAX for v in values):
            return fd.name
    return ""


def rpc(fn):
    """A client RPC: ``servicer_method``, refusing first a request ``out_of_range``."""

    @functools.wraps(fn)
    def checked(self, request, context):
        field = out_of_range(request)
        if field:
            raise errors.InvalidArgumentError(f"{field} out of range (at most 2^63-1)")
        return fn(self, request, context)

    return servicer_method(checked)


def _caller(c: pb.Caller, context, need_host: bool = False) -> Caller:
    """The caller; its host (for placement and replica order) only when asked."""
    host = c.host
    if not host and need_host:
        # "ipv4:127.0.0.2:51234", "ipv6:%5B::1%5D:51234" (grpc quotes the brackets):
        # the host part as in a datanode's address ("[::1]:9866"), which it is compared
        # with. An IPv6 caller used to have none, so its replicas were never ordered
        # nearest first.
        peer = urllib.parse.unquote(context.peer() or "")
        if peer.startswith(("ipv4:", "ipv6:")):
            host = peer[5:].rpartition(":")[0]
    user = c.user or "nobody"
    check_principal(user)   # it owns what it creates; its groups are only matched against
    return Caller(user=user, groups=tuple(c.groups), client_name=c.client_name,
                  host=host, call_id=c.call_id)


FSCK_BATCH = 2000   # files per streamed fsck reply: ~1 MB at most, far below the 64 MiB limit

# Fault injection for tests, off unless set: the namenode SIGKILLs itself after these
# calls (comma-separated RPC names) are applied and durable, before it replies - as if
# it died the moment after its commit. The client then retries a call already applied.
_DIE_AFTER = frozenset(filter(None, os.environ.get("DFS_TEST_DIE_AFTER", "").split(",")))


def _applied(rpc_name: str) -> None:
    if rpc_name in _DIE_AFTER:
        os.kill(os.getpid(), signal.SIGKILL)


def _status(st) -> pb.FileStatusReply:
    return pb.FileStatusReply(status=convert.status_to_pb(st))


def _located(lb: LocatedBlock, ns: NameSystem) -> cpb.LocatedBlock:
    now = ns.clock()
    return cpb.LocatedBlock(
        block=cpb.Block(block_id=lb.block_id, genstamp=lb.genstamp, length=lb.length), offset=lb.offset,
        locations=[convert.datanode_to_pb(d, ns.node_state(d, now)) for d in lb.locations],
        corrupt=lb.corrupt)


class ClientNamenodeService(grpc_pb.ClientNamenodeServicer):
    def __init__(self, ns: NameSystem):
        self.ns = ns

    @rpc
    def Ping(self, request, context):
        return pb.Empty()

    @rpc
    def GetFileInfo(self, r, context):
        return _status(self.ns.stat(_caller(r.caller, context), r.path))

    @rpc
    def ListDir(self, r, context):
        st, entries, more = self.ns.listdir(_caller(r.caller, context), r.path, r.start_after, r.limit or 10000)
        return pb.ListReply(entries=[convert.status_to_pb(e) for e in entries], has_more=more,
                            dir=convert.status_to_pb(st))

    @rpc
    def Mkdir(self, r, context):
        st = self.ns.mkdir(_caller(r.caller, context), r.path, r.parents,
                           r.mode if r.HasField("mode") else 0o755)
        _applied("Mkdir")
        return _status(st)

    @rpc
    def Delete(self, r, context):
        done = self.ns.delete(_caller(r.caller, context), r.path, r.recursive, files_only=r.files_only,
                              inode_id=r.inode_id)
        _applied("Delete")
        return pb.BoolReply(value=done)

    @rpc
    def Rename(self, r, context):
        st = self.ns.rename(_caller(r.caller, context), r.src, r.dst, r.overwrite)
        _applied("Rename")
        return _status(st)

    @rpc
    def SetPermission(self, r, context):
        return _status(self.ns.chmod(_caller(r.caller, context), r.path, r.mode))

    @rpc
    def SetOwner(self, r, context):
        return _status(self.ns.chown(_caller(r.caller, context), r.path, r.owner, r.group))

    @rpc
    def SetReplication(self, r, context):
        return _status(self.ns.set_replication(_caller(r.caller, context), r.path, r.replication))

    @rpc
    def SetTimes(self, r, context):
        return _status(self.ns.set_times(_caller(r.caller, context), r.path, r.mtime))

    @rpc
    def Create(self, r, context):
        caller = _caller(r.caller, context, r.add_block)
        opts = dict(overwrite=r.overwrite, replication=r.replication, block_size=r.block_size,
                    mode=r.mode if r.HasField("mode") else 0o644,
                    create_parent=r.create_parent, replaces=r.replaces, keep_attributes=r.keep_attributes)
        if r.add_block:
            # With complete too: an empty complete file, plus its next version under
            # construction with a first block (a FUSE create); the status is the empty file's.
            row, key, st, lb = self.ns.create_with_block(caller, r.path, empty_first=r.complete, **opts)
        else:
            (row, key, st), lb = self.ns.create(caller, r.path, complete=r.complete, **opts), None
        _applied("Create")
        reply = pb.CreateReply(file_id=row["id"], key=cpb.FileKey(key=key, chunk_size=row["chunk_size"]),
                               lease_period=self.ns.ns.lease_limit)
        if lb is not None:
            reply.block.CopyFrom(_located(lb, self.ns))
        if st is not None:
            reply.status.CopyFrom(convert.status_to_pb(st))
        else:
            reply.status.CopyFrom(cpb.FileStatus(path=r.path, replication=row["replication"],
                                                 block_size=row["block_size"], chunk_size=row["chunk_size"]))
        return reply

    @rpc
    def AddBlock(self, r, context):
        prev = (r.previous.block_id, r.previous.length) if r.has_previous else None
        lb = self.ns.add_block(_caller(r.caller, context, True), r.file_id, prev, list(r.previous_nodes),
                               list(r.excluded), draining=r.draining, excluded_age=list(r.excluded_age))
        _applied("AddBlock")
        return pb.AddBlockReply(block=_located(lb, self.ns))

    @rpc
    def AbandonBlock(self, r, context):
        self.ns.abandon_block(_caller(r.caller, context), r.file_id, r.block_id)
        return pb.Empty()

    @rpc
    def AbandonFile(self, r, context):
        self.ns.abandon_file(_caller(r.caller, context), r.file_id)
        return pb.Empty()

    @rpc
    def Complete(self, r, context):
        last = (r.last.block_id, r.last.length) if r.has_last else None
        prev = (r.previous.block_id, r.previous.length) if r.has_previous else None
        st = self.ns.complete(_caller(r.caller, context), r.file_id, last, list(r.last_nodes),
                              previous=prev, previous_nodes=list(r.previous_nodes),
                              mtime=r.mtime if r.has_mtime else None, keep_attributes=r.keep_attributes)
        _applied("Complete")
        return _status(st)

    @rpc
    def RenewLease(self, r, context):
        self.ns.renew_lease(_caller(r.caller, context))
        return pb.Empty()

    @rpc
    def GetBlockLocations(self, r, context):
        st, blocks, key, chunk = self.ns.block_locations(
            _caller(r.caller, context, True), r.path, r.offset, None if r.all else r.length, stable=r.stable,
            ahead=r.ahead, inode_id=r.inode_id)
        return pb.GetBlockLocationsReply(status=convert.status_to_pb(st),
                                         blocks=[_located(b, self.ns) for b in blocks],
                                         key=cpb.FileKey(key=key, chunk_size=chunk))

    @rpc
    def ReportBadBlocks(self, r, context):
        caller = _caller(r.caller, context)
        for bad in r.replicas:
            self.ns.report_bad(caller, bad.block_id, bad.address)
        return pb.Empty()

    @rpc
    def GetContentSummary(self, r, context):
        s = self.ns.content_summary(_caller(r.caller, context), r.path)
        return pb.ContentSummaryReply(summary=pb.ContentSummary(**s))

    @rpc
    def Fsck(self, r, context):
        # Computed here, not in the generator: a refusal is raised through @rpc.
        f = self.ns.fsck(_caller(r.caller, context), r.path, files=r.files)
        return self._fsck_replies(f)

    def _fsck_replies(self, f: dict):
        now = self.ns.clock()
        details = f["details"]
        for i in range(0, len(details), FSCK_BATCH):
            batch = []
            for d in details[i:i + FSCK_BATCH]:
                blocks = [cpb.LocatedBlock(block=cpb.Block(block_id=b["id"], genstamp=b["genstamp"],
                                                           length=b["length"]),
                                           locations=[convert.datanode_to_pb(n, self.ns.node_state(n, now))
                                                      for n in nodes])
                          for b, nodes in d["blocks"]]
                batch.append(pb.FsckFile(path=d["path"], length=d["length"], replication=d["replication"],
                                         status=d["status"], blocks=blocks))
            yield pb.FsckReply(details=batch)
        yield pb.FsckReply(status=f["status"], files=f["files"], blocks=f["blocks"],
                           under_replicated=f["under_replicated"], missing=f["missing"],
                           corrupt=f["corrupt"], directories=f["directories"],
                           total_size=f["total_size"], decommissioning_replicas=f["decommissioning_replicas"],
                           decommissioned_replicas=f["decommissioned_replicas"], safemode=f["safemode"],
                           safemode_reason=f["safemode_reason"], unreported=f["unreported"])

    @rpc
    def Report(self, r, context):
        rep = self.ns.report()
        return pb.ReportReply(
            safemode=rep["safemode"], datanodes=[convert.datanode_to_pb(n, s) for n, s in rep["nodes"]],
            under_replicated=rep["under_replicated"], missing=rep["missing"], corrupt=rep["corrupt"],
            blocks=rep["blocks"], files=rep["files"], pending_repair_bytes=rep["pending_repair_bytes"],
            repair_rate=rep["repair_rate"], unreported=rep["unreported"])

    @rpc
    def Safemode(self, r, context):
        on, reason = self.ns.safemode(r.action or "get", _caller(r.caller, context))
        return pb.SafemodeReply(on=on, reason=reason)

    @rpc
    def Decommission(self, r, context):
        out = self.ns.decommission(r.address, _caller(r.caller, context), cancel=r.cancel)
        return pb.DecommissionReply(**out)


class DatanodeNamenodeService(grpc_pb.DatanodeNamenodeServicer):
    def __init__(self, ns: NameSystem):
        self.ns = ns

    @servicer_method
    def Register(self, r, context):
        cluster_id = self.ns.register(
            DatanodeDescriptor(uuid=r.uuid, address=r.address, rack=r.rack or "/default-rack",
                               capacity=r.capacity, used=r.used, remaining=r.remaining,
                               protocol=r.protocol), r.cluster_id,
            r.storage_failed, r.storage_failed_for)
        return pb.RegisterReply(cluster_id=cluster_id, heartbeat_interval=self.ns.members.heartbeat_interval)

    @servicer_method
    def Heartbeat(self, r, context):
        rereg, cmds = self.ns.heartbeat(
            r.uuid, dict(capacity=r.capacity, used=r.used, remaining=r.remaining, xceivers=r.xceivers,
                         blocks=r.blocks),
            [(b.block_id, b.genstamp, b.length) for b in r.received],
            [b.block_id for b in r.deleted], list(r.corrupt),
            [(f.block.block_id, list(f.targets), f.reason) for f in r.failed_transfers],
            r.repair_bytes, r.client_ops, r.storage_failed, r.storage_failed_for)
        return pb.HeartbeatReply(
            reregister=rereg, invalidate=sorted(cmds.invalidate),
            transfers=[pb.TransferCommand(block=cpb.Block(block_id=b, genstamp=gs, length=ln), targets=t,
                                          urgent=b in cmds.urgent)
                       for b, gs, ln, t in cmds.transfers],
            request_block_report=cmds.request_report, next_heartbeat=cmds.next_heartbeat,
            clients_active=cmds.clients_active)

    @servicer_method
    def BlockReport(self, r, context):
        self.ns.block_report(r.uuid, [(b.block_id, b.genstamp, b.length) for b in r.blocks])
        return pb.Empty()
