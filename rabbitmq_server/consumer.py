"""Consumes the messages queue: deliveries are stored, then acknowledged.

Whatever deliveries have arrived together (at most the prefetch) are stored
in one transaction, in delivery order, and acknowledged together only after
it committed. A crash at any point leaves them unacknowledged and RabbitMQ
delivers them again; their message_id (the idempotency key) makes the second
store a no-op. Each message still gets its own total and notification.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

from msgsuite.amqp import connection_parameters
from msgsuite.backoff import Backoff
from msgsuite.database import ConnectionPool, DatabaseUnavailable
from msgsuite.messages import InvalidMessage, StoredMessage, Via, decode_text, validate_key
from msgsuite.probe import touch
from msgsuite.settings import BrokerSettings
from msgsuite.store import store_messages

log = logging.getLogger("rabbitmq-server")

REASON_HEADER = "x-rejection-reason"


@dataclass(frozen=True)
class Pending:
    delivery_tag: int
    text: str
    key: str | None


class Consumer:
    def __init__(self, broker: BrokerSettings, pool: ConnectionPool, prefetch: int, heartbeat_file: str) -> None:
        self._broker = broker
        self._pool = pool
        self._prefetch = prefetch
        self._heartbeat_file = heartbeat_file
        self._stopping = threading.Event()
        self._connection: pika.BlockingConnection | None = None
        self._pending: list[Pending] = []

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
                log.warning(
                    "broker connection lost (%s); reconnecting in %.1f s",
                    type(error).__name__ + (f": {error}" if str(error) else ""),
                    delay,
                )
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
                # Returns as soon as deliveries were dispatched to _on_message.
                connection.process_data_events(time_limit=1)
                self._store_and_acknowledge(channel)
                touch(self._heartbeat_file)
            # Unacknowledged deliveries go back to the queue when the connection closes.
            log.info("stopping: closing the broker connection")
        finally:
            self._connection = None
            self._pending = []  # unacknowledged: the broker redelivers them
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
        self._pending.append(Pending(method.delivery_tag, text, key))

    def _store_and_acknowledge(self, channel: BlockingChannel) -> None:
        # Taken out first: while the database is retried, connection.sleep()
        # dispatches new deliveries, which must wait for the next batch.
        batch, self._pending = self._pending, []
        if not batch:
            return
        records = self._store_until_done(batch)
        if records is None:
            return  # stopping: left unacknowledged, RabbitMQ redelivers them
        # Tags grow with each delivery: this acknowledges the batch and the
        # dead-lettered deliveries before it (already acknowledged), nothing newer.
        channel.basic_ack(batch[-1].delivery_tag, multiple=True)
        log.debug("stored %d deliveries, ids %d..%d", len(records), records[0].id, records[-1].id)

    def _store_until_done(self, batch: list[Pending]) -> list[StoredMessage] | None:
        delays = Backoff(cap=5).delays()
        while not self._stopping.is_set():
            try:
                return store_messages(self._pool, Via.RABBITMQ, [p.text for p in batch], [p.key for p in batch])
            except DatabaseUnavailable as error:
                delay = next(delays)
                log.warning("database unavailable (%s); retrying %d deliveries in %.1f s", error, len(batch), delay)
                assert self._connection is not None
                self._connection.sleep(delay)  # keeps the broker heartbeats going
        return None

    def _dead_letter(
        self,
        channel: BlockingChannel,
        method: Basic.Deliver,
        properties: BasicProperties,
        body: bytes,
        reason: str,
    ) -> None:
        headers = dict(properties.headers or {})
        headers[REASON_HEADER] = reason
        copy = BasicProperties(
            content_type=properties.content_type,
            content_encoding=properties.content_encoding,
            message_id=properties.message_id,
            delivery_mode=pika.DeliveryMode.Persistent,
            headers=headers,
        )
        channel.basic_publish(self._broker.dead_letter_exchange, self._broker.queue, body, copy, mandatory=True)
        channel.basic_ack(method.delivery_tag)
        log.warning(
            "rejected delivery to the dead-letter queue: %s (message_id=%r, redelivered=%s)",
            reason,
            properties.message_id,
            method.redelivered,
        )
