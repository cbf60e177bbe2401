"""python -m migrate: applies the pending schema migrations, then exits.

Run by the one-shot compose service `migrate`; the servers start only once it
has exited 0. First, as the bootstrap superuser (POSTGRES_USER), it creates the
suite's roles and sets their passwords (migrate/roles.py); then it applies the
migrations as the owner role `suite_owner`. Exits 1 when a migration fails (the
database keeps the ones applied before it; each migration is one transaction)
and 2 on a missing setting. Settings: the database ones every service reads
(POSTGRES_HOST, POSTGRES_DB, POSTGRES_USER, POSTGRES_PASSWORD or
POSTGRES_PASSWORD_FILE: the superuser's), ROLE_PASSWORDS_DIR (default
/run/suite-secrets: the roles' password files, db_<role>_password),
MIGRATIONS_DIR (default /app/database/migrations) and MIGRATE_WAIT_SECONDS
(default 120: how long to wait for the database and for a concurrent run).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

from msgsuite import logs
from msgsuite.settings import DatabaseSettings, integer, load_or_exit, optional

from .roles import read_passwords
from .schema import MigrationFailed, apply_pending


@dataclass(frozen=True)
class MigrateSettings:
    database: DatabaseSettings
    migrations: Path
    wait_seconds: int  # for the database, and for a concurrent run holding the lock
    passwords: dict[str, str | None]  # per login role; None: it has no secret and cannot log in

    @classmethod
    def from_env(cls) -> MigrateSettings:
        return cls(
            replace(DatabaseSettings.from_env("migrate"), statement_timeout=None),  # a migration may run for minutes
            Path(optional("MIGRATIONS_DIR", "/app/database/migrations")),
            integer("MIGRATE_WAIT_SECONDS", 120),
            read_passwords(Path(optional("ROLE_PASSWORDS_DIR", "/run/suite-secrets"))),
        )


def main() -> int:
    log = logs.configure("migrate")
    loaded = load_or_exit(log, MigrateSettings.from_env)
    settings, directory, wait_seconds = loaded.database, loaded.migrations, loaded.wait_seconds
    log.info("database %s:%d/%s, migrations in %s", settings.host, settings.port, settings.name, directory)
    try:
        applied = apply_pending(settings, directory, wait_seconds, loaded.passwords)
    except MigrationFailed as error:
        log.error("migration failed: %s", error)
        return 1
    if applied:
        log.info("schema up to date: applied %s", ", ".join(applied))
    else:
        log.info("schema up to date: nothing to apply")
    return 0


if __name__ == "__main__":
    sys.exit(main())
