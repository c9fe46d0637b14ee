"""NamenodeClient rides out a namenode that is down or shutting down."""

from __future__ import annotations

import os
import time

import grpc
import pytest

from dfs import errors
from dfs.client import namenode as namenode_mod
from dfs.client.namenode import NamenodeClient


class _Status(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str = "", trailing=()):
        self._code, self._details, self._trailing = code, details, tuple(trailing)

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailing


class _Stub:
    def __init__(self, failures):
        self.failures = list(failures)
        self.calls = 0

    def Mkdir(self, request, timeout):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def _client(stub, retry_seconds=5.0) -> NamenodeClient:
    c = NamenodeClient("127.0.0.1:1", retry_seconds=retry_seconds)
    c._stub, c._pid = stub, os.getpid()
    return c


def test_a_call_cancelled_by_a_stopping_namenode_is_retried():
    # grpc answers CANCELLED to a call that reaches a namenode being stopped (SIGTERM):
    # a put in progress failed with `namenode HOST:PORT: CANCELLED` instead of retrying.
    stub = _Stub([_Status(grpc.StatusCode.CANCELLED, "Cancelled"), _Status(grpc.StatusCode.UNAVAILABLE)])
    assert _client(stub).call("Mkdir") == "ok" and stub.calls == 3


def test_errors_from_the_namenode_and_deadlines_are_not_retried():
    stub = _Stub([_Status(grpc.StatusCode.NOT_FOUND, "DfsFileNotFoundError\0/x\0No such file or directory")])
    with pytest.raises(errors.DfsFileNotFoundError):
        _client(stub).call("Mkdir")
    stub = _Stub([_Status(grpc.StatusCode.DEADLINE_EXCEEDED)])
    with pytest.raises(errors.NamenodeUnreachableError):
        _client(stub).call("Mkdir")
    assert stub.calls == 1


@pytest.mark.parametrize("status", [
    # what grpcio reports from an HTTP/1 server (seen: python -m http.server) ...
    _Status(grpc.StatusCode.UNAVAILABLE,
            "failed to connect to all addresses; last error: UNAVAILABLE: ipv4:127.0.0.5:8080: "
            "Failed parsing HTTP/2 (Expected SETTINGS frame as the first frame, got frame type 79)"),
    # ... an HTTP/2 server that is not gRPC, and a gRPC server of another service
    _Status(grpc.StatusCode.UNIMPLEMENTED, "Received http2 header with status: 404"),
    _Status(grpc.StatusCode.UNIMPLEMENTED, "Method not found!"),
])
def test_something_else_at_the_address_is_not_a_namenode_and_not_retried(status):
    stub = _Stub([status, status, status])
    with pytest.raises(errors.NotNamenodeError) as ei:
        _client(stub).call("Mkdir")
    assert stub.calls == 1
    assert str(ei.value) == "127.0.0.1:1 is not a dfs namenode (something else answers there)"


def test_connection_refused_is_unreachable():
    refused = _Status(grpc.StatusCode.UNAVAILABLE,
                      "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.7:1: "
                      "Failed to connect to remote host: Connection refused")
    with pytest.raises(errors.NamenodeUnreachableError) as ei:
        _client(_Stub([refused] * 50), retry_seconds=0.3).call("Mkdir")
    assert str(ei.value) == "cannot reach namenode 127.0.0.1:1"


class _IdStub:
    def __init__(self, failures):
        self.failures, self.ids = list(failures), []

    def Mkdir(self, request, timeout):
        self.ids.append(request.caller.call_id)
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def test_the_retries_of_one_call_carry_its_call_id_and_the_next_call_a_new_one():
    # The namenode's retry cache recognises a retry by (client_name, call_id).
    from dfs.rpc.v1 import namenode_pb2 as pb
    stub = _IdStub([_Status(grpc.StatusCode.UNAVAILABLE), _Status(grpc.StatusCode.CANCELLED)])
    c = _client(stub)
    c.call("Mkdir", pb.MkdirRequest(path="/a"))
    c.call("Mkdir", pb.MkdirRequest(path="/b"))
    first = stub.ids[0]
    assert first > 0 and stub.ids == [first, first, first, first + 1]


