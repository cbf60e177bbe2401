"""python -m grpc_client: the shared client CLI over gRPC (GRPC_TARGET, default grpc-server:50051)."""

from __future__ import annotations

from collections.abc import Callable

from msgsuite import cli
from msgsuite.auth import client_token
from msgsuite.client import Sender
from msgsuite.settings import integer, optional

from .sender import GrpcSender


def sender_factory() -> Callable[[], Sender]:
    """Reads the client's settings once; the factory makes one sender per worker thread."""
    target, timeout = optional("GRPC_TARGET", "grpc-server:50051"), integer("CLIENT_TIMEOUT_SECONDS", 10)
    token = client_token("GRPC_TOKEN")
    return lambda: GrpcSender(target, timeout, token)


if __name__ == "__main__":
    cli.main("grpc-client", sender_factory)
