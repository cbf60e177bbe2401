"""Connecting to RabbitMQ with the suite's settings."""

from __future__ import annotations

import ssl

import pika

from .settings import BrokerSettings


def connection_parameters(settings: BrokerSettings, name: str) -> pika.ConnectionParameters:
    ssl_options = None
    if settings.ca_file:  # TLS=on: AMQPS, the broker's certificate and name checked against the suite's CA
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        ssl_options = pika.SSLOptions(context, server_hostname=settings.host)
    return pika.ConnectionParameters(
        host=settings.host,
        port=settings.port,
        credentials=pika.PlainCredentials(settings.user, settings.password),
        heartbeat=30,
        blocked_connection_timeout=60,
        connection_attempts=1,
        socket_timeout=5,
        client_properties={"connection_name": name},
        ssl_options=ssl_options,
    )
