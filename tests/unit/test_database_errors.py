"""Database errors sorted by SQLSTATE, and the pool keeping only connections it can vouch for."""

from __future__ import annotations

import psycopg2
import pytest

from msgsuite import database
from msgsuite.database import (
    ConnectionPool,
    DatabaseFailure,
    DatabaseUnavailable,
    MessageRefused,
    classify,
)
from msgsuite.settings import DatabaseSettings

from .fakes import FakeConnection, pg_error

UNAVAILABLE = {
    "08006": "connection failure",
    "08001": "cannot connect now",
    "25006": "cannot execute INSERT in a read-only transaction",
    "40001": "could not serialize access",
    "40P01": "deadlock detected",
    "53100": "could not extend file: No space left on device",
    "53200": "out of memory",
    "53300": "sorry, too many clients already",
    "55P03": "could not obtain lock on row",
    "57P01": "terminating connection due to administrator command",
    "57014": "canceling statement due to statement timeout",
    "58030": "could not read block",
    "42501": "permission denied for table messages",
    "42P01": 'relation "messages" does not exist',
    "42883": "function store_messages does not exist",
}
REFUSED = {
    "22001": "value too long for type character varying(4096)",
    "22P02": "invalid input syntax for type integer",
    "22021": "invalid byte sequence for encoding UTF8",
    "23505": 'duplicate key value violates unique constraint "messages_pkey"',
    "23514": 'new row for relation "messages" violates check constraint "no_veneno"',
    "23502": 'null value in column "message" violates not-null constraint',
    "P0001": "this text is not allowed",
}
FAILURE = {
    "42601": 'syntax error at or near "SELEC"',
    "42703": 'column "mesage" does not exist',
    "XX000": "internal error",
    "0A000": "feature not supported",
}


@pytest.mark.parametrize(("code", "reason"), UNAVAILABLE.items(), ids=UNAVAILABLE.keys())
def test_an_outage_is_unavailable(code: str, reason: str) -> None:
    classified = classify(pg_error(code, reason))
    assert type(classified) is DatabaseUnavailable and classified.reason == reason


@pytest.mark.parametrize(("code", "reason"), REFUSED.items(), ids=REFUSED.keys())
def test_a_data_or_constraint_error_is_the_message_refused(code: str, reason: str) -> None:
    classified = classify(pg_error(code, reason))
    assert type(classified) is MessageRefused and classified.reason == reason


def test_a_duplicate_id_is_a_failure_not_the_messages_fault() -> None:
    reason = 'duplicate key value violates unique constraint "messages_pkey"'
    classified = classify(pg_error("23505", reason, primary=reason, constraint="messages_pkey"))
    assert type(classified) is DatabaseFailure and "counter is behind" in classified.reason
    duplicate_key = pg_error("23505", "dup", primary="dup", constraint="messages_idempotency_key_key")
    assert type(classify(duplicate_key)) is MessageRefused


@pytest.mark.parametrize(("code", "reason"), FAILURE.items(), ids=FAILURE.keys())
def test_anything_else_is_a_failure_naming_its_sqlstate(code: str, reason: str) -> None:
    classified = classify(pg_error(code, reason))
    assert type(classified) is DatabaseFailure and classified.reason == f"{reason} (SQLSTATE {code})"


def test_an_error_without_sqlstate_is_unavailable() -> None:
    # The driver lost or could not open the connection: no server answered with a code.
    assert type(classify(psycopg2.OperationalError("server closed the connection unexpectedly"))) is DatabaseUnavailable
    assert type(classify(psycopg2.InterfaceError("connection already closed"))) is DatabaseUnavailable


def test_an_interface_error_is_unavailable_whatever_its_code() -> None:
    error = type("FakeInterfaceError", (psycopg2.InterfaceError,), {"pgcode": "23505"})("connection already closed")
    assert type(classify(error)) is DatabaseUnavailable


def test_the_reason_is_the_primary_message_never_the_statement_or_the_row() -> None:
    text = (
        'new row for relation "messages" violates check constraint "no_veneno"\n'
        "DETAIL:  Failing row contains (7, REST, veneno secreto, ...).\n"
        "CONTEXT:  SQL function store_messages statement 1\n"
    )
    from_text = classify(pg_error("23514", text))
    assert from_text.reason == 'new row for relation "messages" violates check constraint "no_veneno"'
    from_diag = classify(pg_error("23514", text, primary="the primary message"))
    assert from_diag.reason == "the primary message"
    for classified in (from_text, from_diag):
        assert "veneno secreto" not in str(classified) and "store_messages" not in str(classified)


