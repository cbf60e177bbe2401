"""The database roles migrate sets up, and that compose, Swarm and Kubernetes give each service its own."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate import roles
from migrate.roles import OWNER, ROLE_OF_SERVICE, ROLES, Role, read_passwords, role_statements
from msgsuite.secret_plan import DATABASE_ROLE_SECRETS, SECRETS_FOR
from msgsuite.settings import InvalidSetting

ROOT = Path(__file__).resolve().parents[2]
UNPRIVILEGED = ["NOSUPERUSER", "NOCREATEDB", "NOCREATEROLE", "NOREPLICATION", "NOBYPASSRLS"]


def sql_of(statements: Sequence[tuple[str, tuple[Any, ...]]]) -> list[str]:
    return [statement for statement, _ in statements]


def test_a_missing_role_is_created_then_given_its_attributes_password_and_group() -> None:
    server = roles.role("rest_server")
    statements = role_statements(server, exists=False, groups_now=[], password="s3cr'et")
    assert sql_of(statements) == [
        'CREATE ROLE "rest_server"',
        f'ALTER ROLE "rest_server" WITH LOGIN {" ".join(UNPRIVILEGED)} INHERIT PASSWORD %s',
        'GRANT "message_writer" TO "rest_server"',
    ]
    ((verifier,),) = [params for _, params in statements if params]
    assert verifier.startswith("SCRAM-SHA-256$4096:") and "s3cr'et" not in verifier, "only its SCRAM verifier goes"


def test_the_scram_verifier_answers_the_exchange_of_rfc_7677() -> None:
    """The example exchange of RFC 7677 (password "pencil"): the verifier's keys prove and verify it."""
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = roles.scram_verifier("pencil", salt=salt)
    method_iterations_salt, keys = verifier.split("$", 1)[1].split("$")
    assert method_iterations_salt == "4096:W22ZaJ0SNY7soEsUEjb6gQ=="
    stored_key, server_key = (base64.b64decode(key) for key in keys.split(":"))
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth_message = f"n=user,r=rOprNGfwEbeRWgbNEkqO,r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r={nonce}"
    server_signature = hmac.new(server_key, auth_message.encode(), "sha256").digest()
    assert base64.b64encode(server_signature).decode() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_signature = hmac.new(stored_key, auth_message.encode(), "sha256").digest()
    client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key


def test_a_password_that_saslprep_might_change_goes_as_it_is_for_the_server_to_hash() -> None:
    assert roles.password_for_sql("contraseña") == "contraseña"
    assert roles.password_for_sql("tab\there") == "tab\there"
    assert roles.password_for_sql("plain-ascii_1").startswith("SCRAM-SHA-256$")
    assert roles.password_for_sql("plain-ascii_1") != roles.password_for_sql("plain-ascii_1"), "a fresh salt each time"


def test_an_existing_role_is_put_back_to_the_plan_without_being_created_again() -> None:
    hub = roles.role("websocket_hub")
    statements = role_statements(hub, exists=True, groups_now=["message_reader", OWNER], password="x")
    assert not any(s.startswith("CREATE") for s in sql_of(statements))
    assert 'REVOKE "suite_owner" FROM "websocket_hub"' in sql_of(statements), "a membership granted by hand goes"
    assert not any(s.startswith("GRANT") for s in sql_of(statements)), "it is a reader already"


def test_a_role_without_a_secret_cannot_log_in_with_any_password() -> None:
    (exporter,) = sql_of(role_statements(roles.role("postgres_exporter"), True, ["pg_monitor"], None))
    assert exporter.endswith("PASSWORD NULL")
    (group,) = sql_of(role_statements(roles.role("message_writer"), True, [], None))
    assert " NOLOGIN " in group and group.endswith("PASSWORD NULL")


def test_every_role_is_unprivileged_and_only_the_groups_cannot_log_in() -> None:
    for each in ROLES:
        (attributes,) = [s for s in sql_of(role_statements(each, True, each.member_of, "p")) if "WITH" in s]
        assert all(f" {flag} " in attributes for flag in UNPRIVILEGED), each.name
        assert each.login == (each.name not in ("message_writer", "message_reader")), each.name


def test_identifiers_are_quoted() -> None:
    assert roles.quote_ident('my "db"') == '"my ""db"""'
    assert roles.database_statements('su"ite')[0] == ('REVOKE ALL ON DATABASE "su""ite" FROM PUBLIC', ())
    with pytest.raises(ValueError):
        roles.quote_ident("a\x00b")


