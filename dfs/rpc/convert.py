"""Protobuf <-> model values. Generated classes do not leak past this module."""

from __future__ import annotations

from dfs.model import DatanodeDescriptor, FileStatus
from dfs.rpc import protocol
from dfs.rpc.v1 import common_pb2 as pb


def status_to_pb(s: FileStatus) -> pb.FileStatus:
    return pb.FileStatus(path=s.path, is_dir=s.is_dir, length=s.size, replication=s.replication,
                         block_size=s.block_size, mode=s.mode, owner=s.owner, group=s.group,
                         mtime=s.mtime, ctime=s.ctime, inode_id=s.inode_id, children=s.children,
                         subdirs=s.subdirs)


def status_from_pb(p: pb.FileStatus) -> FileStatus:
    return FileStatus(path=p.path, type="directory" if p.is_dir else "file", size=p.length,
                      replication=p.replication, block_size=p.block_size, mode=p.mode,
                      owner=p.owner, group=p.group, mtime=p.mtime, ctime=p.ctime,
                      inode_id=p.inode_id, children=p.children, subdirs=p.subdirs)


def datanode_to_pb(d: DatanodeDescriptor, state: str = "") -> pb.DatanodeInfo:
    return pb.DatanodeInfo(uuid=d.uuid, address=d.address, rack=d.rack, capacity=d.capacity,
                           used=d.used, remaining=d.remaining, blocks=d.blocks,
                           last_heartbeat=d.last_heartbeat, state=state, xceivers=d.xceivers,
                           storage_failed=d.storage_failed, storage_failed_at=d.storage_failed_at,
                           protocol=d.protocol, outdated=not protocol.takes_writes(d.protocol))


def datanode_json(p: pb.DatanodeInfo) -> dict:
    return {"address": p.address, "rack": p.rack, "capacity": p.capacity, "used": p.used,
            "remaining": p.remaining, "blocks": p.blocks, "last_heartbeat": p.last_heartbeat,
            "state": p.state, "xceivers": p.xceivers, "uuid": p.uuid,
            "storage_failed": p.storage_failed, "storage_failed_at": p.storage_failed_at or None,
            "protocol": p.protocol, "outdated": p.outdated}
