"""One PostgreSQL connection driven by the running event loop: no thread between a request and its statement.

psycopg2's asynchronous connections send a statement and return; the loop
watches the socket and polls the connection until the answer is in. They
are always in autocommit, which is what the store needs (its statement is
its transaction, see store.py). Errors leave classified, as from the
pool of blocking connections (database.py), and the connection is kept on the same terms:
after success or a refusal of the message, else closed and opened afresh
by the next statement.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from typing import Any

import psycopg2
import psycopg2.extensions

from .database import DatabaseUnavailable, MessageRefused, classify
from .settings import DatabaseSettings

CONNECT_TIMEOUT_SECONDS = 5.0  # libpq's connect_timeout does not apply to an asynchronous connect
# Past the database's own statement_timeout, how long to wait for its cancellation to arrive.
CANCEL_GRACE_SECONDS = 1.0


class AsyncConnection:
    """Runs one statement at a time; the caller awaits each (the group-commit writer is its only user)."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self._settings = settings
        self._conn: psycopg2.extensions.connection | None = None

    async def fetch_all(self, statement: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The statement's rows; raises a DatabaseError (see database.py).

        A statement that runs past settings.statement_timeout is cancelled by
        the database (DatabaseUnavailable, nothing stored). No answer even
        CANCEL_GRACE_SECONDS after that is DatabaseUnavailable too, but the
        connection is dropped and the statement may still commit when the
        database wakes (an idempotency key makes the retry safe).
        """
        conn = self._conn or await self._open()
        limit = self._settings.statement_timeout
        answer_within = None if limit is None else limit + CANCEL_GRACE_SECONDS
        try:
            cursor = conn.cursor()
            cursor.execute(statement, parameters)
            async with asyncio.timeout(answer_within):
                await _ready(conn)
            rows: list[tuple[Any, ...]] = cursor.fetchall()
        except psycopg2.Error as error:
            classified = classify(error)
            if not isinstance(classified, MessageRefused) or conn.closed:
                self.close()
            raise classified from error
        except TimeoutError as error:
            # Not even the database's own cancellation came back: frozen, or stuck on its disk. The
            # outcome is unknown, as after a dropped connection.
            self.close()
            raise DatabaseUnavailable(f"no answer from the database within {answer_within:g} s") from error
        except BaseException:
            self.close()  # cancelled or broken mid-statement: the session cannot be vouched for
            raise
        return rows

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _open(self) -> psycopg2.extensions.connection:
        """A new connection to the first of the host's addresses that answers, as libpq tries them."""
        kwargs = self._settings.connect_kwargs()
        unavailable: DatabaseUnavailable | None = None
        for address in await _addresses_of(kwargs["host"], kwargs["port"]):
            try:
                self._conn = await _connect({**kwargs, "hostaddr": address} if address else kwargs)
                return self._conn
            except DatabaseUnavailable as error:
                unavailable = error
        assert unavailable is not None, "_addresses_of returns at least one address"
        raise unavailable


async def _connect(kwargs: dict[str, Any]) -> psycopg2.extensions.connection:
    try:
        conn: psycopg2.extensions.connection = psycopg2.connect(**kwargs, async_=True)
        try:
            await asyncio.wait_for(_ready(conn), CONNECT_TIMEOUT_SECONDS)
        except BaseException:
            conn.close()
            raise
    except psycopg2.Error as error:
        raise classify(error) from error
    except TimeoutError as error:
        raise DatabaseUnavailable(f"no connection to the database within {CONNECT_TIMEOUT_SECONDS:g} s") from error
    return conn


async def _addresses_of(host: str, port: int) -> list[str | None]:
    """The host's addresses, each once, in the resolver's order; [None] when libpq must take the host as given.

    libpq would resolve a name with a blocking call inside the loop; an address in hostaddr skips that,
    and host still names the server for TLS verification. A socket directory (/…) needs no lookup, and a
    list of hosts (a,b) is left to libpq whole.
    """
    if host.startswith("/") or "," in host:
        return [None]
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise DatabaseUnavailable(f"could not resolve the database host {host}: {error}") from error
    addresses: list[str | None] = list(dict.fromkeys(str(entry[4][0]) for entry in found))
    if not addresses:
        raise DatabaseUnavailable(f"the database host {host} has no address")
    return addresses


async def _ready(conn: psycopg2.extensions.connection) -> None:
    """Polls the connection until its connect or statement is complete; raises what the database answered."""
    loop = asyncio.get_running_loop()
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        if state == psycopg2.extensions.POLL_READ:
            watch, unwatch = loop.add_reader, loop.remove_reader
        elif state == psycopg2.extensions.POLL_WRITE:
            watch, unwatch = loop.add_writer, loop.remove_writer
        else:
            raise psycopg2.OperationalError(f"unexpected poll state {state}")
        ready = loop.create_future()
        fd = conn.fileno()
        watch(fd, _set_done, ready)
        try:
            await ready
        finally:
            unwatch(fd)


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
