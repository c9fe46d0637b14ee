"""Every gRPC channel and server is built here (TLS and auth will plug in here).

Control messages are small; block data never travels over gRPC (see
docs/transport.md), so the default message limits are kept.
"""

from __future__ import annotations

import errno
import socket
from concurrent import futures

import grpc

_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
    # Fail fast and retry ourselves: an unreachable namenode must surface within seconds.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    ("grpc.enable_retries", 0),
]


def make_channel(address: str) -> grpc.Channel:
    return grpc.insecure_channel(address, options=_OPTIONS)


def make_server(address: str, max_workers: int = 16) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers,
                                                    thread_name_prefix="rpc"),
                         options=_OPTIONS + [("grpc.so_reuseport", 0)])
    _check_bindable(address)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:   # grpcio >= 1.60 raises instead of returning 0
        port = 0
    if port == 0:   # in use (another process, or our previous life not gone yet) or not ours
        raise OSError(errno.EADDRINUSE, f"cannot listen on {address} (address in use or not available)")
    return server, port


def _check_bindable(address: str) -> None:
    """Bind a plain socket first (as gRPC does: SO_REUSEADDR), so that an address in use
    fails with one OSError line instead of gRPC's C-core error log and RuntimeError."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:   # gRPC would log a C-core line and say "in use"
        raise OSError(errno.EADDRNOTAVAIL, f"cannot listen on {address}: {e.strerror}") from None
    except (OSError, ValueError):
        return   # gRPC resolves it, and reports what it cannot
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(sockaddr)
        except OSError as e:
            raise OSError(e.errno, f"cannot listen on {address}: {e.strerror}") from None
