"""The dfs error tree, and the one table that maps it to and from gRPC.

    DfsError
    ├── DfsFileNotFoundError      (FileNotFoundError)   No such file or directory
    ├── DfsFileExistsError        (FileExistsError)     File exists
    ├── DfsIsADirectoryError      (IsADirectoryError)   Is a directory
    ├── DfsNotADirectoryError     (NotADirectoryError)  Not a directory
    ├── DirectoryNotEmptyError    (OSError ENOTEMPTY)   Directory not empty
    ├── DfsPermissionError        (PermissionError)     Permission denied
    ├── InvalidPathError          (ValueError)          Invalid path
    │   └── NameTooLongError                            File name too long
    ├── InvalidArgumentError      (ValueError)
    ├── SafeModeError             (OSError EROFS)       namenode is in safe mode
    ├── NoDatanodesError          (OSError EIO)         no live datanodes ...
    │   └── NoSpaceError          (OSError ENOSPC)      live datanodes, every one full
    ├── LeaseError                (OSError EBUSY)       file is being written by another client
    │   └── AlreadyBeingCreatedError (FileExistsError) create of a path another client is writing
    ├── StaleVersionError         (OSError ESTALE)      changed by another client meanwhile
    ├── ForeignClusterError                             data dir belongs to another cluster
    ├── MetadataStoreError                              namenode cannot store (read) its metadata
    ├── NamenodeUnreachableError  (ConnectionError)     cannot reach namenode HOST:PORT
    ├── NotNamenodeError          (ConnectionError)     HOST:PORT is not a dfs namenode
    ├── DatanodeError             (ConnectionError)     a datanode failed a transfer
    └── DataIntegrityError        (OSError EIO)
        ├── ChecksumError                               stored bytes do not match their xxh3
        ├── DecryptionError                             AES-GCM authentication failed
        └── BlockMissingError                           no readable replica is left

Each error's ``reason`` is the short phrase the CLI prints after the path.
Every error an I/O call can meet is an ``OSError`` with the errno the FUSE
mount answers (code written for any fsspec backend catches ``OSError``;
HDFS's are IOExceptions); only bad arguments are ``ValueError``s, and the
namenode's own troubles are neither.
"""

from __future__ import annotations

import contextlib as _contextlib
import errno as _errno
import os as _os
from collections.abc import Mapping, Sequence


class DfsError(Exception):
    reason = "error"

    def __init__(self, message: str = "", path: str = ""):
        self.path = path
        self.detail = message or self.reason
        super().__init__(f"{path}: {self.detail}" if path else self.detail)

    # The OSError ones carry errno/strerror/filename as a local OSError does (code checks
    # e.errno == errno.ENOENT); str() stays "PATH: reason". They are derived, and a set
    # is ignored: pickling an exception's state (tblib, as Dask's workers send errors to
    # the client) sets them back, and a property without a setter made that fail (the
    # client got a bare Exception).
    @property
    def errno(self) -> int | None:
        return errno_for(self) if isinstance(self, OSError) else None

    @errno.setter
    def errno(self, value) -> None:
        pass

    @property
    def strerror(self) -> str | None:
        return self.detail if isinstance(self, OSError) else None

    @strerror.setter
    def strerror(self, value) -> None:
        pass

    @property
    def filename(self) -> str | None:
        return (self.path or None) if isinstance(self, OSError) else None

    @filename.setter
    def filename(self, value) -> None:
        pass

    def __reduce__(self):
        # Rebuilt from (message, path): an OSError subclass would otherwise be rebuilt
        # from its args by OSError's rules. The traceback chain is not sent along.
        return (_rebuild, (type(self), self.detail, self.path, dict(self.__dict__)))


class DfsFileNotFoundError(DfsError, FileNotFoundError):
    reason = "No such file or directory"


class DfsFileExistsError(DfsError, FileExistsError):
    reason = "File exists"


class DfsIsADirectoryError(DfsError, IsADirectoryError):
    reason = "Is a directory"


