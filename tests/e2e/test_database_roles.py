"""Each service's database role can do what its service needs and nothing else.

Every attempt connects from the host, through the published database port,
with the credentials the service itself holds (its password from the
`secrets` volume), and tries to get further than its service may.
"""

from __future__ import annotations

import uuid

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pytest

from harness.stack import Stack
from migrate.roles import ROLE_OF_SERVICE, ROLES

SERVICE_ROLES = {r.name: str(r.secret) for r in ROLES if r.name in ROLE_OF_SERVICE.values()}
WRITERS = ["rest_server", "grpc_server", "rabbitmq_server"]
INSUFFICIENT_PRIVILEGE = "42501"

# What no service role may do, whatever its service. Names are schema-qualified:
# a role without USAGE on public (the exporter's) would otherwise get "does not exist".
FORBIDDEN_TO_EVERY_ROLE = [
    "DELETE FROM public.messages",
    "UPDATE public.stream SET total = total + 1",
    "UPDATE public.messages SET message = 'cambiado'",
    "TRUNCATE public.messages",
    "DROP TABLE public.messages",
    "DROP FUNCTION public.store_messages(text, text[], text[])",
    "CREATE TABLE intruder (x int)",
    "CREATE TABLE public.intruder (x int)",
    "CREATE TEMPORARY TABLE intruder (x int)",
    "CREATE SCHEMA intruder",
    "CREATE FUNCTION public.intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "INSERT INTO public.messages (id, via, message) VALUES (1000000000, 'REST', 'colado')",
    "ALTER TABLE public.messages DROP CONSTRAINT messages_idempotency_key_key",
    "ALTER FUNCTION public.store_messages(text, text[], text[]) SECURITY INVOKER",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_ls_dir('.')",
    "COPY public.messages FROM '/etc/passwd'",
    "COPY (SELECT 1) TO '/tmp/intruder'",
    "SET ROLE suite_owner",
    "ALTER ROLE CURRENT_USER SUPERUSER",
]


def refusal(conn: psycopg2.extensions.connection, sql: str) -> str:
    """The SQLSTATE that refused the statement; fails the test if it ran."""
    with conn.cursor() as cursor:
        try:
            cursor.execute(sql)
        except psycopg2.Error as error:
            return str(error.pgcode)
    raise AssertionError(f"{conn.info.user} was allowed to run: {sql}")


@pytest.mark.parametrize("role", sorted(SERVICE_ROLES))
def test_a_service_role_is_refused_everything_its_service_does_not_need(healthy: Stack, role: str) -> None:
    total = healthy.total()
    with healthy.database(role, SERVICE_ROLES[role]) as conn:
        refused = {sql: refusal(conn, sql) for sql in FORBIDDEN_TO_EVERY_ROLE}
        if role not in WRITERS:
            refused["store_messages"] = refusal(
                conn, "SELECT * FROM public.store_messages('REST', ARRAY['desde el hub'], ARRAY[NULL])"
            )
        if role == "postgres_exporter":
            refused["SELECT messages"] = refusal(conn, "SELECT count(*) FROM public.messages")
            refused["SELECT stream"] = refusal(conn, "SELECT total FROM public.stream")
    expected = dict.fromkeys(refused, INSUFFICIENT_PRIVILEGE)
    if role == "postgres_exporter":
        # No schema it may use is on its search_path, so an unqualified name has nowhere to go.
        expected["CREATE TABLE intruder (x int)"] = "3F000"
    assert refused == expected
    assert healthy.total() == total, "nothing was stored or changed"
    assert healthy.query("SELECT to_regclass('intruder'), to_regnamespace('intruder')") == [(None, None)]


