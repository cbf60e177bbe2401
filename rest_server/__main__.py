"""python -m rest_server: serves the API on REST_PORT (default 8000)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn

from msgsuite import crash, logs
from msgsuite.auth import RateLimit, TokenCheck, auth_enabled
from msgsuite.database import ConnectionPool
from msgsuite.messages import Via
from msgsuite.schema import wait_for_schema
from msgsuite.settings import DatabaseSettings, integer, load_or_exit, secret
from msgsuite.store import Messages, MessageStore
from msgsuite.tls import TlsSettings

from .app import create_app


@dataclass(frozen=True)
class RestServerSettings:
    database: DatabaseSettings
    port: int
    tls: TlsSettings  # TLS=on: HTTPS with its own certificate
    tokens: TokenCheck  # AUTH=on: the digest of the REST clients' token
    rate_limit: RateLimit

    @classmethod
    def from_env(cls) -> RestServerSettings:
        return cls(
            DatabaseSettings.from_env("rest-server"),
            integer("REST_PORT", 8000),
            TlsSettings.from_env("rest-server"),
            TokenCheck(secret("REST_TOKEN_SHA256") if auth_enabled() else None),
            RateLimit.from_env(),
        )


def stored_in(settings: DatabaseSettings) -> Messages:
    return MessageStore(settings, Via.REST)


def main(messages_for: Callable[[DatabaseSettings], Messages] = stored_in) -> int:
    """messages_for: what POST stores through (the benchmark's no-op ceiling swaps it, see noop.py)."""
    log = logs.configure("rest-server")
    settings = load_or_exit(log, RestServerSettings.from_env)
    crash.exit_on_thread_errors()
    wait_for_schema(settings.database, log)
    pool = ConnectionPool(settings.database)
    log.info(
        "listening on port %d (%s), database %s:%d, bearer token %s",
        settings.port,
        "HTTPS" if settings.tls.enabled else "HTTP",
        settings.database.host,
        settings.database.port,
        "required" if settings.tokens.required else "not required (AUTH=off)",
    )
    # uvicorn stops on SIGTERM after in-flight requests finish.
    uvicorn.run(
        create_app(messages_for(settings.database), pool, settings.tokens, settings.rate_limit),
        host="0.0.0.0",
        port=settings.port,
        access_log=False,
        log_level="warning",
        log_config=None,  # uvicorn logs through ours (text or JSON)
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
        ssl_certfile=settings.tls.cert_file,
        ssl_keyfile=settings.tls.key_file,
    )
    pool.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
