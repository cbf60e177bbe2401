"""python -m rest_client: the shared client CLI over HTTP (REST_URL, default http://rest-server:8000)."""

from __future__ import annotations

from collections.abc import Callable

from msgsuite import cli
from msgsuite.auth import client_token
from msgsuite.client import Sender
from msgsuite.settings import integer, optional
from msgsuite.tls import TlsSettings, secure_url

from .sender import RestSender


def sender_factory() -> Callable[[], Sender]:
    """Reads the client's settings once; the factory makes one sender per worker thread."""
    tls = TlsSettings.from_env()  # TLS=on: https://, the server verified against the suite's CA
    base_url = secure_url(optional("REST_URL", "http://rest-server:8000"), tls)
    timeout = integer("CLIENT_TIMEOUT_SECONDS", 10)
    context = tls.client_context() if tls.enabled else None
    token = client_token("REST_TOKEN")
    return lambda: RestSender(base_url, timeout, context, token=token)


if __name__ == "__main__":
    cli.main("rest-client", sender_factory)