def test_an_error_without_text_is_named_by_its_type() -> None:
    assert classify(pg_error("23514", "")).reason == "FakeCheckViolation"


# The pool


class Connections:
    """psycopg2.connect for the pool: counts what it opens."""

    def __init__(self) -> None:
        self.opened: list[FakeConnection] = []
        self.failure: Exception | None = None

    def __call__(self, **kwargs: object) -> FakeConnection:
        if self.failure is not None:
            raise self.failure
        self.opened.append(FakeConnection())
        return self.opened[-1]


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> Connections:
    fake = Connections()
    monkeypatch.setattr(database.psycopg2, "connect", fake)
    return fake


@pytest.fixture
def pool() -> ConnectionPool:
    return ConnectionPool(
        DatabaseSettings("db", 5432, "messages", "suite", "secret", pool_size=1, application_name="test")
    )


def test_a_connection_is_opened_lazily_in_autocommit_and_kept_after_success(
    connections: Connections, pool: ConnectionPool
) -> None:
    assert connections.opened == []
    with pool.connection() as first:
        assert first.autocommit is True
    with pool.connection() as second:
        assert second is first
    assert len(connections.opened) == 1 and not first.closed


def test_a_refusal_keeps_the_connection(connections: Connections, pool: ConnectionPool) -> None:
    original = pg_error("23514", "violates check constraint")
    with pytest.raises(MessageRefused) as refused, pool.connection():
        raise original
    assert refused.value.__cause__ is original
    [kept] = connections.opened
    assert not kept.closed
    with pool.connection() as again:
        assert again is kept


def test_a_refusal_on_a_connection_the_server_closed_does_not_return_it(
    connections: Connections, pool: ConnectionPool
) -> None:
    with pytest.raises(MessageRefused), pool.connection() as conn:
        conn.close()
        raise pg_error("23514")
    with pool.connection() as fresh:
        assert fresh is not conn
    assert len(connections.opened) == 2


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (pg_error("57P01", "terminating connection"), DatabaseUnavailable),
        (pg_error(None, "server closed the connection"), DatabaseUnavailable),
        (pg_error("25006", "read-only transaction"), DatabaseUnavailable),
        (pg_error("42601", "syntax error"), DatabaseFailure),
        (RuntimeError("a bug in the caller"), RuntimeError),
        (KeyboardInterrupt(), KeyboardInterrupt),
    ],
    ids=["shutdown", "connection lost", "read-only", "failure", "other exception", "base exception"],
)
def test_any_other_error_closes_the_connection(
    connections: Connections, pool: ConnectionPool, error: BaseException, raised: type[BaseException]
) -> None:
    with pytest.raises(raised), pool.connection():
        raise error
    [closed] = connections.opened
    assert closed.closed
    with pool.connection() as fresh:  # the slot was given back (the pool holds one)
        assert fresh is not closed and not fresh.closed
    assert len(connections.opened) == 2


def test_a_failed_connect_is_unavailable_and_gives_its_slot_back(
    connections: Connections, pool: ConnectionPool
) -> None:
    connections.failure = pg_error(None, 'could not translate host name "db"')
    for _ in range(3):  # a pool of one: a leaked slot would block here
        with pytest.raises(DatabaseUnavailable, match="could not translate host name"), pool.connection():
            pass
    connections.failure = pg_error("53300", "sorry, too many clients already")
    with pytest.raises(DatabaseUnavailable, match="too many clients"), pool.connection():
        pass
    connections.failure = None
    with pool.connection() as conn:
        assert not conn.closed


def test_close_closes_the_idle_connections(connections: Connections) -> None:
    pool = ConnectionPool(
        DatabaseSettings("db", 5432, "messages", "suite", "secret", pool_size=2, application_name="test")
    )
    with pool.connection(), pool.connection():
        pass
    pool.close()
    assert len(connections.opened) == 2 and all(conn.closed for conn in connections.opened)
