from pathlib import Path

import pytest
from yoyo.connections import parse_uri
from yoyo.migrations import read_migrations

from migrate.__main__ import MigrateSettings
from migrate.roles import OWNER, role
from migrate.schema import yoyo_url
from msgsuite.settings import DatabaseSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "database" / "migrations"


def settings(**changes: object) -> DatabaseSettings:
    values: dict[str, object] = {
        "host": "database",
        "port": 5432,
        "name": "suite",
        "user": "suite",
        "password": "secret",
        "pool_size": 8,
        "application_name": "migrate",
    }
    return DatabaseSettings(**{**values, **changes})  # type: ignore[arg-type]


def connect_kwargs_of(url: str) -> dict[str, object]:
    """What yoyo's PostgreSQL backend hands to psycopg2.connect for this URL."""
    uri = parse_uri(url)
    return {
        "dbname": uri.database,
        "user": uri.username,
        "password": uri.password,
        "host": uri.hostname,
        "port": uri.port,
        **uri.args,
    }


def test_yoyo_url_carries_every_setting_through_yoyos_parser() -> None:
    kwargs = connect_kwargs_of(yoyo_url(settings()))
    assert kwargs == {
        "dbname": "suite",
        "user": "suite",
        "password": "secret",
        "host": "database",
        "port": 5432,
        "connect_timeout": "5",
        "application_name": "migrate",
    }


def test_yoyo_url_keeps_characters_that_mean_something_in_a_url() -> None:
    awkward = "p@ss:w/rd?#%&= ñ"
    kwargs = connect_kwargs_of(yoyo_url(settings(user="us@er", password=awkward, name="my db/x?y", port=6543)))
    assert (kwargs["user"], kwargs["password"], kwargs["dbname"], kwargs["port"]) == (
        "us@er",
        awkward,
        "my db/x?y",
        6543,
    )


def test_yoyo_url_brackets_an_ipv6_host() -> None:
    assert connect_kwargs_of(yoyo_url(settings(host="::1")))["host"] == "::1"


def test_migrations_are_plain_sql_read_in_file_name_order_starting_with_the_baseline() -> None:
    ids = [migration.id for migration in read_migrations(str(MIGRATIONS))]
    assert ids[0] == "0001-baseline"
    assert ids == sorted(ids)
    assert all(path.suffix in {".sql", ".md"} for path in MIGRATIONS.iterdir())


def test_migrate_sets_no_statement_timeout_where_the_services_set_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in {"POSTGRES_HOST": "db", "POSTGRES_DB": "suite", "POSTGRES_USER": "suite"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POSTGRES_PASSWORD", "secret")
    monkeypatch.setenv("DATABASE_STATEMENT_TIMEOUT_SECONDS", "5")
    (tmp_path / str(role(OWNER).secret)).write_text("owner-password")
    monkeypatch.setenv("ROLE_PASSWORDS_DIR", str(tmp_path))
    assert "options" not in MigrateSettings.from_env().database.connect_kwargs()  # a migration may run for minutes
    assert DatabaseSettings.from_env("rest-server").connect_kwargs()["options"] == "-c statement_timeout=5000"
