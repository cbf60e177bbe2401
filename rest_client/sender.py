"""RestSender: messages over HTTP to the REST server.

It speaks HTTP/1.1 with the standard library on one kept-alive connection
per thread: under load, requests' per-call machinery cost more CPU than the
server spent storing the message.
"""

from __future__ import annotations

import http.client
import itertools
import json
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

from msgsuite.client import Receipt, Rejected, Unreachable

# 500 is not retried: the server answers it when the database refused the message itself.
RETRYABLE_STATUS = {429, 502, 503, 504}


class SpreadConnection(http.client.HTTPConnection):
    """Each new connection goes to the next address the host name resolves to, so
    several replicas behind one name (compose --scale, Swarm dnsrr, a headless
    Kubernetes Service) share the clients' connections."""

    _turn = itertools.count()

    def connect(self) -> None:
        infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        addresses = sorted({(str(info[4][0]), int(info[4][1])) for info in infos})
        address = addresses[next(self._turn) % len(addresses)]
        self.sock = socket.create_connection(address, self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class SpreadHTTPSConnection(http.client.HTTPSConnection, SpreadConnection):
    """The same over TLS: the certificate is still checked against the host name."""


class RestSender:
    def __init__(
        self, base_url: str, timeout: float, context: ssl.SSLContext | None = None, token: str | None = None
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"REST_URL must be http(s)://host[:port], not {base_url!r}")
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._path = parts.path.rstrip("/") + "/messages"
        self._timeout = timeout
        self._context = context  # for https: who verifies the server (None: the system's CAs)
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._connection: http.client.HTTPConnection | None = None

    def send(self, text: str, key: str) -> Receipt:
        body = self._post(self._path, {"message": text}, {"Idempotency-Key": key})
        return Receipt(id=body["id"], repeated=body["repeated"])

    def send_batch(self, texts: list[str], keys: list[str]) -> list[Receipt]:
        items = [{"message": text, "idempotency_key": key} for text, key in zip(texts, keys, strict=True)]
        body = self._post(self._path + "/batch", {"messages": items}, {})
        return [Receipt(id=record["id"], repeated=record["repeated"]) for record in body["messages"]]

    def _post(self, path: str, payload: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        # ASCII-only JSON: a lone surrogate travels as \\udXXX and the server,
        # not this client, refuses it.
        data = json.dumps(payload).encode("ascii")
        while True:
            reused = self._connection is not None
            try:
                connection = self._connect()
                connection.request("POST", path, data, {"Content-Type": "application/json", **self._auth, **headers})
                response = connection.getresponse()
                status, raw = response.status, response.read()
                retry_after = response.getheader("Retry-After")
                if response.will_close:
                    self.close()
                break
            except (OSError, http.client.HTTPException) as error:
                self.close()
                if reused:
                    continue  # the server closed an idle kept-alive connection: once more on a new one
                raise Unreachable(f"{type(error).__name__}: {error}") from None
        if status in (200, 201):
            record: dict[str, Any] = json.loads(raw)
            return record
        reason = f"HTTP {status}: {_detail(raw)}"
        if status in RETRYABLE_STATUS:
            raise Unreachable(reason, _seconds(retry_after))
        raise Rejected(reason)

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            if self._https:
                self._connection = SpreadHTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=self._context
                )
            else:
                self._connection = SpreadConnection(self._host, self._port, timeout=self._timeout)
        return self._connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def _seconds(retry_after: str | None) -> float | None:
    """A Retry-After of whole seconds (the form this suite's servers send); None otherwise."""
    return float(retry_after) if retry_after and retry_after.strip().isdigit() else None


def _detail(raw: bytes) -> str:
    try:
        return str(json.loads(raw).get("detail"))
    except (ValueError, AttributeError):
        return raw[:200].decode("utf-8", "replace") or "no reason given"
