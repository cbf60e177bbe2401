"""The database roles of the suite, and setting them up as the bootstrap superuser before the migrations.

The superuser that created the database (POSTGRES_USER of the database
container) is used for nothing else: migrate creates the roles below
(idempotently), sets each one's password from its secret file on every run (a
rotated secret takes effect on the next run), makes `suite_owner` the owner of
schema `public` and of everything in it (an installation of an older release
created its tables as the superuser), and then applies the migrations as
`suite_owner`. What each role may do inside the schema is granted by the
migrations (0003-least-privilege.sql).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from msgsuite.settings import InvalidSetting

log = logging.getLogger("migrate")

OWNER = "suite_owner"
WRITERS = "message_writer"
READERS = "message_reader"

# Every role gets these explicitly on every run, so a role changed by hand is put back.
_NOT_PRIVILEGED = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT"


@dataclass(frozen=True)
class Role:
    name: str
    secret: str | None  # file name of its password; None: a group role that cannot log in
    member_of: tuple[str, ...] = ()

    @property
    def login(self) -> bool:
        return self.secret is not None


ROLES: tuple[Role, ...] = (
    Role(OWNER, "db_owner_password"),
    Role(WRITERS, None),
    Role(READERS, None),
    Role("rest_server", "db_rest_server_password", (WRITERS,)),
    Role("grpc_server", "db_grpc_server_password", (WRITERS,)),
    Role("rabbitmq_server", "db_rabbitmq_server_password", (WRITERS,)),
    Role("websocket_hub", "db_websocket_hub_password", (READERS,)),
    Role("postgres_exporter", "db_postgres_exporter_password", ("pg_monitor",)),
)

# Which container connects as which role (compose service names).
ROLE_OF_SERVICE: dict[str, str] = {
    "rest-server": "rest_server",
    "grpc-server": "grpc_server",
    "rabbitmq-server": "rabbitmq_server",
    "websocket-hub": "websocket_hub",
    "postgres-exporter": "postgres_exporter",
}

Statement = tuple[str, tuple[Any, ...]]


def role(name: str) -> Role:
    (found,) = [r for r in ROLES if r.name == name]
    return found


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier in double quotes (for names that do not come from ROLES, like the database's)."""
    if "\x00" in name:
        raise ValueError("an identifier cannot hold NUL")
    return '"' + name.replace('"', '""') + '"'


def read_passwords(directory: Path) -> dict[str, str | None]:
    """Each login role's password from DIRECTORY/<its secret>; None where the file is missing or empty.

    The owner's is required: migrate connects with it to apply the migrations.
    """
    passwords: dict[str, str | None] = {}
    for each in ROLES:
        if each.secret is None:
            continue
        path = directory / each.secret
        try:
            value = path.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            value = None
        except OSError as error:
            raise InvalidSetting(f"{path} cannot be read: {error.strerror}") from None
        passwords[each.name] = value
    if passwords[OWNER] is None:
        raise InvalidSetting(f"the password of {OWNER} is missing: {directory / str(role(OWNER).secret)}")
    return passwords


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5803 form), computed here.

    ALTER ROLE ... PASSWORD takes it in place of the password, so the password
    itself never reaches the server (nor a log or pg_stat_activity there), as
    psql's \\password does. PostgreSQL first normalises a password with
    SASLprep, which changes nothing in printable ASCII; others are sent as
    they are and hashed by the server (see password_for_sql).
    """
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def password_for_sql(password: str) -> str:
    """What ALTER ROLE ... PASSWORD gets: the verifier where SASLprep is surely a no-op, else the password."""
    if password.isascii() and password.isprintable():
        return scram_verifier(password)
    return password


def role_statements(each: Role, exists: bool, groups_now: Sequence[str], password: str | None) -> list[Statement]:
    """What brings one role to the plan: create it if missing, its attributes and password, its memberships."""
    name = quote_ident(each.name)
    statements: list[Statement] = []
    if not exists:
        statements.append((f"CREATE ROLE {name}", ()))
    if not each.login:
        statements.append((f"ALTER ROLE {name} WITH NOLOGIN {_NOT_PRIVILEGED} PASSWORD NULL", ()))
    elif password is None:
        # No secret for it: it keeps LOGIN but no password, so no password can get in.
        statements.append((f"ALTER ROLE {name} WITH LOGIN {_NOT_PRIVILEGED} PASSWORD NULL", ()))
    else:
        statements.append(
            (f"ALTER ROLE {name} WITH LOGIN {_NOT_PRIVILEGED} PASSWORD %s", (password_for_sql(password),))
        )
    for group in each.member_of:
        if group not in groups_now:
            statements.append((f"GRANT {quote_ident(group)} TO {name}", ()))
    for group in groups_now:
        if group not in each.member_of:
            statements.append((f"REVOKE {quote_ident(group)} FROM {name}", ()))
    return statements


def database_statements(database: str) -> list[Statement]:
    """Only the suite's roles may connect; nobody but the owner may create anything (no temporary tables either)."""
    db = quote_ident(database)
    connecting = ", ".join(quote_ident(name) for name in (OWNER, WRITERS, READERS, "postgres_exporter"))
    return [
        (f"REVOKE ALL ON DATABASE {db} FROM PUBLIC", ()),
        (f"GRANT CONNECT ON DATABASE {db} TO {connecting}", ()),
        (f"ALTER SCHEMA public OWNER TO {quote_ident(OWNER)}", ()),
        ("REVOKE ALL ON SCHEMA public FROM PUBLIC", ()),
        (f"GRANT USAGE ON SCHEMA public TO {quote_ident(WRITERS)}, {quote_ident(READERS)}", ()),
    ]


