"""The schema version a server needs, and waiting for it at start.

The `migrate` one-shot applies database/migrations (yoyo records each in
_yoyo_migration). Compose starts the servers after it; Swarm and Kubernetes
start everything at once, so each server waits here until the newest
migration its code relies on is applied, instead of failing requests.
"""

from __future__ import annotations

import logging
import threading

from .backoff import Backoff
from .database import ConnectionPool, DatabaseError
from .settings import DatabaseSettings

# The newest migration this code relies on; raise it with each migration the
# code starts using (an older server keeps working on a newer schema).
REQUIRED_MIGRATION = "0003-least-privilege"


def schema_is_ready(pool: ConnectionPool, migration: str = REQUIRED_MIGRATION) -> bool:
    try:
        with pool.connection() as conn, conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM _yoyo_migration WHERE migration_id = %s", (migration,))
            return cursor.fetchone() is not None
    except DatabaseError:  # unreachable, or no migration table yet (42P01 counts as unavailable)
        return False


def wait_for_schema(settings: DatabaseSettings, log: logging.Logger, stopping: threading.Event | None = None) -> bool:
    """Returns True once the required migration is applied; False if stopping was set first."""
    stopping = stopping or threading.Event()
    pool = ConnectionPool(settings, size=1)
    delays = Backoff(first=0.5, cap=5).delays()
    waited = False
    try:
        while not schema_is_ready(pool):
            if not waited:
                log.info("waiting for schema migration %s (the migrate job applies it)", REQUIRED_MIGRATION)
                waited = True
            if stopping.wait(next(delays)):
                return False
        if waited:
            log.info("schema migration %s is applied", REQUIRED_MIGRATION)
        return True
    finally:
        pool.close()
