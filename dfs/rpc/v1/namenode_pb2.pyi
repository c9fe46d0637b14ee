from dfs.rpc.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Caller(_message.Message):
    __slots__ = ("user", "groups", "client_name", "host", "call_id")
    USER_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    user: str
    groups: _containers.RepeatedScalarFieldContainer[str]
    client_name: str
    host: str
    call_id: int
    def __init__(self, user: _Optional[str] = ..., groups: _Optional[_Iterable[str]] = ..., client_name: _Optional[str] = ..., host: _Optional[str] = ..., call_id: _Optional[int] = ...) -> None: ...

class PathRequest(_message.Message):
    __slots__ = ("caller", "path")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    path: str
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., path: _Optional[str] = ...) -> None: ...

class FileStatusReply(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.FileStatus
    def __init__(self, status: _Optional[_Union[_common_pb2.FileStatus, _Mapping]] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("caller", "path", "start_after", "limit")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    START_AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    path: str
    start_after: str
    limit: int
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., path: _Optional[str] = ..., start_after: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListReply(_message.Message):
    __slots__ = ("entries", "has_more", "dir")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    DIR_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_common_pb2.FileStatus]
    has_more: bool
    dir: _common_pb2.FileStatus
    def __init__(self, entries: _Optional[_Iterable[_Union[_common_pb2.FileStatus, _Mapping]]] = ..., has_more: _Optional[bool] = ..., dir: _Optional[_Union[_common_pb2.FileStatus, _Mapping]] = ...) -> None: ...

class MkdirRequest(_message.Message):
    __slots__ = ("caller", "path", "parents", "mode")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    PARENTS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    path: str
    parents: bool
    mode: int
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., path: _Optional[str] = ..., parents: _Optional[bool] = ..., mode: _Optional[int] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("caller", "path", "recursive", "files_only", "inode_id")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    FILES_ONLY_FIELD_NUMBER: _ClassVar[int]
    INODE_ID_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    path: str
    recursive: bool
    files_only: bool
    inode_id: int
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., path: _Optional[str] = ..., recursive: _Optional[bool] = ..., files_only: _Optional[bool] = ..., inode_id: _Optional[int] = ...) -> None: ...

class RenameRequest(_message.Message):
    __slots__ = ("caller", "src", "dst", "overwrite")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    SRC_FIELD_NUMBER: _ClassVar[int]
    DST_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    src: str
    dst: str
    overwrite: bool
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., src: _Optional[str] = ..., dst: _Optional[str] = ..., overwrite: _Optional[bool] = ...) -> None: ...

class SetPermissionRequest(_message.Message):
    __slots__ = ("caller", "path", "mode")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    path: str
    mode: int
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., path: _Optional[str] = ..., mode: _Optional[int] = ...) -> None: ...

class SetOwnerRequest(_message.Message):
    __slots__ = ("caller", "path", "owner", "group")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    path: str
    owner: str
    group: str
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., path: _Optional[str] = ..., owner: _Optional[str] = ..., group: _Optional[str] = ...) -> None: ...

class SetReplicationRequest(_message.Message):
    __slots__ = ("caller", "path", "replication")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    path: str
    replication: int
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., path: _Optional[str] = ..., replication: _Optional[int] = ...) -> None: ...

class SetTimesRequest(_message.Message):
    __slots__ = ("caller", "path", "mtime")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    MTIME_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    path: str
    mtime: float
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., path: _Optional[str] = ..., mtime: _Optional[float] = ...) -> None: ...

class BoolReply(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: bool
    def __init__(self, value: _Optional[bool] = ...) -> None: ...

class CreateRequest(_message.Message):
    __slots__ = ("caller", "path", "overwrite", "replication", "block_size", "mode", "create_parent", "complete", "add_block", "replaces", "keep_attributes")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    BLOCK_SIZE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    CREATE_PARENT_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    ADD_BLOCK_FIELD_NUMBER: _ClassVar[int]
    REPLACES_FIELD_NUMBER: _ClassVar[int]
    KEEP_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    path: str
    overwrite: bool
    replication: int
    block_size: int
    mode: int
    create_parent: bool
    complete: bool
    add_block: bool
    replaces: int
    keep_attributes: bool
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., path: _Optional[str] = ..., overwrite: _Optional[bool] = ..., replication: _Optional[int] = ..., block_size: _Optional[int] = ..., mode: _Optional[int] = ..., create_parent: _Optional[bool] = ..., complete: _Optional[bool] = ..., add_block: _Optional[bool] = ..., replaces: _Optional[int] = ..., keep_attributes: _Optional[bool] = ...) -> None: ...

