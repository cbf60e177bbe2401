"""Sets up the roles as the superuser, then applies the pending migrations as the owner, one migrate run at a time."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg2
import psycopg2.extensions
from yoyo import get_backend, read_migrations

from msgsuite.backoff import Backoff
from msgsuite.settings import DatabaseSettings

from . import roles

log = logging.getLogger("migrate")

# Key of the PostgreSQL advisory lock that serialises migrate runs. Unlike
# yoyo's own lock (a row in yoyo_lock), it is released when the session ends,
# so a run that was killed never leaves the next one waiting.
ADVISORY_LOCK_KEY = 0x6D736773_75697465  # "msgsuite"


class MigrationFailed(RuntimeError):
    """Said in one line; the database keeps the migrations applied before it."""


def yoyo_url(settings: DatabaseSettings, application_name: str = "migrate") -> str:
    """The yoyo connection URL of the suite's database settings (psycopg2 driver)."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    credentials = f"{quote(settings.user, safe='')}:{quote(settings.password, safe='')}"
    # yoyo unquotes the user and password but not the path, so the database
    # name goes in the query, which it decodes and hands to psycopg2 as is.
    query = urlencode({"dbname": settings.name, "connect_timeout": 5, "application_name": application_name})
    return f"postgresql://{credentials}@{host}:{settings.port}/?{query}"


def connect_when_ready(settings: DatabaseSettings, wait_seconds: float) -> psycopg2.extensions.connection:
    """Retries the first connection: the database may still be starting (as after `run --no-deps`)."""
    deadline = time.monotonic() + wait_seconds
    delays = Backoff(cap=5).delays()
    while True:
        try:
            conn: psycopg2.extensions.connection = psycopg2.connect(**settings.connect_kwargs())
            conn.autocommit = True
            return conn
        except psycopg2.OperationalError as error:
            if time.monotonic() > deadline:
                raise MigrationFailed(
                    f"database {settings.host}:{settings.port} unreachable: {_first_line(error)}"
                ) from None
            delay = next(delays)
            log.info("waiting for the database (%s); retrying in %.1f s", _first_line(error), delay)
            time.sleep(delay)


@contextmanager
def exclusive(conn: psycopg2.extensions.connection, wait_seconds: float) -> Iterator[None]:
    """Holds the advisory lock for the block; waits for a concurrent run to finish first."""
    deadline = time.monotonic() + wait_seconds
    said = False
    with conn.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
            row = cursor.fetchone()
            if row is not None and row[0]:
                break
            if time.monotonic() > deadline:
                raise MigrationFailed(f"another migrate run held the lock for more than {wait_seconds:.0f} s")
            if not said:
                log.info("another migrate run is applying migrations; waiting for it")
                said = True
            time.sleep(1)
    try:
        yield
    finally:
        if not conn.closed:
            with conn.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))


def set_up_roles(conn: psycopg2.extensions.connection, database: str, passwords: Mapping[str, str | None]) -> None:
    """The roles, their passwords and the ownership of the schema, in one transaction of the superuser's."""
    try:
        with conn.cursor() as cursor:
            cursor.execute("BEGIN")
            try:
                roles.set_up(cursor, database, passwords)
            except psycopg2.Error:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
    except psycopg2.Error as error:
        raise MigrationFailed(f"setting up the database roles: {_first_line(error)}") from error


def apply_pending(
    settings: DatabaseSettings, directory: Path, wait_seconds: float, passwords: Mapping[str, str | None]
) -> list[str]:
    """Sets up the roles (as settings' superuser), then applies every migration of `directory` not applied yet,
    in order, as the owner role; returns their ids."""
    migrations = read_migrations(str(directory))
    if not migrations:
        raise MigrationFailed(f"no migrations found in {directory}")
    conn = connect_when_ready(settings, wait_seconds)
    try:
        with exclusive(conn, wait_seconds):
            set_up_roles(conn, settings.name, passwords)
            owner = replace(settings, user=roles.OWNER, password=str(passwords[roles.OWNER]))
            try:
                backend = get_backend(yoyo_url(owner))
            except psycopg2.Error as error:
                raise MigrationFailed(f"connecting as {roles.OWNER}: {_first_line(error)}") from error
            try:
                # We hold the advisory lock, so a yoyo lock row can only be one
                # that a killed run left behind.
                backend.break_lock()
                with backend.lock():
                    pending = backend.to_apply(migrations)
                    if pending:
                        log.info("pending: %s", ", ".join(m.id for m in pending))
                    backend.apply_migrations(pending)
                    left = backend.to_apply(migrations)
                    if left:
                        raise MigrationFailed(f"not applied: {', '.join(m.id for m in left)}")
                    return [migration.id for migration in pending]
            except psycopg2.Error as error:
                raise MigrationFailed(f"{_first_line(error)}") from error
            finally:
                backend.connection.close()
    finally:
        conn.close()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
