"""A database made by the schema of commit 154e394 upgrades in place, on a stack of its own.

fixtures/schema-154e394.sql is database/init/01-schema.sql of that commit,
the last one that created the schema from the postgres image's init scripts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from harness.stack import LONG_RUNNING, Stack, wait_for

from .checks import assert_ids_gap_free
from .conftest import BASE_PROJECT
from .send import post_message as post

OLD_DATABASE = ["-f", "docker-compose.yml", "-f", "tests/e2e/fixtures/compose-schema-154e394.yml"]
ROWS = "SELECT id, via, message, idempotency_key, created_at FROM messages ORDER BY id"


def notification(via: str, message: str, total: int) -> str:
    return f"Se ingresó un registro mediante {via} , con el mensaje {message}, total de mensajes {total}"


def schema_of(stack: Stack, database: str) -> list[str]:
    """pg_dump --schema-only without comments and the per-dump \\restrict key."""
    dump = stack.compose("exec", "-T", "database", "pg_dump", "--schema-only", "-U", "suite", "-d", database).stdout
    return [line for line in dump.splitlines() if line and not line.startswith(("--", "\\restrict", "\\unrestrict"))]


def execute(stack: Stack, sql: str) -> None:
    with stack.database() as conn, conn.cursor() as cursor:
        cursor.execute(sql)


@pytest.fixture
def empty_project(images: None) -> Iterator[Stack]:
    """A project with nothing started yet; removed (down -v) after the test."""
    stack = Stack(f"{BASE_PROJECT}-upgrade-{uuid.uuid4().hex[:6]}")
    try:
        yield stack
    finally:
        stack.down(volumes=True)


def test_a_database_of_the_old_schema_upgrades_in_place_and_its_stream_continues(empty_project: Stack) -> None:
    stack = empty_project
    stack.compose(*OLD_DATABASE, "up", "-d", "database")
    stack.wait_healthy(["database"])
    assert stack.query("SELECT to_regclass('messages') IS NOT NULL, to_regclass('_yoyo_migration') IS NULL") == [
        (True, True)
    ], "the old schema, without migrations"
    stored = stack.query("SELECT id, repeated FROM store_messages('REST', ARRAY['a','b'], ARRAY['k1','k2'])")
    stored += stack.query("SELECT id, repeated FROM store_messages('GRPC', ARRAY['viejo c'], ARRAY['k3'])")
    assert stored == [(1, False), (2, False), (3, False)]
    epoch, total = stack.query("SELECT epoch::text, total FROM stream")[0]
    old_rows = stack.query(ROWS)

    stack.up(*LONG_RUNNING)  # the new code on the same volumes: migrate runs before every server

    assert stack.wait_exited(["migrate"]) == {"migrate": 0}
    assert "applied 0001-baseline" in stack.compose("logs", "--no-color", "migrate").stdout
    owners = stack.query(
        "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " UNION SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'store_messages'"
    )
    assert owners == [("suite_owner",)], "what the superuser created belongs to the owner role now"
    assert stack.query("SELECT epoch::text, total FROM stream")[0] == (epoch, total)
    assert stack.query(ROWS) == old_rows
    assert post(stack, "nuevo tras la actualización") == total + 1
    # 0002 counted the old rows per protocol once; store_messages keeps the counts since.
    assert stack.query("SELECT total, grpc_total, rest_total, rabbitmq_total FROM stream") == [(total + 1, 1, 3, 0)]
    repeated = requests.post(
        f"{stack.rest_url}/messages", json={"message": "a"}, headers={"Idempotency-Key": "k1"}, timeout=30
    )
    assert (repeated.status_code, repeated.json()["id"]) == (200, 1), "an old idempotency key still answers"
    assert assert_ids_gap_free(stack) == total + 1
    # 0004 replaced store_messages: it keeps 0003's rights and fixed search_path, and reads the stream row by key.
    assert stack.query("SELECT prosecdef, proconfig FROM pg_proc WHERE proname = 'store_messages'") == [
        (True, ["search_path=pg_catalog, public, pg_temp", "enable_seqscan=off"])
    ]

    expected = [notification(via, message, id_) for id_, via, message, *_ in stack.query(ROWS)]
    wait_for(lambda: len(stack.notification_lines()) >= len(expected), what="the old and new lines in the client log")
    assert stack.notification_lines() == expected

    again = stack.compose("run", "--rm", "--no-deps", "-T", "migrate", check=False)
    assert again.returncode == 0, again.stderr
    assert "nothing to apply" in again.stdout + again.stderr

    # The baseline makes of an empty database the same schema as of the old one.
    execute(stack, "CREATE DATABASE fresh")
    fresh = stack.compose("run", "--rm", "--no-deps", "-T", "-e", "POSTGRES_DB=fresh", "migrate", check=False)
    assert fresh.returncode == 0, fresh.stderr
    assert schema_of(stack, "fresh") == schema_of(stack, "suite")


def test_migrate_fails_loudly_and_the_servers_wait_when_a_migration_cannot_apply(empty_project: Stack) -> None:
    """A database the baseline cannot upgrade (a stream table of another shape) stops the upgrade."""
    stack = empty_project
    stack.compose("up", "-d", "database")
    stack.wait_healthy(["database"])
    execute(stack, "CREATE TABLE stream (id int)")
    stack.compose("up", "-d", "rest-server", check=False)
    assert stack.wait_exited(["migrate"]) == {"migrate": 1}
    log = stack.compose("logs", "--no-color", "migrate").stdout
    assert "migration failed" in log and "Traceback" not in log
    assert "rest-server" not in stack.states(), "the server does not start on a schema it does not know"
    assert stack.query("SELECT to_regclass('messages') IS NULL")[0][0], "the failed migration changed nothing"
