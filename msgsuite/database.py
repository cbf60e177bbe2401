"""A small pool of PostgreSQL connections, and what a database error means for the caller.

Every error the database raises is sorted by its SQLSTATE class into one of three:

- DatabaseUnavailable: nothing is wrong with the message; the database cannot
  store now (connection lost, shutdown, read-only, disk full, too many
  connections, deadlock, statement timeout, missing privileges or schema).
  Answered 503 / UNAVAILABLE; clients retry with the same key.
- MessageRefused: the database refused the data itself (a data exception,
  a constraint, a trigger that raised). Sending it again cannot help.
- DatabaseFailure: anything else; logged with its traceback by whoever answers.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import psycopg2.extensions

from .settings import DatabaseSettings

log = logging.getLogger(__name__)


class DatabaseError(RuntimeError):
    """A classified database error; `reason` is the database's own words, never SQL text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DatabaseUnavailable(DatabaseError):
    """The database cannot store now; the outcome of the attempt is unknown and a retry with the same key is safe."""


class MessageRefused(DatabaseError):
    """The database refused a message because of its content (a data or constraint error)."""


class DatabaseFailure(DatabaseError):
    """A database error that is neither the message's fault nor a known outage."""


# SQLSTATE classes (the first two characters) and single codes.
_UNAVAILABLE_CLASSES = {
    "08",  # connection exception
    "25",  # invalid transaction state, e.g. 25006 read-only transaction
    "40",  # transaction rollback: serialization failure, deadlock
    "53",  # insufficient resources: disk full, out of memory, too many connections
    "55",  # object not in prerequisite state, e.g. lock not available
    "57",  # operator intervention: shutdown, statement timeout (57014)
    "58",  # system error: I/O
    "HV",  # foreign data wrapper
}
_UNAVAILABLE_CODES = {
    "42501",  # insufficient privilege
    "42P01",  # undefined table: the schema is not (yet) in place
    "42883",  # undefined function: likewise
}
_REFUSED_CLASSES = {"22", "23"}  # data exception, integrity constraint violation
_REFUSED_CODES = {"P0001"}  # a trigger or rule that raised an exception about the row


def classify(error: psycopg2.Error) -> DatabaseError:
    """The kind of a psycopg2 error, with the database's reason in words."""
    code = error.pgcode
    reason = _reason(error)
    if code is None or isinstance(error, psycopg2.InterfaceError):
        # No SQLSTATE: the client library lost or could not open the connection.
        return DatabaseUnavailable(reason)
    if code in _UNAVAILABLE_CODES or code[:2] in _UNAVAILABLE_CLASSES:
        return DatabaseUnavailable(reason)
    if code == "23505" and _constraint(error) == "messages_pkey":
        # Not the message's fault: the counter row is behind the stored ids
        # (a manual insert, a bad restore). Every message would meet it.
        return DatabaseFailure(f"{reason}: the stream counter is behind the stored ids (SQLSTATE {code})")
    if code in _REFUSED_CODES or code[:2] in _REFUSED_CLASSES:
        return MessageRefused(reason)
    return DatabaseFailure(f"{reason} (SQLSTATE {code})")


class ConnectionPool:
    """Hands out connections; opens them lazily, so a service starts before its database.

    Errors leave as DatabaseError (see classify). A connection is kept only
    after success or after the database refused a message (the statement was
    rolled back and the session is fine); after any other error it is closed.
    """

    def __init__(self, settings: DatabaseSettings, size: int | None = None) -> None:
        self._settings = settings
        self._idle: queue.LifoQueue[psycopg2.extensions.connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size or settings.pool_size)

    def _open(self) -> psycopg2.extensions.connection:
        try:
            conn: psycopg2.extensions.connection = psycopg2.connect(**self._settings.connect_kwargs())
        except psycopg2.Error as error:
            raise classify(error) from error
        # Each statement is its own transaction, committed before its result
        # returns: the store function's counter-row lock is never held across
        # a round trip to this process (see store.py).
        conn.autocommit = True
        return conn

    @contextmanager
    def connection(self) -> Iterator[psycopg2.extensions.connection]:
        """An autocommit connection: each statement commits on its own."""
        with self._slots:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._open()
            try:
                yield conn
            except psycopg2.Error as error:
                classified = classify(error)
                if not isinstance(classified, MessageRefused):
                    conn.close()
                elif not conn.closed:
                    self._idle.put(conn)
                raise classified from error
            except BaseException:
                conn.close()  # whatever happened, this session cannot be vouched for
                raise
            if not conn.closed:
                self._idle.put(conn)

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _constraint(error: psycopg2.Error) -> str | None:
    diag = getattr(error, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return str(name) if name else None


def _reason(error: psycopg2.Error) -> str:
    """The primary message, without the statement, its context or the detail lines that may quote data."""
    diag = getattr(error, "diag", None)
    primary = diag.message_primary if diag is not None else None
    if primary:
        return str(primary)
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
