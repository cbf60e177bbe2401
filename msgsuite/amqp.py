"""Connecting to RabbitMQ with the suite's settings."""

from __future__ import annotations

import pika

from .settings import BrokerSettings


def connection_parameters(settings: BrokerSettings, name: str) -> pika.ConnectionParameters:
    return pika.ConnectionParameters(
        host=settings.host,
        port=settings.port,
        credentials=pika.PlainCredentials(settings.user, settings.password),
        heartbeat=30,
        blocked_connection_timeout=60,
        connection_attempts=1,
        socket_timeout=5,
        client_properties={"connection_name": name},
    )