class CreateReply(_message.Message):
    __slots__ = ("status", "key", "file_id", "block", "lease_period")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    LEASE_PERIOD_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.FileStatus
    key: _common_pb2.FileKey
    file_id: int
    block: _common_pb2.LocatedBlock
    lease_period: float
    def __init__(self, status: _Optional[_Union[_common_pb2.FileStatus, _Mapping]] = ..., key: _Optional[_Union[_common_pb2.FileKey, _Mapping]] = ..., file_id: _Optional[int] = ..., block: _Optional[_Union[_common_pb2.LocatedBlock, _Mapping]] = ..., lease_period: _Optional[float] = ...) -> None: ...

class AddBlockRequest(_message.Message):
    __slots__ = ("caller", "file_id", "previous", "previous_nodes", "excluded", "has_previous", "draining", "excluded_age")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_NODES_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    HAS_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_AGE_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    file_id: int
    previous: _common_pb2.Block
    previous_nodes: _containers.RepeatedScalarFieldContainer[str]
    excluded: _containers.RepeatedScalarFieldContainer[str]
    has_previous: bool
    draining: int
    excluded_age: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., file_id: _Optional[int] = ..., previous: _Optional[_Union[_common_pb2.Block, _Mapping]] = ..., previous_nodes: _Optional[_Iterable[str]] = ..., excluded: _Optional[_Iterable[str]] = ..., has_previous: _Optional[bool] = ..., draining: _Optional[int] = ..., excluded_age: _Optional[_Iterable[float]] = ...) -> None: ...

class AddBlockReply(_message.Message):
    __slots__ = ("block",)
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    block: _common_pb2.LocatedBlock
    def __init__(self, block: _Optional[_Union[_common_pb2.LocatedBlock, _Mapping]] = ...) -> None: ...

class AbandonBlockRequest(_message.Message):
    __slots__ = ("caller", "file_id", "block_id")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    BLOCK_ID_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    file_id: int
    block_id: int
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., file_id: _Optional[int] = ..., block_id: _Optional[int] = ...) -> None: ...

class CompleteRequest(_message.Message):
    __slots__ = ("caller", "file_id", "last", "last_nodes", "has_last", "previous", "previous_nodes", "has_previous", "mtime", "has_mtime", "keep_attributes")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    LAST_NODES_FIELD_NUMBER: _ClassVar[int]
    HAS_LAST_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_NODES_FIELD_NUMBER: _ClassVar[int]
    HAS_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    MTIME_FIELD_NUMBER: _ClassVar[int]
    HAS_MTIME_FIELD_NUMBER: _ClassVar[int]
    KEEP_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    file_id: int
    last: _common_pb2.Block
    last_nodes: _containers.RepeatedScalarFieldContainer[str]
    has_last: bool
    previous: _common_pb2.Block
    previous_nodes: _containers.RepeatedScalarFieldContainer[str]
    has_previous: bool
    mtime: float
    has_mtime: bool
    keep_attributes: bool
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., file_id: _Optional[int] = ..., last: _Optional[_Union[_common_pb2.Block, _Mapping]] = ..., last_nodes: _Optional[_Iterable[str]] = ..., has_last: _Optional[bool] = ..., previous: _Optional[_Union[_common_pb2.Block, _Mapping]] = ..., previous_nodes: _Optional[_Iterable[str]] = ..., has_previous: _Optional[bool] = ..., mtime: _Optional[float] = ..., has_mtime: _Optional[bool] = ..., keep_attributes: _Optional[bool] = ...) -> None: ...

class RenewLeaseRequest(_message.Message):
    __slots__ = ("caller",)
    CALLER_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ...) -> None: ...

