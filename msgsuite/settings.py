"""Settings read from the environment, once, at start; a missing or malformed one stops the process.

Each service has one settings object (a frozen dataclass with `from_env`,
in its own package), built from the readers below and the shared
DatabaseSettings / BrokerSettings. tests/unit/test_settings_documented.py
checks that every variable read here is in .env.example and the README.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class InvalidSetting(RuntimeError):
    """A required environment variable is not set, or a value cannot be used."""


def load_or_exit(log: logging.Logger, read: Callable[[], T]) -> T:
    """Reads a service's settings; when one is missing or malformed, says which in one line and exits 2."""
    try:
        return read()
    except InvalidSetting as error:
        log.error("cannot start: %s", error)
        raise SystemExit(2) from None


def required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise InvalidSetting(f"environment variable {name} is required")
    return value


def optional(name: str, default: str) -> str:
    return os.environ.get(name) or default


def integer(name: str, default: int) -> int:
    raw = optional(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise InvalidSetting(f"environment variable {name} must be a whole number, not {raw!r}") from None


def secret(name: str) -> str:
    """NAME, or the contents of the file named by NAME_FILE (as the postgres image does)."""
    if os.environ.get(name):
        return os.environ[name]
    path = os.environ.get(f"{name}_FILE")
    if not path:
        raise InvalidSetting(f"environment variable {name} or {name}_FILE is required")
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise InvalidSetting(f"{name}_FILE={path} cannot be read: {error.strerror}") from None
    if not value:
        raise InvalidSetting(f"{name}_FILE={path} is empty")
    return value


def number(name: str, default: float) -> float:
    raw = optional(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise InvalidSetting(f"environment variable {name} must be a number, not {raw!r}") from None
    if not (0 < value < math.inf):  # also refuses nan
        raise InvalidSetting(f"environment variable {name} must be a number greater than 0, not {raw!r}")
    return value


def tls_enabled() -> bool:
    """TLS=on|off (default off); anything else stops the service at start. See msgsuite/tls.py."""
    value = optional("TLS", "off")
    if value not in ("on", "off"):
        raise InvalidSetting(f"environment variable TLS must be on or off, not {value!r}")
    return value == "on"


def readable_file(name: str, path: str) -> str:
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        raise InvalidSetting(f"{name}={path} cannot be read: {error.strerror}") from None
    return path


def tls_ca_file() -> str | None:
    """With TLS=on, the suite's CA certificate that every client verifies servers with; None with TLS off."""
    if not tls_enabled():
        return None
    return readable_file("TLS_CA_FILE", optional("TLS_CA_FILE", "/run/suite-secrets/ca.crt"))


@dataclass(frozen=True)
class DatabaseSettings:
    host: str
    port: int
    name: str
    user: str
    password: str
    pool_size: int
    application_name: str  # the service's name: pg_stat_activity shows who holds what
    ca_file: str | None = None  # TLS=on: verify the server's certificate and name against this CA
    # The database cancels a statement of this service that runs longer (nothing of it is stored);
    # the event loop's connection waits one second more for that answer (database_async.py).
    # None: no limit (migrate, whose statements may run for minutes).
    statement_timeout: float | None = 5.0

    @classmethod
    def from_env(cls, application_name: str) -> DatabaseSettings:
        return cls(
            host=required("POSTGRES_HOST"),
            port=integer("POSTGRES_PORT", 5432),
            name=required("POSTGRES_DB"),
            user=required("POSTGRES_USER"),
            password=secret("POSTGRES_PASSWORD"),
            pool_size=integer("DATABASE_POOL_SIZE", 8),
            application_name=application_name,
            ca_file=tls_ca_file(),
            statement_timeout=number("DATABASE_STATEMENT_TIMEOUT_SECONDS", 5.0),
        )

    def connect_kwargs(self) -> dict[str, Any]:
        tls = {"sslmode": "verify-full", "sslrootcert": self.ca_file} if self.ca_file else {}
        return {
            "host": self.host,
            "port": self.port,
            "dbname": self.name,
            "user": self.user,
            "password": self.password,
            "connect_timeout": 5,
            # A database that vanishes from the network (no reset, no answer) fails the connection
            # instead of leaving a statement, or an idle LISTEN, waiting on TCP's own ~15 minutes:
            # unacknowledged data for 10 s, or an idle connection whose keepalive probes go unanswered.
            "tcp_user_timeout": 10_000,
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "application_name": self.application_name,
            **(
                {"options": f"-c statement_timeout={round(self.statement_timeout * 1000)}"}
                if self.statement_timeout
                else {}
            ),
            **tls,
        }


@dataclass(frozen=True)
class BrokerSettings:
    host: str
    port: int
    user: str
    password: str
    exchange: str  # where publishers send
    routing_key: str  # what they send with; the exchange routes it to the queue
    queue: str  # what the consumer reads
    dead_letter_exchange: str
    ca_file: str | None = None  # TLS=on: AMQPS, the broker's certificate verified against this CA

    @classmethod
    def from_env(cls) -> BrokerSettings:
        ca_file = tls_ca_file()
        return cls(
            host=required("RABBITMQ_HOST"),
            port=integer("RABBITMQ_PORT", 5671 if ca_file else 5672),
            user=required("RABBITMQ_USER"),
            password=secret("RABBITMQ_PASSWORD"),
            exchange=optional("RABBITMQ_EXCHANGE", "messages"),
            routing_key=optional("RABBITMQ_ROUTING_KEY", "messages"),
            queue=optional("RABBITMQ_QUEUE", "messages"),
            dead_letter_exchange=optional("RABBITMQ_DEAD_LETTER_EXCHANGE", "messages.dead-letter"),
            ca_file=ca_file,
        )
