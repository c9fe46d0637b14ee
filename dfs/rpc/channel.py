"""Every gRPC channel and server is built here (TLS and auth will plug in here).

Control messages are small; block data never travels over gRPC (see
docs/transport.md), so the default message limits are kept.
"""

from __future__ import annotations

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
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    return server, port