class GetBlockLocationsRequest(_message.Message):
    __slots__ = ("caller", "path", "offset", "length", "all", "stable", "ahead", "inode_id")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    STABLE_FIELD_NUMBER: _ClassVar[int]
    AHEAD_FIELD_NUMBER: _ClassVar[int]
    INODE_ID_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    path: str
    offset: int
    length: int
    all: bool
    stable: bool
    ahead: int
    inode_id: int
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., path: _Optional[str] = ..., offset: _Optional[int] = ..., length: _Optional[int] = ..., all: _Optional[bool] = ..., stable: _Optional[bool] = ..., ahead: _Optional[int] = ..., inode_id: _Optional[int] = ...) -> None: ...

class GetBlockLocationsReply(_message.Message):
    __slots__ = ("status", "blocks", "key")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.FileStatus
    blocks: _containers.RepeatedCompositeFieldContainer[_common_pb2.LocatedBlock]
    key: _common_pb2.FileKey
    def __init__(self, status: _Optional[_Union[_common_pb2.FileStatus, _Mapping]] = ..., blocks: _Optional[_Iterable[_Union[_common_pb2.LocatedBlock, _Mapping]]] = ..., key: _Optional[_Union[_common_pb2.FileKey, _Mapping]] = ...) -> None: ...

class ReportBadBlocksRequest(_message.Message):
    __slots__ = ("caller", "replicas")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    replicas: _containers.RepeatedCompositeFieldContainer[BadReplica]
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., replicas: _Optional[_Iterable[_Union[BadReplica, _Mapping]]] = ...) -> None: ...

class BadReplica(_message.Message):
    __slots__ = ("block_id", "address", "reason")
    BLOCK_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    block_id: int
    address: str
    reason: str
    def __init__(self, block_id: _Optional[int] = ..., address: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ContentSummary(_message.Message):
    __slots__ = ("length", "files", "directories", "space_consumed")
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    DIRECTORIES_FIELD_NUMBER: _ClassVar[int]
    SPACE_CONSUMED_FIELD_NUMBER: _ClassVar[int]
    length: int
    files: int
    directories: int
    space_consumed: int
    def __init__(self, length: _Optional[int] = ..., files: _Optional[int] = ..., directories: _Optional[int] = ..., space_consumed: _Optional[int] = ...) -> None: ...

class ContentSummaryReply(_message.Message):
    __slots__ = ("summary",)
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    summary: ContentSummary
    def __init__(self, summary: _Optional[_Union[ContentSummary, _Mapping]] = ...) -> None: ...

class FsckRequest(_message.Message):
    __slots__ = ("caller", "path", "files")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    path: str
    files: bool
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., path: _Optional[str] = ..., files: _Optional[bool] = ...) -> None: ...

class FsckFile(_message.Message):
    __slots__ = ("path", "length", "replication", "blocks", "status")
    PATH_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    path: str
    length: int
    replication: int
    blocks: _containers.RepeatedCompositeFieldContainer[_common_pb2.LocatedBlock]
    status: str
    def __init__(self, path: _Optional[str] = ..., length: _Optional[int] = ..., replication: _Optional[int] = ..., blocks: _Optional[_Iterable[_Union[_common_pb2.LocatedBlock, _Mapping]]] = ..., status: _Optional[str] = ...) -> None: ...

class FsckReply(_message.Message):
    __slots__ = ("status", "files", "blocks", "under_replicated", "missing", "corrupt", "details", "directories", "total_size", "decommissioning_replicas", "decommissioned_replicas", "safemode", "safemode_reason", "unreported")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    UNDER_REPLICATED_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    CORRUPT_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    DIRECTORIES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    DECOMMISSIONING_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    DECOMMISSIONED_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    SAFEMODE_FIELD_NUMBER: _ClassVar[int]
    SAFEMODE_REASON_FIELD_NUMBER: _ClassVar[int]
    UNREPORTED_FIELD_NUMBER: _ClassVar[int]
    status: str
    files: int
    blocks: int
    under_replicated: int
    missing: int
    corrupt: int
    details: _containers.RepeatedCompositeFieldContainer[FsckFile]
    directories: int
    total_size: int
    decommissioning_replicas: int
    decommissioned_replicas: int
    safemode: bool
    safemode_reason: str
    unreported: int
    def __init__(self, status: _Optional[str] = ..., files: _Optional[int] = ..., blocks: _Optional[int] = ..., under_replicated: _Optional[int] = ..., missing: _Optional[int] = ..., corrupt: _Optional[int] = ..., details: _Optional[_Iterable[_Union[FsckFile, _Mapping]]] = ..., directories: _Optional[int] = ..., total_size: _Optional[int] = ..., decommissioning_replicas: _Optional[int] = ..., decommissioned_replicas: _Optional[int] = ..., safemode: _Optional[bool] = ..., safemode_reason: _Optional[str] = ..., unreported: _Optional[int] = ...) -> None: ...

