"""python -m grpc_client: the shared client CLI over gRPC (GRPC_TARGET, default grpc-server:50051)."""

from __future__ import annotations

from collections.abc import Callable

from msgsuite import cli
from msgsuite.auth import client_token
from msgsuite.client import Sender
from msgsuite.settings import integer, optional
from msgsuite.tls import TlsSettings

from .sender import GrpcSender


def sender_factory() -> Callable[[], Sender]:
    """Reads the client's settings once; the factory makes one sender per worker thread."""
    target, timeout = optional("GRPC_TARGET", "grpc-server:50051"), integer("CLIENT_TIMEOUT_SECONDS", 10)
    tls = TlsSettings.from_env()  # TLS=on: TLS, the server verified against the suite's CA
    root_certificates = tls.ca_pem() if tls.enabled else None
    token = client_token("GRPC_TOKEN")
    return lambda: GrpcSender(target, timeout, root_certificates, token=token)


if __name__ == "__main__":
    cli.main("grpc-client", sender_factory)