def test_a_forked_child_calls_under_a_name_of_its_own(monkeypatch):
    # Its call ids continue the parent's count: under the parent's name they would be
    # answered with the parent's recorded outcomes.
    from dfs.rpc.v1 import namenode_pb2 as pb
    names = []
    stub = _IdStub([])
    stub.Mkdir = lambda r, timeout: names.append((r.caller.client_name, r.caller.call_id))
    c = _client(stub)
    c.call("Mkdir", pb.MkdirRequest(path="/a"))
    monkeypatch.setattr(os, "getpid", lambda: 4242424)
    c._pid = 4242424               # the child's channel: not under test
    c.call("Mkdir", pb.MkdirRequest(path="/b"))
    (parent, first), (child, again) = names
    assert child != parent and first == again == 1


def _safemode(retry_for: str | None = None) -> _Status:
    trailing = [("dfs-retry-for", retry_for)] if retry_for is not None else []
    return _Status(grpc.StatusCode.UNAVAILABLE,
                   "SafeModeError\0/f\0namenode restarted: no datanode has reported block 7 yet", trailing)


def test_a_restarted_namenode_says_how_long_to_wait_and_the_client_waits_that_long():
    # retry_seconds alone (0.3 s) would give up long before the datanodes are back
    stub = _Stub([_safemode("1.5")] * 4)      # retried after 0.1, 0.2, 0.4, 0.8 s
    t0 = time.monotonic()
    assert _client(stub, retry_seconds=0.3).call("Mkdir") == "ok" and stub.calls == 5
    assert time.monotonic() - t0 < 5
    # without an estimate: retry_seconds, then the error, its path and reason kept
    stub = _Stub([_safemode()] * 50)
    with pytest.raises(errors.SafeModeError, match="/f: namenode restarted") as ei:
        _client(stub, retry_seconds=0.3).call("Mkdir")
    assert ei.value.retry_for == 0 and stub.calls < 6
    # a garbled estimate is no estimate
    stub = _Stub([_safemode("nan")] * 50)
    with pytest.raises(errors.SafeModeError):
        _client(stub, retry_seconds=0.2).call("Mkdir")
    assert stub.calls < 6


def test_the_wait_a_namenode_asks_for_is_bounded(monkeypatch):
    monkeypatch.setattr(namenode_mod, "MAX_RESTART_WAIT", 1.0)
    stub = _Stub([_safemode("3600")] * 1000)
    t0 = time.monotonic()
    with pytest.raises(errors.SafeModeError) as ei:
        _client(stub, retry_seconds=0.1).call("Mkdir")
    assert 0.5 < time.monotonic() - t0 < 3 and ei.value.retry_for == 3600


def test_an_administrators_safe_mode_is_not_retried():
    # It lasts until an administrator leaves it: retrying only delayed the error 8 s.
    stub = _Stub([_Status(grpc.StatusCode.FAILED_PRECONDITION,
                          "SafeModeError\0/f\0namenode is in safe mode, entered by an administrator")] * 50)
    with pytest.raises(errors.SafeModeError, match="entered by an administrator") as ei:
        _client(stub, retry_seconds=5.0).call("Mkdir")
    assert stub.calls == 1 and ei.value.manual


def test_the_namenode_sends_an_administrators_safe_mode_as_not_retryable():
    from dfs.rpc.status import _code_for
    assert _code_for(errors.SafeModeError("x", manual=True)) == grpc.StatusCode.FAILED_PRECONDITION
    assert _code_for(errors.SafeModeError("x", retry_for=3)) == grpc.StatusCode.UNAVAILABLE