class ReportRequest(_message.Message):
    __slots__ = ("caller",)
    CALLER_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ...) -> None: ...

class ReportReply(_message.Message):
    __slots__ = ("safemode", "datanodes", "under_replicated", "missing", "corrupt", "blocks", "files", "pending_repair_bytes", "repair_rate", "unreported")
    SAFEMODE_FIELD_NUMBER: _ClassVar[int]
    DATANODES_FIELD_NUMBER: _ClassVar[int]
    UNDER_REPLICATED_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    CORRUPT_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    PENDING_REPAIR_BYTES_FIELD_NUMBER: _ClassVar[int]
    REPAIR_RATE_FIELD_NUMBER: _ClassVar[int]
    UNREPORTED_FIELD_NUMBER: _ClassVar[int]
    safemode: bool
    datanodes: _containers.RepeatedCompositeFieldContainer[_common_pb2.DatanodeInfo]
    under_replicated: int
    missing: int
    corrupt: int
    blocks: int
    files: int
    pending_repair_bytes: float
    repair_rate: float
    unreported: int
    def __init__(self, safemode: _Optional[bool] = ..., datanodes: _Optional[_Iterable[_Union[_common_pb2.DatanodeInfo, _Mapping]]] = ..., under_replicated: _Optional[int] = ..., missing: _Optional[int] = ..., corrupt: _Optional[int] = ..., blocks: _Optional[int] = ..., files: _Optional[int] = ..., pending_repair_bytes: _Optional[float] = ..., repair_rate: _Optional[float] = ..., unreported: _Optional[int] = ...) -> None: ...

class SafemodeRequest(_message.Message):
    __slots__ = ("caller", "action")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    action: str
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., action: _Optional[str] = ...) -> None: ...

