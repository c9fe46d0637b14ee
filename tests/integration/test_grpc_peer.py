"""The namenode's idea of a caller's host, from a real gRPC peer (not a made-up string).

grpc reports an IPv6 peer as "ipv6:%5B::1%5D:PORT", brackets quoted: taken as it
was, the host "%5B::1%5D" never matched a datanode's "[::1]", so an IPv6 client's
own replicas were never put first, nor its writes' first replica on its host."""

from __future__ import annotations

from concurrent import futures

import grpc

from dfs.namenode.service import _caller
from dfs.rpc.v1 import namenode_pb2 as pb


def _host_seen_by_a_server_on(listen: str, target: str) -> str:
    seen = []

    def echo(request, context):
        seen.append(_caller(pb.Caller(user="u"), context, need_host=True).host)
        return request

    handler = grpc.method_handlers_generic_handler(
        "t.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)})
    server = grpc.server(futures.ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(listen)
    server.start()
    try:
        with grpc.insecure_channel(target.format(port=port)) as ch:
            ch.unary_unary("/t.Echo/Echo")(b"x", timeout=10)
    finally:
        server.stop(None)
    return seen[0]


def test_an_ipv6_callers_host_is_its_address_in_brackets():
    assert _host_seen_by_a_server_on("[::1]:0", "[::1]:{port}") == "[::1]"


def test_an_ipv4_callers_host_is_its_address():
    assert _host_seen_by_a_server_on("127.0.0.1:0", "127.0.0.1:{port}") == "127.0.0.1"
