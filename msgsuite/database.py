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
            conn = psycopg2.connect(**self._settings.connect_kwargs())
        except psycopg2.OperationalError as error:
            raise DatabaseUnavailable(_first_line(error)) from error
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
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as error:
                conn.close()
                raise DatabaseUnavailable(_first_line(error)) from error
            if not conn.closed:
                self._idle.put(conn)

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
