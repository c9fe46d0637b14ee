from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChunkMeta(_message.Message):
    __slots__ = ("stored_length", "plain_length", "checksum")
    STORED_LENGTH_FIELD_NUMBER: _ClassVar[int]
    PLAIN_LENGTH_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    stored_length: int
    plain_length: int
    checksum: int
    def __init__(self, stored_length: _Optional[int] = ..., plain_length: _Optional[int] = ..., checksum: _Optional[int] = ...) -> None: ...

class OpHeader(_message.Message):
    __slots__ = ("op", "block_id", "genstamp", "downstream", "first_chunk", "last_chunk", "chunk_size", "background", "fanout", "ready_reply", "setup_ms")
    class Op(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNKNOWN: _ClassVar[OpHeader.Op]
        WRITE_BLOCK: _ClassVar[OpHeader.Op]
        READ_BLOCK: _ClassVar[OpHeader.Op]
    UNKNOWN: OpHeader.Op
    WRITE_BLOCK: OpHeader.Op
    READ_BLOCK: OpHeader.Op
    OP_FIELD_NUMBER: _ClassVar[int]
    BLOCK_ID_FIELD_NUMBER: _ClassVar[int]
    GENSTAMP_FIELD_NUMBER: _ClassVar[int]
    DOWNSTREAM_FIELD_NUMBER: _ClassVar[int]
    FIRST_CHUNK_FIELD_NUMBER: _ClassVar[int]
    LAST_CHUNK_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_FIELD_NUMBER: _ClassVar[int]
    FANOUT_FIELD_NUMBER: _ClassVar[int]
    READY_REPLY_FIELD_NUMBER: _ClassVar[int]
    SETUP_MS_FIELD_NUMBER: _ClassVar[int]
    op: OpHeader.Op
    block_id: int
    genstamp: int
    downstream: _containers.RepeatedScalarFieldContainer[str]
    first_chunk: int
    last_chunk: int
    chunk_size: int
    background: bool
    fanout: bool
    ready_reply: bool
    setup_ms: int
    def __init__(self, op: _Optional[_Union[OpHeader.Op, str]] = ..., block_id: _Optional[int] = ..., genstamp: _Optional[int] = ..., downstream: _Optional[_Iterable[str]] = ..., first_chunk: _Optional[int] = ..., last_chunk: _Optional[int] = ..., chunk_size: _Optional[int] = ..., background: _Optional[bool] = ..., fanout: _Optional[bool] = ..., ready_reply: _Optional[bool] = ..., setup_ms: _Optional[int] = ...) -> None: ...

class ChunkFrame(_message.Message):
    __slots__ = ("meta", "end")
    META_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    meta: ChunkMeta
    end: bool
    def __init__(self, meta: _Optional[_Union[ChunkMeta, _Mapping]] = ..., end: _Optional[bool] = ...) -> None: ...

class WriteAck(_message.Message):
    __slots__ = ("stored", "failed", "error", "ready")
    STORED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    stored: _containers.RepeatedScalarFieldContainer[str]
    failed: _containers.RepeatedScalarFieldContainer[str]
    error: str
    ready: bool
    def __init__(self, stored: _Optional[_Iterable[str]] = ..., failed: _Optional[_Iterable[str]] = ..., error: _Optional[str] = ..., ready: _Optional[bool] = ...) -> None: ...

class ReadReply(_message.Message):
    __slots__ = ("error", "first_chunk", "chunks", "block_length", "chunk_size")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FIRST_CHUNK_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_LENGTH_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    error: str
    first_chunk: int
    chunks: _containers.RepeatedCompositeFieldContainer[ChunkMeta]
    block_length: int
    chunk_size: int
    def __init__(self, error: _Optional[str] = ..., first_chunk: _Optional[int] = ..., chunks: _Optional[_Iterable[_Union[ChunkMeta, _Mapping]]] = ..., block_length: _Optional[int] = ..., chunk_size: _Optional[int] = ...) -> None: ...
