"""python -m rest_client: the shared client CLI over HTTP (REST_URL, default http://rest-server:8000)."""

from __future__ import annotations

from collections.abc import Callable

from msgsuite import cli
from msgsuite.auth import client_token
from msgsuite.client import Sender
from msgsuite.settings import integer, optional

from .sender import RestSender


def sender_factory() -> Callable[[], Sender]:
    """Reads the client's settings once; the factory makes one sender per worker thread."""
    base_url, timeout = optional("REST_URL", "http://rest-server:8000"), integer("CLIENT_TIMEOUT_SECONDS", 10)
    token = client_token("REST_TOKEN")
    return lambda: RestSender(base_url, timeout, token)


if __name__ == "__main__":
    cli.main("rest-client", sender_factory)
