"""A small pool of PostgreSQL connections that replaces broken ones."""
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


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached now; the caller may retry later."""


class ConnectionPool:
    """Hands out connections; opens them lazily, so a service starts before its database.

    A connection that fails with a connection-level error is closed and not
    returned to the pool, and the error surfaces as DatabaseUnavailable.
    """

    def __init__(self, settings: DatabaseSettings, size: int | None = None) -> None:
        self._settings = settings
        self._idle: queue.LifoQueue[psycopg2.extensions.connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size or settings.pool_size)

    def _open(self) -> psycopg2.extensions.connection:
        try:
            return psycopg2.connect(**self._settings.connect_kwargs())
        except psycopg2.OperationalError as error:
            raise DatabaseUnavailable(_first_line(error)) from error

    @contextmanager
    def connection(self) -> Iterator[psycopg2.extensions.connection]:
        """A connection with no transaction open; the caller commits what it writes."""
        with self._slots:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._open()
            try:
                yield conn
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as error:
                conn.close()
                raise DatabaseUnavailable(_first_line(error)) from error
            except BaseException:
                _discard_transaction(conn)
                raise
            else:
                _discard_transaction(conn)
            if conn.closed:
                return
            self._idle.put(conn)

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _discard_transaction(conn: psycopg2.extensions.connection) -> None:
    if conn.closed:
        return
    try:
        if conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            conn.rollback()
    except psycopg2.Error:
        conn.close()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