# Objects of schema public that the owner does not own yet, as the statements that hand them over.
# Sequences that belong to a column follow their table.
_NOT_OWNED = """
SELECT format('ALTER TABLE %s OWNER TO {owner}', c.oid::regclass)
FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace
  AND c.relkind IN ('r', 'p', 'v', 'S')
  AND c.relowner <> '{owner}'::regrole
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
UNION ALL
SELECT format('ALTER ROUTINE %s OWNER TO {owner}', p.oid::regprocedure)
FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace AND p.prokind IN ('f', 'p')
  AND p.proowner <> '{owner}'::regrole
"""


class Cursor(Protocol):
    def execute(self, query: str, vars: Sequence[Any] | None = ..., /) -> Any: ...
    def fetchall(self) -> list[tuple[Any, ...]]: ...


def set_up(cursor: Cursor, database: str, passwords: Mapping[str, str | None]) -> None:
    """Runs as the superuser, in one transaction of the caller's: roles, passwords, database and schema, ownership."""
    # The passwords must not reach the server's log, whatever log_statement says.
    cursor.execute("SET LOCAL log_statement = 'none'")
    cursor.execute("SET LOCAL log_min_duration_statement = -1")
    cursor.execute("SET LOCAL log_min_error_statement = panic")
    cursor.execute(
        "SELECT r.rolname, coalesce(array_agg(g.rolname) FILTER (WHERE g.rolname IS NOT NULL), '{}')"
        " FROM pg_roles r LEFT JOIN pg_auth_members m ON m.member = r.oid LEFT JOIN pg_roles g ON g.oid = m.roleid"
        " WHERE r.rolname = ANY(%s) GROUP BY r.rolname",
        ([r.name for r in ROLES],),
    )
    existing = {name: list(groups) for name, groups in cursor.fetchall()}
    created = [r.name for r in ROLES if r.name not in existing]
    for each in ROLES:
        for statement, params in role_statements(
            each, each.name in existing, existing.get(each.name, []), passwords.get(each.name)
        ):
            cursor.execute(statement, params or None)
    for statement, params in database_statements(database):
        cursor.execute(statement, params or None)
    cursor.execute(_NOT_OWNED.format(owner=OWNER))
    handovers = [row[0] for row in cursor.fetchall()]
    for statement in handovers:
        cursor.execute(statement)
    without = [name for name, password in passwords.items() if password is None]
    log.info(
        "roles: %s; passwords set for %d roles%s; %s",
        f"created {', '.join(created)}" if created else "all present",
        len(passwords) - len(without),
        f" (no secret, so no login, for {', '.join(without)})" if without else "",
        f"{len(handovers)} objects handed over to {OWNER}" if handovers else f"{OWNER} owns every object",
    )