class DfsNotADirectoryError(DfsError, NotADirectoryError):
    reason = "Not a directory"


class DirectoryNotEmptyError(DfsError, OSError):
    reason = "Directory not empty"

    @property
    def errno(self) -> int:  # type: ignore[override]
        return _errno.ENOTEMPTY


class DfsPermissionError(DfsError, PermissionError):
    reason = "Permission denied"


class InvalidPathError(DfsError, ValueError):
    reason = "Invalid path"


class NameTooLongError(InvalidPathError):
    reason = "File name too long"


class InvalidArgumentError(DfsError, ValueError):
    reason = "Invalid argument"


class SafeModeError(DfsError, OSError):
    """Retryable, unless ``manual``. ``retry_for``: how many more seconds the namenode
    expects this may last (it has just restarted and datanodes may still re-register);
    0 = no estimate. It travels as the reply's trailing metadata (dfs/rpc/status.py).
    ``manual``: an administrator's safe mode, which lasts until one leaves it: not
    retried (as HDFS retries only a starting namenode's); it travels as the status code."""
    reason = "namenode is in safe mode"

    def __init__(self, message: str = "", path: str = "", retry_for: float = 0.0, manual: bool = False):
        super().__init__(message, path)
        self.retry_for = retry_for
        self.manual = manual


class NoDatanodesError(DfsError, OSError):
    reason = "no live datanodes to write to"


class NoSpaceError(NoDatanodesError):
    """Datanodes are live but every one is full: the one block allocation failure that
    is ENOSPC through FUSE (no live datanode at all is EIO: nothing is full)."""
    reason = "no space left on the datanodes"


#: How the namenode says that every live datanode failed a write (it has no target left
#: for the block): the writer, which heard why, says it again with the reasons.
NO_DATANODE_LEFT = "no datanode left for the block: every live one failed this write"
_NO_SPACE = _os.strerror(_errno.ENOSPC)   # in a datanode's refusal of a block


def no_datanode_left(failed: Sequence[str], said: Mapping[str, str] | None = None,
                     path: str = "", silent: Mapping[str, float] | None = None) -> NoDatanodesError:
    """The one-line error of a write that every datanode it may use failed (nodes it gave
    up on come back once they restart: docs/healing.md): each named, with what it said
    (``said``: node -> its refusal, when the writer heard one) and how long it has not
    beaten (``silent``: node -> seconds, a frozen one). When every one refused for want
    of room: a NoSpaceError, worded as the namenode's own (whose heartbeats lag a disk
    being filled)."""
    said, silent = said or {}, silent or {}
    full = bool(failed) and all(_NO_SPACE in said.get(a, "") for a in failed)
    if full:
        parts = [f"no space left: all {len(failed)} datanodes this write tried are full"]
    else:
        names = ", ".join(f"{a} (no heartbeat for {silent[a]:.1f} s)" if a in silent else a for a in failed)
        parts = [f"{NO_DATANODE_LEFT} and none has restarted since: {names}"]
    parts += [f"{a}: {said[a]}" for a in failed if a in said]
    return (NoSpaceError if full else NoDatanodesError)("; ".join(parts), path)


def nodes_named(detail: str) -> tuple[list[str], dict[str, float]]:
    """The nodes of a ``no_datanode_left`` message (not a NoSpaceError's), and how long
    each silent one had not beaten: the writer adds what they said when they refused."""
    names = detail.partition(" and none has restarted since: ")[2].split("; ")[0]
    nodes, silent = [], {}
    for item in filter(None, names.split(", ")):
        address, _, rest = item.partition(" (no heartbeat for ")
        nodes.append(address)
        if rest.endswith(" s)"):
            with _contextlib.suppress(ValueError):
                silent[address] = float(rest[:-3])
    return nodes, silent


class LeaseError(DfsError, OSError):
    reason = "file is being written by another client"


class AlreadyBeingCreatedError(LeaseError, DfsFileExistsError):
    """``create`` of a path another client is writing (holds its lease), as HDFS's
    AlreadyBeingCreatedException: a lease error, and a FileExistsError to callers
    that only know the standard exceptions."""
    reason = "file is being created by another client"