class SafemodeReply(_message.Message):
    __slots__ = ("on", "reason")
    ON_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    on: bool
    reason: str
    def __init__(self, on: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class DecommissionRequest(_message.Message):
    __slots__ = ("caller", "address", "cancel")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    caller: Caller
    address: str
    cancel: bool
    def __init__(self, caller: _Optional[_Union[Caller, _Mapping]] = ..., address: _Optional[str] = ..., cancel: _Optional[bool] = ...) -> None: ...

class DecommissionReply(_message.Message):
    __slots__ = ("stuck_blocks", "in_service", "max_replication")
    STUCK_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    IN_SERVICE_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICATION_FIELD_NUMBER: _ClassVar[int]
    stuck_blocks: int
    in_service: int
    max_replication: int
    def __init__(self, stuck_blocks: _Optional[int] = ..., in_service: _Optional[int] = ..., max_replication: _Optional[int] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("uuid", "address", "rack", "capacity", "used", "remaining", "cluster_id", "storage_failed", "storage_failed_for", "protocol")
    UUID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    RACK_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FAILED_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FAILED_FOR_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    address: str
    rack: str
    capacity: int
    used: int
    remaining: int
    cluster_id: str
    storage_failed: str
    storage_failed_for: float
    protocol: int
    def __init__(self, uuid: _Optional[str] = ..., address: _Optional[str] = ..., rack: _Optional[str] = ..., capacity: _Optional[int] = ..., used: _Optional[int] = ..., remaining: _Optional[int] = ..., cluster_id: _Optional[str] = ..., storage_failed: _Optional[str] = ..., storage_failed_for: _Optional[float] = ..., protocol: _Optional[int] = ...) -> None: ...

class RegisterReply(_message.Message):
    __slots__ = ("cluster_id", "heartbeat_interval")
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    heartbeat_interval: float
    def __init__(self, cluster_id: _Optional[str] = ..., heartbeat_interval: _Optional[float] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("uuid", "capacity", "used", "remaining", "xceivers", "blocks", "received", "deleted", "corrupt", "failed_transfers", "repair_bytes", "client_ops", "storage_failed", "storage_failed_for")
    UUID_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    XCEIVERS_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    CORRUPT_FIELD_NUMBER: _ClassVar[int]
    FAILED_TRANSFERS_FIELD_NUMBER: _ClassVar[int]
    REPAIR_BYTES_FIELD_NUMBER: _ClassVar[int]
    CLIENT_OPS_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FAILED_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FAILED_FOR_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    capacity: int
    used: int
    remaining: int
    xceivers: int
    blocks: int
    received: _containers.RepeatedCompositeFieldContainer[_common_pb2.Block]
    deleted: _containers.RepeatedCompositeFieldContainer[_common_pb2.Block]
    corrupt: _containers.RepeatedScalarFieldContainer[int]
    failed_transfers: _containers.RepeatedCompositeFieldContainer[TransferFailure]
    repair_bytes: int
    client_ops: int
    storage_failed: str
    storage_failed_for: float
    def __init__(self, uuid: _Optional[str] = ..., capacity: _Optional[int] = ..., used: _Optional[int] = ..., remaining: _Optional[int] = ..., xceivers: _Optional[int] = ..., blocks: _Optional[int] = ..., received: _Optional[_Iterable[_Union[_common_pb2.Block, _Mapping]]] = ..., deleted: _Optional[_Iterable[_Union[_common_pb2.Block, _Mapping]]] = ..., corrupt: _Optional[_Iterable[int]] = ..., failed_transfers: _Optional[_Iterable[_Union[TransferFailure, _Mapping]]] = ..., repair_bytes: _Optional[int] = ..., client_ops: _Optional[int] = ..., storage_failed: _Optional[str] = ..., storage_failed_for: _Optional[float] = ...) -> None: ...

class TransferFailure(_message.Message):
    __slots__ = ("block", "targets", "reason")
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    block: _common_pb2.Block
    targets: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    def __init__(self, block: _Optional[_Union[_common_pb2.Block, _Mapping]] = ..., targets: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ...) -> None: ...

class TransferCommand(_message.Message):
    __slots__ = ("block", "targets", "urgent")
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    URGENT_FIELD_NUMBER: _ClassVar[int]
    block: _common_pb2.Block
    targets: _containers.RepeatedScalarFieldContainer[str]
    urgent: bool
    def __init__(self, block: _Optional[_Union[_common_pb2.Block, _Mapping]] = ..., targets: _Optional[_Iterable[str]] = ..., urgent: _Optional[bool] = ...) -> None: ...

class HeartbeatReply(_message.Message):
    __slots__ = ("reregister", "invalidate", "transfers", "request_block_report", "next_heartbeat", "clients_active")
    REREGISTER_FIELD_NUMBER: _ClassVar[int]
    INVALIDATE_FIELD_NUMBER: _ClassVar[int]
    TRANSFERS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_BLOCK_REPORT_FIELD_NUMBER: _ClassVar[int]
    NEXT_HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    reregister: bool
    invalidate: _containers.RepeatedScalarFieldContainer[int]
    transfers: _containers.RepeatedCompositeFieldContainer[TransferCommand]
    request_block_report: bool
    next_heartbeat: float
    clients_active: bool
    def __init__(self, reregister: _Optional[bool] = ..., invalidate: _Optional[_Iterable[int]] = ..., transfers: _Optional[_Iterable[_Union[TransferCommand, _Mapping]]] = ..., request_block_report: _Optional[bool] = ..., next_heartbeat: _Optional[float] = ..., clients_active: _Optional[bool] = ...) -> None: ...

class BlockReportRequest(_message.Message):
    __slots__ = ("uuid", "blocks")
    UUID_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    blocks: _containers.RepeatedCompositeFieldContainer[_common_pb2.Block]
    def __init__(self, uuid: _Optional[str] = ..., blocks: _Optional[_Iterable[_Union[_common_pb2.Block, _Mapping]]] = ...) -> None: ...
