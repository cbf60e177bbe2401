"""Settings read from the environment; a missing one stops the process at start."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class MissingSetting(RuntimeError):
    """A required environment variable is not set."""


def load_or_exit(log: logging.Logger, read: Callable[[], T]) -> T:
    """Reads a service's settings; when one is missing, says which in one line and exits 2."""
    try:
        return read()
    except MissingSetting as error:
        log.error("cannot start: %s", error)
        raise SystemExit(2) from None


def required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise MissingSetting(f"environment variable {name} is required")
    return value


def optional(name: str, default: str) -> str:
    return os.environ.get(name) or default


def integer(name: str, default: int) -> int:
    raw = optional(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise MissingSetting(f"environment variable {name} must be a whole number, not {raw!r}") from None


def secret(name: str) -> str:
    """NAME, or the contents of the file named by NAME_FILE (as the postgres image does)."""
    if os.environ.get(name):
        return os.environ[name]
    path = os.environ.get(f"{name}_FILE")
    if not path:
        raise MissingSetting(f"environment variable {name} or {name}_FILE is required")
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise MissingSetting(f"{name}_FILE={path} cannot be read: {error.strerror}") from None
    if not value:
        raise MissingSetting(f"{name}_FILE={path} is empty")
    return value


@dataclass(frozen=True)
class DatabaseSettings:
    host: str
    port: int
    name: str
    user: str
    password: str
    pool_size: int

    @classmethod
    def from_env(cls) -> DatabaseSettings:
        return cls(
            host=required("POSTGRES_HOST"),
            port=integer("POSTGRES_PORT", 5432),
            name=required("POSTGRES_DB"),
            user=required("POSTGRES_USER"),
            password=secret("POSTGRES_PASSWORD"),
            pool_size=integer("DATABASE_POOL_SIZE", 8),
        )

    def connect_kwargs(self) -> dict[str, object]:
        return {
            "host": self.host,
            "port": self.port,
            "dbname": self.name,
            "user": self.user,
            "password": self.password,
            "connect_timeout": 5,
            "application_name": optional("SERVICE_NAME", "msgsuite"),
        }


@dataclass(frozen=True)
class BrokerSettings:
    host: str
    port: int
    user: str
    password: str
    exchange: str
    queue: str
    dead_letter_exchange: str

    @classmethod
    def from_env(cls) -> BrokerSettings:
        return cls(
            host=required("RABBITMQ_HOST"),
            port=integer("RABBITMQ_PORT", 5672),
            user=required("RABBITMQ_USER"),
            password=secret("RABBITMQ_PASSWORD"),
            exchange=optional("RABBITMQ_EXCHANGE", "messages"),
            queue=optional("RABBITMQ_QUEUE", "messages"),
            dead_letter_exchange=optional("RABBITMQ_DEAD_LETTER_EXCHANGE", "messages.dead-letter"),
        )
