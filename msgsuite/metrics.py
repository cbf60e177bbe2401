"""Prometheus metrics: how each service makes and serves its own (names start with msgsuite_).

Each service defines the metrics it alone updates in its own package; the
ones every server shares (storing) are here. With METRICS=off (for the
benchmark's A/B of their cost) every metric is a no-op and /metrics answers
an empty exposition.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import prometheus_client
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from .settings import optional

ENABLED = optional("METRICS", "on") != "off"
# The text format every Prometheus 2.x parses; the library's default has moved on to 1.0.0.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# Seconds: a store transaction, a notification's way to the hub.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)


class Metric(Protocol):
    """What the services call; prometheus_client's metrics and the no-op both have it."""

    def labels(self, *values: str) -> Metric: ...
    def inc(self, amount: float = 1) -> None: ...
    def set(self, value: float) -> None: ...
    def observe(self, amount: float) -> None: ...


class _Off:
    def labels(self, *values: str) -> _Off:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass


def _made(kind: Any, name: str, documentation: str, labels: Sequence[str], **options: Any) -> Metric:
    if not ENABLED:
        return _Off()
    metric: Metric = kind(name, documentation, list(labels), **options)
    return metric


def counter(name: str, documentation: str, labels: Sequence[str] = ()) -> Metric:
    """A counter; Prometheus shows it as NAME_total."""
    return _made(prometheus_client.Counter, name, documentation, labels)


def gauge(name: str, documentation: str, labels: Sequence[str] = ()) -> Metric:
    return _made(prometheus_client.Gauge, name, documentation, labels)


def histogram(name: str, documentation: str, buckets: Sequence[float], labels: Sequence[str] = ()) -> Metric:
    return _made(prometheus_client.Histogram, name, documentation, labels, buckets=buckets)


def exposition() -> bytes:
    """What GET /metrics answers."""
    return prometheus_client.generate_latest() if ENABLED else b""


def serve(port: int) -> None:
    """/metrics on its own port, from a daemon thread (services without an HTTP server of their own)."""
    if ENABLED:
        prometheus_client.start_http_server(port)


# Storing, shared by the three servers.
MESSAGES_STORED = counter(
    "msgsuite_messages_stored", "Messages newly stored (a repeated idempotency key stores nothing)", ["via"]
)
STORE_SECONDS = histogram(
    "msgsuite_store_transaction_seconds", "Time of one store transaction", LATENCY_BUCKETS, ["via"]
)
GROUP_MESSAGES = histogram(
    "msgsuite_group_commit_messages", "Messages stored together in one transaction", SIZE_BUCKETS, ["via"]
)
MESSAGES_REFUSED = counter(
    "msgsuite_messages_refused",
    "Messages refused: reason=invalid (broke a message rule) or database (the database refused it)",
    ["via", "reason"],
)
DATABASE_UNAVAILABLE = counter(
    "msgsuite_database_unavailable", "Store attempts that found the database unavailable", ["via"]
)
DATABASE_FAILURES = counter(
    "msgsuite_database_failures", "Store attempts that failed with a database error of no known kind", ["via"]
)
REQUESTS_REFUSED = counter(
    "msgsuite_requests_refused",
    "Requests refused before storing anything: reason=unauthenticated (no valid token) or rate_limited",
    ["via", "reason"],
)
