"""Which container holds which secret: the one list that compose, Swarm and Kubernetes follow.

The `secrets` one-shot keeps every secret in its own volume (`secrets`) and
copies into each holder's volume (`secrets-<holder>`, mounted read-only at
/run/suite-secrets in that container) only the secrets listed for it here.
A container therefore cannot read a password it does not use: a client never
sees the database's, a server sees its own database role's only.

    python -m msgsuite.secret_plan mkdirs ROOT   # a folder per holder (image build)
    python -m msgsuite.secret_plan holders       # the holders, one per line
"""

from __future__ import annotations

import sys
from pathlib import Path

# The database roles' passwords (db_<role>_password): each service has its own
# role's; migrate sets every role's password from its file (migrate/roles.py),
# and only it and the database hold the bootstrap superuser's (postgres_password).
DATABASE_ROLE_SECRETS = (
    "db_owner_password",
    "db_rest_server_password",
    "db_grpc_server_password",
    "db_rabbitmq_server_password",
    "db_websocket_hub_password",
    "db_postgres_exporter_password",
)

SECRETS_FOR: dict[str, tuple[str, ...]] = {
    "database": ("postgres_password",),
    "migrate": ("postgres_password", *DATABASE_ROLE_SECRETS),
    "rabbitmq": (
        "rabbitmq_password",
        "amqp_publisher_password",
        "amqp_consumer_password",
        "amqp_dead_letters_password",
    ),
    "grpc-server": ("db_grpc_server_password",),
    "rest-server": ("db_rest_server_password",),
    "rabbitmq-server": ("db_rabbitmq_server_password", "amqp_consumer_password"),
    "websocket-hub": ("db_websocket_hub_password",),
    "websocket-client": (),
    "grpc-client": (),
    "rest-client": (),
    "rabbitmq-client": ("amqp_publisher_password",),
    "postgres-exporter": ("db_postgres_exporter_password",),
    # `docker compose run --rm dead-letters list`: lists and re-sends dead letters (profile "tools").
    "dead-letters": ("amqp_dead_letters_password",),
}


def every_secret() -> list[str]:
    """Every secret some holder needs, each once, in a stable order."""
    return sorted({name for names in SECRETS_FOR.values() for name in names})


def main(argv: list[str]) -> int:
    if argv[:1] == ["holders"] and len(argv) == 1:
        print("\n".join(SECRETS_FOR))
        return 0
    if argv[:1] == ["mkdirs"] and len(argv) == 2:
        for holder in SECRETS_FOR:
            (Path(argv[1]) / holder).mkdir(parents=True, exist_ok=True)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
