"""DfsError <-> gRPC status: the one table both sides use.

The server aborts with a status code and details "ErrorClass\\0path\\0detail";
the client turns that back into the same exception class.
"""

from __future__ import annotations

import functools
import logging

import grpc

from dfs import errors

log = logging.getLogger(__name__)

CODES: dict[type[errors.DfsError], grpc.StatusCode] = {
    errors.DfsFileNotFoundError: grpc.StatusCode.NOT_FOUND,
    errors.DfsFileExistsError: grpc.StatusCode.ALREADY_EXISTS,
    errors.DfsPermissionError: grpc.StatusCode.PERMISSION_DENIED,
    errors.SafeModeError: grpc.StatusCode.UNAVAILABLE,
    errors.NoDatanodesError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.MetadataStoreError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.LeaseError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.StaleVersionError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.DirectoryNotEmptyError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.InvalidPathError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.DataIntegrityError: grpc.StatusCode.DATA_LOSS,
}


#: Trailing metadata of a SafeModeError reply: seconds the namenode expects it to last.
RETRY_FOR_KEY = "dfs-retry-for"


def _retry_for(e: grpc.RpcError) -> float:
    try:
        for key, value in (e.trailing_metadata() or ()) if hasattr(e, "trailing_metadata") else ():
            if key == RETRY_FOR_KEY:
                x = float(value)
                return x if 0 < x < 1e6 else 0.0
    except (TypeError, ValueError):
        pass
    return 0.0


def _code_for(exc: errors.DfsError) -> grpc.StatusCode:
    if isinstance(exc, errors.SafeModeError) and exc.manual:
        # Not UNAVAILABLE: clients retry that (8 s by default), and waiting does not end
        # an administrator's safe mode. A client of any version takes it at once.
        return grpc.StatusCode.FAILED_PRECONDITION
    for cls in type(exc).__mro__:
        if cls in CODES:
            return CODES[cls]  # type: ignore[index]
    return grpc.StatusCode.FAILED_PRECONDITION


def servicer_method(fn):
    """Decorate a servicer method: DfsError -> status with the error's class."""

    @functools.wraps(fn)
    def wrapper(self, request, context):
        try:
            return fn(self, request, context)
        except errors.DfsError as e:
            if getattr(e, "retry_for", 0) > 0:   # SafeModeError: how long the caller may wait
                context.set_trailing_metadata(((RETRY_FOR_KEY, f"{e.retry_for:.3f}"),))
            context.abort(_code_for(e), f"{type(e).__name__}\0{e.path}\0{e.detail}")
        except Exception:
            log.exception("internal error in %s", fn.__name__)
            context.abort(grpc.StatusCode.INTERNAL, "DfsError\0\0internal error in namenode")

    return wrapper


#: What gRPC says when the peer is not a gRPC server: a reply that is not HTTP/2
#: ("Failed parsing HTTP/2"), or an HTTP/2 answer without a gRPC status
#: ("Received http2 header with status: 404", a non-gRPC content-type).
_NOT_GRPC = ("Failed parsing HTTP/2", "http2 header", "http2 :status", "content-type")


def from_rpc_error(e: grpc.RpcError, address: str) -> errors.DfsError:
    code = e.code() if hasattr(e, "code") else None
    details = (e.details() if hasattr(e, "details") else "") or ""
    if "\0" in details:
        name, path, detail = (details.split("\0", 2) + ["", ""])[:3]
        cls = errors.WIRE_ERRORS.get(name, errors.DfsError)
        err = cls(detail, path)
        if isinstance(err, errors.SafeModeError):
            err.retry_for = _retry_for(e)
            err.manual = code == grpc.StatusCode.FAILED_PRECONDITION
        return err
    if code == grpc.StatusCode.UNIMPLEMENTED or any(m in details for m in _NOT_GRPC):
        # Something answered, but not our service: an HTTP server (its reply is not HTTP/2,
        # or an HTTP/2 404), a gRPC server of something else. Not retried, not raw gRPC text.
        return errors.NotNamenodeError(
            f"{address} is not a dfs namenode (something else answers there)")
    # CANCELLED without our details: the namenode was shutting down (SIGTERM) when the call
    # arrived, so it was not run -- the same as an unreachable namenode.
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        err = errors.NamenodeUnreachableError(f"cannot reach namenode {address}")
        err.address = address   # which of a command's paths it is about (cp between clusters)
        return err
    return errors.DfsError(f"namenode {address}: {details or code}")
