"""Which container holds which secret: the one list that compose, Swarm and Kubernetes follow.

The `secrets` one-shot keeps every secret in its own volume (`secrets`) and
copies into each holder's volume (`secrets-<holder>`, mounted read-only at
/run/suite-secrets in that container) only the secrets listed for it here.
A container therefore cannot read a password it does not use: a client never
sees the database's, a server sees its own database role's only.

TLS (msgsuite/certificates.py): every server of TLS_SERVERS holds its own
certificate and key (`<server>.crt`, `<server>.key`); every container that
connects to one of them holds the private CA's certificate (`ca.crt`). The
CA's key stays in the `secrets` volume and is handed to no one.
A name ending in `.sha256` is derived, not generated: the hex SHA-256 of the
secret it names without that suffix (msgsuite/auth.py). Clients hold their
bearer token, the server that checks it only the token's digest.

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

# The servers that serve TLS with TLS=on, each with a certificate of its own.
TLS_SERVERS = ("database", "rabbitmq", "grpc-server", "rest-server", "websocket-hub")
CA_CERTIFICATE = "ca.crt"


def server_tls(server: str) -> tuple[str, str]:
    """A server's own certificate and key file names."""
    return (f"{server}.crt", f"{server}.key")


SECRETS_FOR: dict[str, tuple[str, ...]] = {
    "database": ("postgres_password", *server_tls("database")),
    "migrate": ("postgres_password", *DATABASE_ROLE_SECRETS, CA_CERTIFICATE),
    "rabbitmq": (
        "rabbitmq_password",
        "amqp_publisher_password",
        "amqp_consumer_password",
        "amqp_dead_letters_password",
        *server_tls("rabbitmq"),
    ),
    "grpc-server": (
        "db_grpc_server_password",
        "grpc_client_token.sha256",
        CA_CERTIFICATE,
        *server_tls("grpc-server"),
    ),
    "rest-server": (
        "db_rest_server_password",
        "rest_client_token.sha256",
        CA_CERTIFICATE,
        *server_tls("rest-server"),
    ),
    "rabbitmq-server": ("db_rabbitmq_server_password", "amqp_consumer_password", CA_CERTIFICATE),
    "websocket-hub": (
        "db_websocket_hub_password",
        "listener_token.sha256",
        CA_CERTIFICATE,
        *server_tls("websocket-hub"),
    ),
    "websocket-client": ("listener_token", CA_CERTIFICATE),
    "grpc-client": ("grpc_client_token", CA_CERTIFICATE),
    "rest-client": ("rest_client_token", CA_CERTIFICATE),
    "rabbitmq-client": ("amqp_publisher_password", CA_CERTIFICATE),
    "postgres-exporter": ("db_postgres_exporter_password",),
    # `docker compose run --rm dead-letters list`: lists and re-sends dead letters (profile "tools").
    "dead-letters": ("amqp_dead_letters_password", CA_CERTIFICATE),
}

# Holders whose server runs as another user than the one-shot (uid 999 in the
# postgres and rabbitmq images): their key copy must be readable by that user;
# their entrypoint copies it to a private 0600 file of their own (PostgreSQL
# refuses any other mode). Everyone else's key copy is 0400 (uid 10001, theirs).
KEY_READ_BY_ANOTHER_USER = {"database", "rabbitmq"}


DIGEST_SUFFIX = ".sha256"


def every_held() -> list[str]:
    """Every name some holder needs, generated or derived, each once, in a stable order."""
    return sorted({name for names in SECRETS_FOR.values() for name in names})


def every_secret() -> list[str]:
    """Every secret the one-shot generates: the held ones that are not derived, and those that derived ones name."""
    return sorted({name.removesuffix(DIGEST_SUFFIX) for name in every_held()})


def every_derived() -> list[str]:
    """The digests some holder needs (NAME.sha256 of the secret NAME)."""
    return [name for name in every_held() if name.endswith(DIGEST_SUFFIX)]


def is_tls_file(name: str) -> bool:
    """A certificate or key (made by msgsuite.certificates), not a random string."""
    return name.endswith((".crt", ".key"))


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
