"""Stand-ins for the database, shared by the in-process adapter tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import psycopg2
import psycopg2.errors

from msgsuite.database import MessageRefused
from msgsuite.messages import StoredMessage, Via
from msgsuite.settings import DatabaseSettings

CREATED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
# For a store whose statement is replaced by a fake: nothing connects to it.
NO_DATABASE = DatabaseSettings("database.invalid", 5432, "messages", "suite", "secret", 1, "test")


def pg_error(
    code: str | None, message: str = "something went wrong", primary: str | None = None, constraint: str | None = None
) -> psycopg2.Error:
    """A psycopg2 error as the driver raises it: its SQLSTATE class, pgcode and (optionally) diag.message_primary."""
    base: type[psycopg2.Error] = psycopg2.OperationalError
    if code is not None:
        try:
            base = psycopg2.errors.lookup(code)
        except KeyError:
            base = psycopg2.DatabaseError
    attributes: dict[str, Any] = {"pgcode": code}
    if primary is not None or constraint is not None:
        attributes["diag"] = type("Diag", (), {"message_primary": primary, "constraint_name": constraint})()
    error: psycopg2.Error = type(f"Fake{base.__name__}", (base,), attributes)(message)
    return error


def record(message_id: int, message: str = "", via: Via = Via.REST, key: str | None = None) -> StoredMessage:
    return StoredMessage(message_id, via, message or f"mensaje {message_id}", CREATED_AT, key)


class FakeDatabase:
    """The rows the read queries of msgsuite/store.py see: the messages table and the stream row.

    failures["FROM stream"] = [None, error] answers the first such statement and raises on the second.
    """

    def __init__(self, records: list[StoredMessage] | None = None, epoch: str = "e1") -> None:
        self.records = list(records or [])
        self.epoch = epoch
        self.statements: list[str] = []
        self.failures: dict[str, list[BaseException | None]] = {}

    def answer(self, sql: str, params: tuple[Any, ...] | None) -> list[tuple[Any, ...]]:
        self.statements.append(sql)
        for fragment, script in self.failures.items():
            if fragment in sql and script:
                failure = script.pop(0)
                if failure is not None:
                    raise failure
        if sql.startswith("LISTEN "):
            return []
        if "FROM stream" in sql:
            return [(self.epoch, max((r.id for r in self.records), default=0))]
        if "FROM messages WHERE id > " in sql:
            after, limit = params or (0, 0)
            return [_row(r) for r in self.records if r.id > after][:limit]
        if "FROM messages WHERE id = " in sql:
            (wanted,) = params or (0,)
            return [_row(r) for r in self.records if r.id == wanted]
        if sql.strip() == "SELECT 1":
            return [(1,)]
        raise AssertionError(f"unexpected statement {sql!r}")


def _row(stored: StoredMessage) -> tuple[Any, ...]:
    return (stored.id, stored.via.value, stored.message, stored.created_at, stored.idempotency_key)


class FakeCursor:
    def __init__(self, database: FakeDatabase) -> None:
        self._database = database
        self._rows: list[tuple[Any, ...]] = []

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, sql: str, params: tuple[Any, ...] | None = None) -> None:
        self._rows = self._database.answer(sql, params)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None


class FakeConnection:
    def __init__(self, database: FakeDatabase | None = None) -> None:
        self.database = database or FakeDatabase()
        self.closed = 0
        self.autocommit = False

    def cursor(self) -> FakeCursor:
        return FakeCursor(self.database)

    def close(self) -> None:
        self.closed = 1


class FakePool:
    """ConnectionPool's interface; `failure` (an exception) is raised instead of handing out a connection."""

    def __init__(self, database: FakeDatabase | None = None, failure: BaseException | None = None) -> None:
        self.database = database or FakeDatabase()
        self.failure = failure
        self.checkouts = 0

    @contextmanager
    def connection(self) -> Iterator[FakeConnection]:
        self.checkouts += 1
        if self.failure is not None:
            raise self.failure
        yield FakeConnection(self.database)


class FakeStoreFunction:
    """msgsuite.store.store_messages without a database: one call is one transaction, all or nothing.

    A text in `refused` makes the database refuse its transaction; `failure` is raised instead of storing.
    A key stored before answers its original record with repeated=True.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.records: list[StoredMessage] = []
        self.transactions: list[list[str]] = []
        self.refused: set[str] = set()
        self.failure: BaseException | None = None
        self._by_key: dict[str, StoredMessage] = {}

    def __call__(self, pool: object, via: Via, texts: Sequence[str], keys: Sequence[str | None]) -> list[StoredMessage]:
        self.transactions.append(list(texts))
        if self.failure is not None:
            raise self.failure
        for text in texts:
            if text in self.refused:
                raise MessageRefused(f'new row for relation "messages" violates check constraint "no_{text}"')
        stored = []
        for text, key in zip(texts, keys, strict=True):
            if key is not None and key in self._by_key:
                stored.append(replace(self._by_key[key], repeated=True))
                continue
            new = StoredMessage(len(self.records) + 1, via, text, CREATED_AT, key)
            self.records.append(new)
            if key is not None:
                self._by_key[key] = new
            stored.append(new)
        return stored

    async def on_the_loop(
        self, connection: object, via: Via, texts: Sequence[str], keys: Sequence[str | None]
    ) -> list[StoredMessage]:
        """msgsuite.store.store_messages_async without a database."""
        return self(connection, via, texts, keys)

    @property
    def stored_texts(self) -> list[str]:
        return [r.message for r in self.records]