class StaleVersionError(DfsError, OSError):
    """A FUSE mount's commit of a file that another client replaced (or removed) since the
    mount read the version it changed: ESTALE, as NFS answers, rather than overwrite it."""
    reason = "changed by another client since it was opened here: not overwritten"


class ForeignClusterError(DfsError):
    """A datanode whose data dir belongs to another namenode's cluster."""
    reason = "data dir belongs to another cluster"


class MetadataStoreError(DfsError):
    """The namenode could not commit a change to its metadata (a full disk): none of it is
    kept. Or it could not read it (no file descriptor left for a tree's snapshot)."""
    reason = "namenode cannot store its metadata"


class NamenodeUnreachableError(DfsError, ConnectionError):
    reason = "cannot reach namenode"


class NotNamenodeError(DfsError, ConnectionError):
    """Something answers at the address, but not a dfs namenode (an HTTP server, another
    gRPC service). Not retried: waiting will not turn it into one."""
    reason = "not a dfs namenode"


class DatanodeError(DfsError, ConnectionError):
    reason = "datanode transfer failed"


class DataIntegrityError(DfsError, OSError):
    reason = "data integrity error"


class ChecksumError(DataIntegrityError):
    reason = "checksum mismatch"


class DecryptionError(DataIntegrityError):
    reason = "authentication of encrypted chunk failed"


class BlockMissingError(DataIntegrityError):
    reason = "no readable replica of a block"


#: Errors that travel over gRPC, by the name carried in the status details.
WIRE_ERRORS: dict[str, type[DfsError]] = {
    cls.__name__: cls
    for cls in (
        DfsError, DfsFileNotFoundError, DfsFileExistsError, DfsIsADirectoryError,
        DfsNotADirectoryError, DirectoryNotEmptyError, DfsPermissionError,
        InvalidPathError, NameTooLongError, InvalidArgumentError, SafeModeError, NoDatanodesError,
        NoSpaceError, LeaseError, AlreadyBeingCreatedError, ForeignClusterError, MetadataStoreError,
        DataIntegrityError, ChecksumError, BlockMissingError, StaleVersionError,
    )
}

#: errno for each error (FUSE answers with these).
ERRNO: dict[type[DfsError], int] = {
    DfsFileNotFoundError: _errno.ENOENT,
    DfsFileExistsError: _errno.EEXIST,
    DfsIsADirectoryError: _errno.EISDIR,
    DfsNotADirectoryError: _errno.ENOTDIR,
    DirectoryNotEmptyError: _errno.ENOTEMPTY,
    DfsPermissionError: _errno.EACCES,
    NameTooLongError: _errno.ENAMETOOLONG,
    InvalidPathError: _errno.EINVAL,
    InvalidArgumentError: _errno.EINVAL,
    SafeModeError: _errno.EROFS,
    NoSpaceError: _errno.ENOSPC,
    NoDatanodesError: _errno.EIO,  # nothing live to write to: an I/O error, not a full disk
    MetadataStoreError: _errno.ENOSPC,
    LeaseError: _errno.EBUSY,
    AlreadyBeingCreatedError: _errno.EBUSY,
    StaleVersionError: _errno.ESTALE,
    # EIO, not ENOTCONN: ENOTCONN is the kernel's answer for a FUSE mount whose process
    # died, and tools (dfs mount among them) take it for a stale mount.
    NamenodeUnreachableError: _errno.EIO,
    DatanodeError: _errno.EIO,
    DataIntegrityError: _errno.EIO,
}


def errno_for(exc: BaseException) -> int:
    for cls in type(exc).__mro__:
        if cls in ERRNO:
            return ERRNO[cls]  # type: ignore[index]
    return _errno.EIO


def _rebuild(cls, detail: str, path: str, state: dict):
    e = cls.__new__(cls)
    DfsError.__init__(e, detail, path)
    e.__dict__.update(state)
    return e
