"""Consumes the messages queue: each delivery is stored, then acknowledged.

The acknowledgement is sent only after the transaction committed, so a crash
at any point leaves the delivery unacknowledged and RabbitMQ delivers it
again; its message_id (the idempotency key) makes the second store a no-op.
"""
from __future__ import annotations

import logging
import threading

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

from msgsuite.amqp import connection_parameters
from msgsuite.backoff import Backoff
from msgsuite.database import ConnectionPool, DatabaseUnavailable
from msgsuite.messages import InvalidMessage, Via, decode_text, validate_key
from msgsuite.probe import touch
from msgsuite.settings import BrokerSettings
from msgsuite.store import store_message

log = logging.getLogger("rabbitmq-server")

REASON_HEADER = "x-rejection-reason"


class Consumer:
    def __init__(self, broker: BrokerSettings, pool: ConnectionPool, prefetch: int, heartbeat_file: str) -> None:
        self._broker = broker
        self._pool = pool
        self._prefetch = prefetch
        self._heartbeat_file = heartbeat_file
        self._stopping = threading.Event()
        self._connection: pika.BlockingConnection | None = None

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        """Consumes until stop(); reconnects with backoff whenever the broker goes away."""
        delays = Backoff(cap=10).delays()
        while not self._stopping.is_set():
            try:
                self._consume()
                delays = Backoff(cap=10).delays()
            except (pika.exceptions.AMQPError, OSError) as error:
                if self._stopping.is_set():
                    break
                delay = next(delays)
                log.warning("broker connection lost (%s); reconnecting in %.1f s",
                            type(error).__name__ + (f": {error}" if str(error) else ""), delay)
                self._stopping.wait(delay)

    def _consume(self) -> None:
        connection = pika.BlockingConnection(connection_parameters(self._broker, "rabbitmq-server"))
        self._connection = connection
        try:
            channel = connection.channel()
            channel.confirm_delivery()  # dead-lettering publishes and waits for the broker's confirm
            channel.basic_qos(prefetch_count=self._prefetch)
            channel.basic_consume(self._broker.queue, self._on_message, auto_ack=False)
            log.info("consuming queue %r (prefetch %d)", self._broker.queue, self._prefetch)
            while not self._stopping.is_set():
                connection.process_data_events(time_limit=1)
                touch(self._heartbeat_file)
            # Unacknowledged deliveries go back to the queue when the connection closes.
            log.info("stopping: closing the broker connection")
        finally:
            self._connection = None
            if connection.is_open:
                connection.close()

    def _on_message(
        self, channel: BlockingChannel, method: Basic.Deliver, properties: BasicProperties, body: bytes
    ) -> None:
        try:
            text = decode_text(body)
            key = validate_key(properties.message_id)
        except InvalidMessage as error:
            self._dead_letter(channel, method, properties, body, error.reason)
            return
        record = self._store_until_done(text, key)
        if record is None:
            return  # stopping: left unacknowledged, RabbitMQ redelivers it
        channel.basic_ack(method.delivery_tag)
        log.debug("stored id=%d repeated=%s message_id=%s", record.id, record.repeated, key)

    def _store_until_done(self, text: str, key: str | None):  # type: ignore[no-untyped-def]
        delays = Backoff(cap=5).delays()
        while not self._stopping.is_set():
            try:
                return store_message(self._pool, Via.RABBITMQ, text, key)
            except DatabaseUnavailable as error:
                delay = next(delays)
                log.warning("database unavailable (%s); retrying the delivery in %.1f s", error, delay)
                assert self._connection is not None
                self._connection.sleep(delay)  # keeps the broker heartbeats going
        return None

    def _dead_letter(
        self, channel: BlockingChannel, method: Basic.Deliver, properties: BasicProperties,
        body: bytes, reason: str,
    ) -> None:
        headers = dict(properties.headers or {})
        headers[REASON_HEADER] = reason
        copy = BasicProperties(
            content_type=properties.content_type, content_encoding=properties.content_encoding,
            message_id=properties.message_id if _printable(properties.message_id) else None,
            delivery_mode=pika.DeliveryMode.Persistent, headers=headers,
        )
        channel.basic_publish(self._broker.dead_letter_exchange, self._broker.queue, body, copy, mandatory=True)
        channel.basic_ack(method.delivery_tag)
        log.warning("rejected delivery to the dead-letter queue: %s (message_id=%r, redelivered=%s)",
                    reason, properties.message_id, method.redelivered)


def _printable(value: str | None) -> bool:
    return value is not None and len(value) <= 255
