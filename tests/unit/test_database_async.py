"""The event loop's database connection: which addresses it tries, and how a refused connect is reported."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from typing import Any

import psycopg2
import pytest

from msgsuite import database_async
from msgsuite.database import DatabaseFailure, DatabaseUnavailable
from msgsuite.database_async import AsyncConnection

from .fakes import NO_DATABASE


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("host", ["/var/run/postgresql", "db-1,db-2"])
def test_a_socket_directory_or_a_list_of_hosts_is_left_to_libpq(host: str) -> None:
    assert asyncio.run(database_async._addresses_of(host, 5432)) == [None]


def test_a_name_is_resolved_by_the_loop_each_address_once() -> None:
    addresses = asyncio.run(database_async._addresses_of("localhost", 5432))
    assert "127.0.0.1" in addresses or "::1" in addresses
    assert len(addresses) == len(set(addresses))


def test_a_name_that_does_not_resolve_is_unavailable() -> None:
    with pytest.raises(DatabaseUnavailable, match="could not resolve the database host"):
        asyncio.run(database_async._addresses_of("no-such-host.invalid", 5432))


class ScriptedConnects:
    """Stands in for _connect: refuses the addresses in `refused`, fails hard on `broken`, else connects."""

    def __init__(self, refused: set[str], broken: frozenset[str] = frozenset()) -> None:
        self.refused, self.broken = refused, broken
        self.tried: list[str | None] = []

    async def __call__(self, kwargs: dict[str, Any]) -> str:
        address = kwargs.get("hostaddr")
        self.tried.append(address)
        if address in self.broken:
            raise DatabaseFailure("password authentication failed")
        if address in self.refused:
            raise DatabaseUnavailable(f"connection to {address} refused")
        return f"connection to {address}"


def opened(monkeypatch: pytest.MonkeyPatch, addresses: list[str | None], connects: ScriptedConnects) -> object:
    async def resolved(host: str, port: int) -> list[str | None]:
        return addresses

    monkeypatch.setattr(database_async, "_addresses_of", resolved)
    monkeypatch.setattr(database_async, "_connect", connects)
    return asyncio.run(AsyncConnection(NO_DATABASE)._open())


def test_the_next_address_is_tried_when_one_does_not_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    connects = ScriptedConnects(refused={"::1"})
    assert opened(monkeypatch, ["::1", "127.0.0.1", "10.0.0.9"], connects) == "connection to 127.0.0.1"
    assert connects.tried == ["::1", "127.0.0.1"]


def test_when_no_address_answers_the_last_refusal_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    connects = ScriptedConnects(refused={"10.0.0.1", "10.0.0.2"})
    with pytest.raises(DatabaseUnavailable, match=r"10\.0\.0\.2 refused"):
        opened(monkeypatch, ["10.0.0.1", "10.0.0.2"], connects)
    assert connects.tried == ["10.0.0.1", "10.0.0.2"]


def test_an_error_that_is_not_unavailability_is_raised_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    connects = ScriptedConnects(refused=set(), broken=frozenset({"10.0.0.1"}))
    with pytest.raises(DatabaseFailure, match="authentication"):
        opened(monkeypatch, ["10.0.0.1", "10.0.0.2"], connects)
    assert connects.tried == ["10.0.0.1"]


def test_a_statement_with_no_server_to_reach_is_unavailable_and_keeps_no_connection() -> None:
    connection = AsyncConnection(replace(NO_DATABASE, host="127.0.0.1", port=closed_port()))

    async def attempt() -> None:
        with pytest.raises(DatabaseUnavailable):
            await connection.fetch_all("SELECT 1", ())

    asyncio.run(asyncio.wait_for(attempt(), 10))  # libpq refused at once, through the real asynchronous connect
    assert connection._conn is None


class UnansweredConnection:
    """A connection whose statement is sent and never answered (a frozen database, a disk that stalls)."""

    closed = 0

    def cursor(self) -> UnansweredConnection:
        return self

    def execute(self, statement: str, parameters: object) -> None:
        pass

    def close(self) -> None:
        self.closed = 1


def test_a_statement_unanswered_within_the_timeout_is_unavailable_and_drops_its_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def never_ready(conn: object) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(database_async, "_ready", never_ready)
    monkeypatch.setattr(database_async, "CANCEL_GRACE_SECONDS", 0.05)
    connection = AsyncConnection(replace(NO_DATABASE, statement_timeout=0.05))
    unanswered = UnansweredConnection()
    connection._conn = unanswered  # type: ignore[assignment]

    async def attempt() -> None:
        with pytest.raises(DatabaseUnavailable, match=r"no answer from the database within 0\.1 s"):
            await connection.fetch_all("SELECT 1", ())

    asyncio.run(asyncio.wait_for(attempt(), 10))
    assert unanswered.closed and connection._conn is None  # the next statement opens a new connection


def test_libpq_takes_the_tcp_settings_that_give_up_on_a_database_gone_from_the_network() -> None:
    kwargs = replace(NO_DATABASE, host="127.0.0.1", port=closed_port()).connect_kwargs()
    assert {"tcp_user_timeout", "keepalives", "keepalives_idle"} <= kwargs.keys()
    assert kwargs["options"] == "-c statement_timeout=5000"  # the database cancels what runs longer
    # An option libpq did not know would fail before connecting ("invalid connection option").
    with pytest.raises(psycopg2.OperationalError, match="refused"):
        psycopg2.connect(**kwargs)
