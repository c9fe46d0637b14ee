"""The client's link to the namenode: deadlines, retries, errors mapped back.

Every call has a deadline. A namenode that cannot be reached is retried
until ``retry_seconds`` have passed (so a restarting namenode is ridden
through), then surfaces as NamenodeUnreachableError: the CLI fails within
15 seconds, never hangs. A call may be retried after the namenode applied it
(killed before it replied): each call carries a call id, unchanged across its
retries, by which the namenode recognises and answers such a retry.
A SafeModeError is retried as long too, or as long as the namenode's reply says
its datanodes may still take to come back after its restart (``retry_for``),
at most MAX_RESTART_WAIT in all.
"""

from __future__ import annotations

import getpass
import itertools
import math
import os
import socket
import threading
import time
import uuid

import grpc

from dfs import errors
from dfs.config import setting
from dfs.rpc.channel import make_channel
from dfs.rpc.status import from_rpc_error
from dfs.rpc.v1 import namenode_pb2 as pb
from dfs.rpc.v1 import namenode_pb2_grpc as grpc_pb

CALL_TIMEOUT = 10.0
# A namenode that has just restarted answers a SafeModeError with how long its datanodes
# may still take to re-register (up to its dead-node timeout, 30 s by default): a call
# keeps retrying that long, beyond retry_seconds, but never more than this in all.
MAX_RESTART_WAIT = 60.0
# Down, or shutting down (a call that reaches a namenode being stopped is cancelled,
# not run): ride it out until retry_seconds. A deadline is not retried (slow, not down).
_RETRY_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)


def acting_user(user: str | None = None) -> str:
    """The user a client acts as: ``user``, else $DFS_USER, else the login name."""
    return user or os.environ.get("DFS_USER") or getpass.getuser()


class NamenodeClient:
    def __init__(self, address: str, *, user: str | None = None, retry_seconds: float | None = None):
        self.address = address
        if retry_seconds is None:
            retry_seconds = setting("DFS_RETRY_SECONDS", 8.0)
        self.retry_seconds = retry_seconds
        user = acting_user(user)
        self.caller = pb.Caller(user=user, groups=_groups(user), client_name=_client_name(),
                                host=os.environ.get("DFS_CLIENT_HOST", ""))
        self._lock = threading.Lock()
        self._stub: grpc_pb.ClientNamenodeStub | None = None
        self._channel: grpc.Channel | None = None
        self._pid = os.getpid()
        self._call_ids = itertools.count(1)
        self._name_pid = os.getpid()

    @property
    def stub(self) -> grpc_pb.ClientNamenodeStub:
        # Channels do not survive fork(); a child (Dask process worker) builds its own.
        if self._stub is None or self._pid != os.getpid():
            with self._lock:
                if self._stub is None or self._pid != os.getpid():
                    self._channel = make_channel(self.address)
                    self._stub = grpc_pb.ClientNamenodeStub(self._channel)
                    self._pid = os.getpid()
        return self._stub

    def call(self, method: str, request=None, *, timeout: float = CALL_TIMEOUT, budget: float | None = None,
             stream: bool = False):
        """One RPC with retries while the namenode is down or restarting; ``budget``:
        seconds for all of it, retries included (each try's deadline is cut to fit).
        ``stream``: a server-streaming RPC, its replies merged into one."""
        if request is None:
            request = pb.Empty()
        elif hasattr(request, "caller"):
            if self._name_pid != os.getpid():
                self._forked()
            request.caller.CopyFrom(self.caller)
            # One id per call, kept by its retries: a retry of a mutation the namenode
            # applied before the reply was lost gets the first outcome (its retry cache).
            request.caller.call_id = next(self._call_ids)
        start = time.monotonic()
        end = math.inf if budget is None else start + budget
        deadline = min(start + self.retry_seconds, end)
        delay = 0.1
        while True:
            try:
                reply = getattr(self.stub, method)(request, timeout=max(0.05, min(timeout, end - time.monotonic())))
                return _merged(reply) if stream else reply
            except grpc.RpcError as e:
                err = from_rpc_error(e, self.address)
                retry = isinstance(err, (errors.NamenodeUnreachableError, errors.SafeModeError)) \
                    and e.code() in _RETRY_CODES
            if retry and isinstance(err, errors.SafeModeError) and err.retry_for > 0:
                deadline = min(max(deadline, min(time.monotonic() + err.retry_for, start + MAX_RESTART_WAIT)), end)
            if not retry or time.monotonic() + delay > deadline:
                # Raised outside the except block: no __context__ holding the gRPC error
                # (and its lock), which pickling the error (Dask sends it) cannot take.
                raise err
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _forked(self) -> None:
        """A child process (fork) is a client of its own: its own name, so that its
        call ids (counted from the parent's) never match the parent's in the
        namenode's retry cache, nor its leases the parent's."""
        with self._lock:
            if self._name_pid != os.getpid():
                self.caller.client_name = _client_name()
                self._call_ids = itertools.count(1)
                self._name_pid = os.getpid()

    def close(self) -> None:
        if self._channel is not None and self._pid == os.getpid():
            self._channel.close()
        self._channel = self._stub = None

    def __getstate__(self):
        raise TypeError("NamenodeClient is not picklable; pickle DfsClient instead")


def _merged(replies):
    """One message from a stream of replies: repeated fields appended, the others
    set by whichever reply sets them (the last, for fsck's totals)."""
    out = None
    for r in replies:
        if out is None:
            out = r
        else:
            out.MergeFrom(r)
    return out


def _client_name() -> str:
    return f"dfs-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _groups(user: str) -> list[str]:
    try:
        import grp
        import pwd
        gid = pwd.getpwnam(user).pw_gid
        return sorted({grp.getgrgid(gid).gr_name} | {g.gr_name for g in grp.getgrall() if user in g.gr_mem})
    except (KeyError, ImportError):
        return []