@pytest.mark.parametrize("role", WRITERS)
def test_a_server_role_stores_through_store_messages_and_reads_messages(healthy: Stack, role: str) -> None:
    key = f"roles-{uuid.uuid4()}"
    with healthy.database(role, SERVICE_ROLES[role]) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT id, repeated FROM store_messages('REST', ARRAY['por su rol'], ARRAY[%s])", (key,))
        ((stored_id, repeated),) = cursor.fetchall()
        cursor.execute("SELECT message, idempotency_key FROM messages WHERE id = %s", (stored_id,))
        assert cursor.fetchall() == [("por su rol", key)]
        cursor.execute("SELECT migration_id FROM _yoyo_migration ORDER BY migration_id DESC LIMIT 1")
        assert cursor.fetchall() == [("0004-stream-row-by-key",)]
        # The function's search_path is fixed: the caller's does not change which tables it writes.
        cursor.execute("SET search_path = pg_temp")
        cursor.execute("SELECT id FROM public.store_messages('REST', ARRAY['otra vez'], ARRAY[%s])", (key,))
        assert cursor.fetchall() == [(stored_id,)]
        assert refusal(conn, "SELECT total FROM public.stream") == INSUFFICIENT_PRIVILEGE, "writers read messages only"
    assert repeated is False
    assert healthy.query("SELECT total FROM stream")[0][0] >= stored_id


def test_the_hub_role_reads_messages_and_the_stream(healthy: Stack) -> None:
    with healthy.database("websocket_hub", SERVICE_ROLES["websocket_hub"]) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT total FROM stream")
        ((total,),) = cursor.fetchall()
        cursor.execute("SELECT count(*) FROM messages WHERE id <= %s", (total,))
        assert cursor.fetchall() == [(total,)]
        cursor.execute("LISTEN messages")  # PostgreSQL has no privilege for LISTEN: any role that connects may


def test_no_service_role_is_privileged_and_each_service_connects_as_its_own(healthy: Stack) -> None:
    rows = healthy.query(
        "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication, rolcanlogin"
        " FROM pg_roles WHERE rolname = ANY(%s) ORDER BY rolname",
        ([r.name for r in ROLES],),
    )
    assert rows == sorted((r.name, False, False, False, False, False, r.login) for r in ROLES)
    hashes = healthy.query(
        "SELECT rolname, left(rolpassword, 14) FROM pg_authid WHERE rolname = ANY(%s) ORDER BY rolname",
        ([r.name for r in ROLES],),
    )
    assert hashes == sorted((r.name, "SCRAM-SHA-256$" if r.login else None) for r in ROLES)
    # The owner is migrate's alone: no long-running service connects as it (or as the superuser).
    sessions = healthy.query(
        "SELECT DISTINCT application_name, usename FROM pg_stat_activity"
        " WHERE datname = 'suite' AND application_name = ANY(%s)",
        (list(ROLE_OF_SERVICE),),
    )
    assert sessions, "no service session found"
    assert [(app, user) for app, user in sessions if user != ROLE_OF_SERVICE[app]] == [], "a service as another role"
    assert "websocket-hub" in [app for app, _ in sessions], "the hub follows the table on a connection of its own"
    owned = healthy.query(
        "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c"
        " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'S')"
        " UNION SELECT pg_get_userbyid(p.proowner) FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace"
        " UNION SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public'"
    )
    assert owned == [("suite_owner",)]


def logs_in(stack: Stack, role: str, password: str) -> bool:
    try:
        psycopg2.connect(
            host="127.0.0.1", port=stack.port("database", 5432), dbname="suite", user=role, password=password
        ).close()
    except psycopg2.OperationalError as error:
        assert "password authentication failed" in str(error), error
        return False
    return True


def test_a_rotated_password_takes_effect_when_migrate_runs_again(healthy: Stack) -> None:
    """As the README says: remove the secret, the secrets one-shot makes a new one, migrate sets it."""
    role, secret = "postgres_exporter", SERVICE_ROLES["postgres_exporter"]  # no exporter runs on this stack
    old = healthy.secret(secret)
    healthy.compose("run", "--rm", "--no-deps", "-T", "--entrypoint", "rm", "secrets", f"/run/suite-secrets/{secret}")
    healthy.compose("run", "--rm", "--no-deps", "-T", "secrets")
    healthy.forget_secret(secret)
    new = healthy.secret(secret)
    assert new and new != old
    assert (logs_in(healthy, role, old), logs_in(healthy, role, new)) == (True, False), "not before migrate runs"
    healthy.compose("run", "--rm", "--no-deps", "-T", "migrate")
    assert (logs_in(healthy, role, old), logs_in(healthy, role, new)) == (False, True)