def test_passwords_come_from_the_secret_files_and_the_owners_is_required(tmp_path: Path) -> None:
    with pytest.raises(InvalidSetting, match="suite_owner"):
        read_passwords(tmp_path)
    (tmp_path / "db_owner_password").write_text("owner-pass\n")
    (tmp_path / "db_rest_server_password").write_text("rest-pass")
    (tmp_path / "db_grpc_server_password").write_text("  \n")
    passwords = read_passwords(tmp_path)
    assert passwords[OWNER] == "owner-pass"
    assert passwords["rest_server"] == "rest-pass"
    assert passwords["grpc_server"] is None, "an empty file is no password"
    assert passwords["websocket_hub"] is None
    assert set(passwords) == {r.name for r in ROLES if r.login}


class RecordingCursor:
    """Answers set_up's two reads; records every statement."""

    def __init__(self, existing: list[tuple[str, list[str]]]) -> None:
        self.executed: list[tuple[str, Any]] = []
        self._answers = [existing, [("ALTER TABLE stream OWNER TO suite_owner",)]]
        self._last: list[tuple[Any, ...]] = []

    def execute(self, query: str, vars: Sequence[Any] | None = None, /) -> None:
        self.executed.append((query, vars))
        if query.lstrip().startswith("SELECT"):
            self._last = list(self._answers.pop(0))

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._last


def test_set_up_keeps_passwords_out_of_the_log_and_hands_the_schema_to_the_owner() -> None:
    cursor = RecordingCursor(existing=[(OWNER, [])])
    passwords = {r.name: f"pw-{r.name}" for r in ROLES if r.login}
    roles.set_up(cursor, "suite", passwords)
    statements = [query for query, _ in cursor.executed]
    assert statements[0] == "SET LOCAL log_statement = 'none'"
    assert not any(password in query for query in statements for password in passwords.values())
    assert 'CREATE ROLE "suite_owner"' not in statements and 'CREATE ROLE "rest_server"' in statements
    assert 'ALTER SCHEMA public OWNER TO "suite_owner"' in statements
    assert "REVOKE ALL ON SCHEMA public FROM PUBLIC" in statements
    assert statements[-1] == "ALTER TABLE stream OWNER TO suite_owner"


def compose_services() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]  # type: ignore[no-any-return]


def secret_of(role_name: str) -> str:
    return str(roles.role(role_name).secret)


def test_compose_connects_each_service_as_its_own_role_with_its_own_password() -> None:
    services = compose_services()
    for service, role_name in ROLE_OF_SERVICE.items():
        environment = services[service]["environment"]
        user, password_file = (
            (environment["DATA_SOURCE_USER"], environment["DATA_SOURCE_PASS_FILE"])
            if service == "postgres-exporter"
            else (environment["POSTGRES_USER"], environment["POSTGRES_PASSWORD_FILE"])
        )
        assert (user, password_file) == (role_name, f"/run/suite-secrets/{secret_of(role_name)}"), service
        database_secrets = [s for s in SECRETS_FOR[service] if s.startswith(("db_", "postgres_"))]
        assert database_secrets == [secret_of(role_name)], service
    migrate = services["migrate"]["environment"]
    assert migrate["POSTGRES_PASSWORD_FILE"] == "/run/suite-secrets/postgres_password"


def test_migrate_holds_every_role_password_and_the_plan_names_the_same_files() -> None:
    role_secrets = sorted(r.secret for r in ROLES if r.secret is not None)
    assert sorted(DATABASE_ROLE_SECRETS) == role_secrets
    passwords = [name for name in SECRETS_FOR["migrate"] if name.endswith("_password")]
    assert sorted(passwords) == sorted(["postgres_password", *role_secrets])
    holders = [holder for holder, names in SECRETS_FOR.items() if "postgres_password" in names]
    assert sorted(holders) == ["database", "migrate"], "only they hold the superuser's password"


def test_the_swarm_stack_connects_each_service_as_its_own_role() -> None:
    stack = yaml.safe_load((ROOT / "deploy/swarm/stack.yml").read_text(encoding="utf-8"))["services"]
    for service, role_name in ROLE_OF_SERVICE.items():
        if service not in stack:  # no postgres-exporter in the stack
            continue
        environment = stack[service]["environment"]
        expected = (role_name, f"/run/secrets/{secret_of(role_name)}")
        assert (environment["POSTGRES_USER"], environment["POSTGRES_PASSWORD_FILE"]) == expected, service
    assert stack["migrate"]["environment"]["ROLE_PASSWORDS_DIR"] == "/run/secrets"


def test_role_names_are_plain_identifiers() -> None:
    for each in ROLES:
        assert each.name.isidentifier() and each.name.islower(), each.name
        assert all(isinstance(group, str) for group in each.member_of)
    assert Role("x", None).login is False
