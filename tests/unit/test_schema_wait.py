"""A server waits at start until the migration its code needs is applied."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from msgsuite import schema
from msgsuite.database import DatabaseUnavailable
from msgsuite.settings import DatabaseSettings

SETTINGS = DatabaseSettings("database", 5432, "suite", "suite", "secret", 1, "test")


class Cursor:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str, params: tuple[str]) -> None:
        self._pool.asked.append(params[0])

    def fetchone(self) -> tuple[int] | None:
        return (1,) if self._pool.applied else None


class Pool:
    """Unreachable twice, then without the migration twice, then with it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.attempts = 0
        self.asked: list[str] = []
        self.applied = False
        self.closed = False
        pools.append(self)

    @contextmanager
    def connection(self) -> Iterator[Pool]:
        self.attempts += 1
        if self.attempts <= 2:
            raise DatabaseUnavailable('relation "_yoyo_migration" does not exist')
        self.applied = self.attempts >= 5
        yield self

    def cursor(self) -> Cursor:
        return Cursor(self)

    def close(self) -> None:
        self.closed = True


pools: list[Pool] = []


@pytest.fixture(autouse=True)
def fake_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    pools.clear()
    monkeypatch.setattr(schema, "ConnectionPool", Pool)
    monkeypatch.setattr(
        schema, "Backoff", lambda **kwargs: type("NoWait", (), {"delays": lambda self: iter(lambda: 0.0, None)})()
    )


def test_waits_through_an_unreachable_database_and_a_missing_migration(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    assert schema.wait_for_schema(SETTINGS, logging.getLogger("test")) is True
    [pool] = pools
    assert pool.attempts == 5 and set(pool.asked) == {schema.REQUIRED_MIGRATION} and pool.closed
    assert "waiting for schema migration" in caplog.text and "is applied" in caplog.text


def test_a_stop_while_waiting_returns_false() -> None:
    stopping = threading.Event()
    stopping.set()
    assert schema.wait_for_schema(SETTINGS, logging.getLogger("test"), stopping) is False
    assert pools[0].closed
