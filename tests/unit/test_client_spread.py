"""Clients spread their connections over every replica a name resolves to."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from suite.v1 import messages_pb2, messages_pb2_grpc

from grpc_client.sender import GrpcSender, dns_target
from rest_client import sender as rest_sender
from rest_client.sender import RestSender


def _replica(name: str) -> http.server.HTTPServer:
    class Answer(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            served.append(name)  # before answering: the client goes on as soon as it has the answer
            body = b'{"id": 1, "repeated": false, "replica": "%s"}' % name.encode()
            self.send_response(201)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


served: list[str] = []


@pytest.fixture
def two_rest_replicas(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    served.clear()
    replicas = [_replica("a"), _replica("b")]
    addresses = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", r.server_port)) for r in replicas]
    real = socket.getaddrinfo

    def resolve(host: str, port: object, *args: object, **kwargs: object) -> list[object]:
        return list(addresses) if host == "rest-server" else real(host, port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rest_sender.socket, "getaddrinfo", resolve)
    yield
    for replica in replicas:
        replica.shutdown()


def test_each_new_rest_connection_goes_to_the_next_replica(two_rest_replicas: None) -> None:
    for _ in range(4):
        sender = RestSender("http://rest-server:8000", timeout=5)
        sender.send("hola", "k")
        sender.close()
    assert sorted(served) == ["a", "a", "b", "b"]


class Counting(messages_pb2_grpc.MessageServiceServicer):
    def __init__(self) -> None:
        self.calls = 0

    def SendMessage(
        self, request: messages_pb2.SendMessageRequest, context: grpc.ServicerContext
    ) -> messages_pb2.SendMessageResponse:
        self.calls += 1
        return messages_pb2.SendMessageResponse(id=1, total=1, via="GRPC")


def test_grpc_calls_are_spread_round_robin_over_every_address() -> None:
    servicers, servers, ports = [], [], []
    for _ in range(2):
        servicer = Counting()
        server = grpc.server(futures.ThreadPoolExecutor(2))
        messages_pb2_grpc.add_MessageServiceServicer_to_server(servicer, server)
        ports.append(server.add_insecure_port("127.0.0.1:0"))
        server.start()
        servicers.append(servicer)
        servers.append(server)
    sender = GrpcSender(f"ipv4:127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}", timeout=5)
    try:
        # round_robin picks among the addresses it has connected to: until both
        # are, calls go to the first. Then it takes them strictly in turn.
        for _ in range(100):
            if all(servicer.calls for servicer in servicers):
                break
            sender.send("hola", "k")
        for servicer in servicers:
            servicer.calls = 0
        for _ in range(10):
            sender.send("hola", "k")
    finally:
        sender.close()
        for server in servers:
            server.stop(None)
    assert [servicer.calls for servicer in servicers] == [5, 5]


def test_a_host_and_port_becomes_a_dns_target_and_schemes_are_kept() -> None:
    assert dns_target("grpc-server:50051") == "dns:///grpc-server:50051"
    assert dns_target("ipv4:127.0.0.1:1,127.0.0.1:2") == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert dns_target("dns:///x:1") == "dns:///x:1"
