from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FileStatus(_message.Message):
    __slots__ = ("path", "is_dir", "length", "replication", "block_size", "mode", "owner", "group", "mtime", "ctime", "inode_id", "chunk_size", "children", "subdirs")
    PATH_FIELD_NUMBER: _ClassVar[int]
    IS_DIR_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    BLOCK_SIZE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MTIME_FIELD_NUMBER: _ClassVar[int]
    CTIME_FIELD_NUMBER: _ClassVar[int]
    INODE_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    SUBDIRS_FIELD_NUMBER: _ClassVar[int]
    path: str
    is_dir: bool
    length: int
    replication: int
    block_size: int
    mode: int
    owner: str
    group: str
    mtime: float
    ctime: float
    inode_id: int
    chunk_size: int
    children: int
    subdirs: int
    def __init__(self, path: _Optional[str] = ..., is_dir: _Optional[bool] = ..., length: _Optional[int] = ..., replication: _Optional[int] = ..., block_size: _Optional[int] = ..., mode: _Optional[int] = ..., owner: _Optional[str] = ..., group: _Optional[str] = ..., mtime: _Optional[float] = ..., ctime: _Optional[float] = ..., inode_id: _Optional[int] = ..., chunk_size: _Optional[int] = ..., children: _Optional[int] = ..., subdirs: _Optional[int] = ...) -> None: ...

class DatanodeInfo(_message.Message):
    __slots__ = ("uuid", "address", "rack", "capacity", "used", "remaining", "blocks", "last_heartbeat", "state", "xceivers", "storage_failed", "storage_failed_at", "protocol", "outdated")
    UUID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    RACK_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    XCEIVERS_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FAILED_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FAILED_AT_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    OUTDATED_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    address: str
    rack: str
    capacity: int
    used: int
    remaining: int
    blocks: int
    last_heartbeat: float
    state: str
    xceivers: int
    storage_failed: str
    storage_failed_at: float
    protocol: int
    outdated: bool
    def __init__(self, uuid: _Optional[str] = ..., address: _Optional[str] = ..., rack: _Optional[str] = ..., capacity: _Optional[int] = ..., used: _Optional[int] = ..., remaining: _Optional[int] = ..., blocks: _Optional[int] = ..., last_heartbeat: _Optional[float] = ..., state: _Optional[str] = ..., xceivers: _Optional[int] = ..., storage_failed: _Optional[str] = ..., storage_failed_at: _Optional[float] = ..., protocol: _Optional[int] = ..., outdated: _Optional[bool] = ...) -> None: ...

class Block(_message.Message):
    __slots__ = ("block_id", "genstamp", "length")
    BLOCK_ID_FIELD_NUMBER: _ClassVar[int]
    GENSTAMP_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    block_id: int
    genstamp: int
    length: int
    def __init__(self, block_id: _Optional[int] = ..., genstamp: _Optional[int] = ..., length: _Optional[int] = ...) -> None: ...

class LocatedBlock(_message.Message):
    __slots__ = ("block", "offset", "locations", "corrupt")
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LOCATIONS_FIELD_NUMBER: _ClassVar[int]
    CORRUPT_FIELD_NUMBER: _ClassVar[int]
    block: Block
    offset: int
    locations: _containers.RepeatedCompositeFieldContainer[DatanodeInfo]
    corrupt: bool
    def __init__(self, block: _Optional[_Union[Block, _Mapping]] = ..., offset: _Optional[int] = ..., locations: _Optional[_Iterable[_Union[DatanodeInfo, _Mapping]]] = ..., corrupt: _Optional[bool] = ...) -> None: ...

class FileKey(_message.Message):
    __slots__ = ("key", "chunk_size")
    KEY_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    chunk_size: int
    def __init__(self, key: _Optional[bytes] = ..., chunk_size: _Optional[int] = ...) -> None: ...
