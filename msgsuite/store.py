"""Storing and reading messages: the only SQL the servers and the hub run."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg2.extensions

from . import metrics
from .database import ConnectionPool, DatabaseFailure, DatabaseUnavailable, MessageRefused
from .database_async import AsyncConnection
from .group_commit import GroupCommitter
from .messages import InvalidMessage, StoredMessage, Via, validate_batch
from .settings import DatabaseSettings

_COLUMNS = "id, via, message, created_at, idempotency_key"

# Stores validated texts with their keys, blocking until the records are back (the AMQP consumer's writer).
StoreFunction = Callable[[list[str], list[str | None]], list[StoredMessage]]

log = logging.getLogger("msgsuite.store")


_STORE_STATEMENT = (
    "SELECT id, via, message, created_at, idempotency_key, repeated FROM store_messages(%s, %s::text[], %s::text[])"
)


def store_messages(
    pool: ConnectionPool, via: Via, texts: Sequence[str], keys: Sequence[str | None]
) -> list[StoredMessage]:
    """Stores validated texts in one transaction, in order; one record per text.

    The transaction is the single statement (the pool's connections are in
    autocommit): PostgreSQL commits it before answering, so the hot counter
    row is locked only while the server itself works, never while this
    process waits for the GIL or the network. A text whose key was stored
    before comes back as the original record with repeated=True. Raises a
    DatabaseError (see database.py): on DatabaseUnavailable the outcome is
    unknown, and the idempotency key makes a retry safe; MessageRefused
    means nothing of this call was stored.
    """
    with _observed(via, texts, keys) as observation, pool.connection() as conn, conn.cursor() as cursor:
        cursor.execute(_STORE_STATEMENT, (via.value, list(texts), list(keys)))
        observation.rows = cursor.fetchall()
    return observation.records()


async def store_messages_async(
    connection: AsyncConnection, via: Via, texts: Sequence[str], keys: Sequence[str | None]
) -> list[StoredMessage]:
    """store_messages through the event loop's connection (database_async.py)."""
    with _observed(via, texts, keys) as observation:
        observation.rows = await connection.fetch_all(_STORE_STATEMENT, (via.value, list(texts), list(keys)))
    return observation.records()


@dataclass
class _Observation:
    via: Via
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def records(self) -> list[StoredMessage]:
        records = [_record(row[:5], repeated=row[5]) for row in self.rows]
        self._count(records)
        return records

    def _count(self, records: list[StoredMessage]) -> None:
        metrics.MESSAGES_STORED.labels(self.via.value).inc(sum(1 for record in records if not record.repeated))
        if log.isEnabledFor(logging.DEBUG):
            for record in records:
                log.debug(
                    "stored id=%d via=%s key=%s repeated=%s",
                    record.id,
                    self.via.value,
                    record.idempotency_key,
                    record.repeated,
                )


@contextmanager
def _observed(via: Via, texts: Sequence[str], keys: Sequence[str | None]) -> Iterator[_Observation]:
    """One store statement's metrics: its time and group size, or the kind of error it met."""
    if len(texts) != len(keys):
        raise ValueError("one key (or None) is needed per text")
    started = time.perf_counter()
    try:
        yield _Observation(via)
    except DatabaseUnavailable:
        metrics.DATABASE_UNAVAILABLE.labels(via.value).inc()
        raise
    except DatabaseFailure:
        metrics.DATABASE_FAILURES.labels(via.value).inc()
        raise
    metrics.STORE_SECONDS.labels(via.value).observe(time.perf_counter() - started)
    metrics.GROUP_MESSAGES.labels(via.value).observe(len(texts))


class Messages(Protocol):
    """What a server stores through: MessageStore, or no_storage.NothingStored for the benchmark's ceiling."""

    async def validate_and_store(self, texts: Sequence[object], keys: Sequence[str | None]) -> list[StoredMessage]: ...


class MessageStore:
    """How a server on an event loop stores what it received: validated, then group-committed (group_commit.py)."""

    def __init__(self, settings: DatabaseSettings, via: Via) -> None:
        self._via = via
        connection = AsyncConnection(settings)
        self._committer = GroupCommitter(lambda texts, keys: store_messages_async(connection, via, texts, keys))

    async def validate_and_store(self, texts: Sequence[object], keys: Sequence[str | None]) -> list[StoredMessage]:
        """One request's messages, all or none; raises InvalidMessage or a DatabaseError (see database.py)."""
        with _counting_refusals(self._via, len(texts)):
            return await self._committer.store(validate_batch(list(texts), list(keys)), keys)


@contextmanager
def _counting_refusals(via: Via, count: int) -> Iterator[None]:
    try:
        yield
    except InvalidMessage:
        metrics.MESSAGES_REFUSED.labels(via.value, "invalid").inc(count)
        raise
    except MessageRefused:
        metrics.MESSAGES_REFUSED.labels(via.value, "database").inc(count)
        raise


def messages_after(conn: psycopg2.extensions.connection, after: int, limit: int) -> list[StoredMessage]:
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT {_COLUMNS} FROM messages WHERE id > %s ORDER BY id LIMIT %s", (after, limit))
        rows = cursor.fetchall()
    return [_record(row) for row in rows]


def message_by_id(conn: psycopg2.extensions.connection, message_id: int) -> StoredMessage | None:
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT {_COLUMNS} FROM messages WHERE id = %s", (message_id,))
        row = cursor.fetchone()
    return _record(row) if row else None


def stream_state(conn: psycopg2.extensions.connection) -> tuple[str, int]:
    """The stream's epoch and its total so far."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT epoch::text, total FROM stream")
        row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the stream table has no row: the schema is damaged")
    return str(row[0]), int(row[1])


def stream_counts(conn: psycopg2.extensions.connection) -> tuple[str, int, dict[str, int]]:
    """The stream's epoch, its total and how many of those came through each protocol.

    One read of the stream row, so the counts and the total are one consistent
    snapshot: the counts are of ids 1..total. store_messages keeps them in the
    same UPDATE as the total (migration 0002), so this costs the same at any
    table size.
    """
    with conn.cursor() as cursor:
        cursor.execute("SELECT epoch::text, total, grpc_total, rest_total, rabbitmq_total FROM stream")
        row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the stream table has no row: the schema is damaged")
    epoch, total, grpc, rest, rabbitmq = row
    by_via = {Via.GRPC.value: int(grpc), Via.REST.value: int(rest), Via.RABBITMQ.value: int(rabbitmq)}
    return str(epoch), int(total), by_via


def _record(row: Sequence[Any], repeated: bool = False) -> StoredMessage:
    message_id, via, message, created_at, key = row
    return StoredMessage(
        id=message_id,
        via=Via(via),
        message=message,
        created_at=created_at,
        idempotency_key=key,
        repeated=repeated,
    )
