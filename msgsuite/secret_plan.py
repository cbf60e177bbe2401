"""Which container holds which secret: the one list that compose, Swarm and Kubernetes follow.

The `secrets` one-shot keeps every secret in its own volume (`secrets`) and
copies into each holder's volume (`secrets-<holder>`, mounted read-only at
/run/suite-secrets in that container) only the secrets listed for it here.
A container therefore cannot read a password it does not use: a client never
sees the database's, a server sees its own database role's only.

A name ending in `.sha256` is derived, not generated: the hex SHA-256 of the
secret it names without that suffix (msgsuite/auth.py). Clients hold their
bearer token, the server that checks it only the token's digest.

    python -m msgsuite.secret_plan mkdirs ROOT   # a folder per holder (image build)
    python -m msgsuite.secret_plan holders       # the holders, one per line
"""

from __future__ import annotations

import sys
from pathlib import Path

SECRETS_FOR: dict[str, tuple[str, ...]] = {
    "database": ("postgres_password",),
    "migrate": ("postgres_password",),
    "rabbitmq": ("rabbitmq_password",),
    "grpc-server": ("postgres_password", "grpc_client_token.sha256"),
    "rest-server": ("postgres_password", "rest_client_token.sha256"),
    "rabbitmq-server": ("postgres_password", "rabbitmq_password"),
    "websocket-hub": ("postgres_password", "listener_token.sha256"),
    "websocket-client": ("listener_token",),
    "grpc-client": ("grpc_client_token",),
    "rest-client": ("rest_client_token",),
    "rabbitmq-client": ("rabbitmq_password",),
    "postgres-exporter": ("postgres_password",),
}


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
