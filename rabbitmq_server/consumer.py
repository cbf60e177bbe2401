"""Consumes the messages queue: deliveries are stored, then acknowledged.

Whatever deliveries have arrived together (at most the prefetch) are stored
in one transaction, in delivery order, and acknowledged together only after
it committed. A crash at any point leaves them unacknowledged and RabbitMQ
delivers them again; their message_id (the idempotency key) makes the second
store a no-op. Each message still gets its own total and notification.

A delivery that is not a valid message, or whose message the database
refuses, is copied to the dead-letter queue with the reason in the
x-rejection-reason header and acknowledged; the others of its batch are
stored in order (see msgsuite/refusals.py). While the database is
unavailable the batch waits and is retried; any other error ends the
process, and the deliveries are redelivered to its successor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

from msgsuite import metrics
from msgsuite.amqp import connection_parameters
from msgsuite.backoff import Backoff, Reconnecting, keep_connected
from msgsuite.database import DatabaseUnavailable, MessageRefused
from msgsuite.messages import InvalidMessage, StoredMessage, Via, decode_text, validate_key
from msgsuite.probe import touch
from msgsuite.refusals import store_isolating_refusals
from msgsuite.settings import BrokerSettings
from msgsuite.store import StoreFunction

log = logging.getLogger("rabbitmq-server")

REASON_HEADER = "x-rejection-reason"
# While no delivery arrives, a passive queue declaration every few seconds
# proves that the broker still answers; the liveness file records it.
IDLE_ROUND_TRIP_SECONDS = 5.0

DELIVERIES = metrics.counter("msgsuite_amqp_deliveries", "AMQP deliveries received from the messages queue")
REDELIVERED = metrics.counter("msgsuite_amqp_redelivered", "Deliveries the broker marked as redelivered")
DEAD_LETTERED = metrics.counter(
    "msgsuite_amqp_dead_lettered",
    "Deliveries copied to the dead-letter queue: reason=invalid (broke a message rule) or database (refused by it)",
    ["reason"],
)


@dataclass(frozen=True)
class Delivery:
    tag: int
    text: str
    key: str | None
    body: bytes
    properties: BasicProperties
    redelivered: bool


class Consumer:
    def __init__(self, broker: BrokerSettings, write: StoreFunction, prefetch: int, liveness_file: str) -> None:
        """write: stores a batch's texts and keys in one transaction (store.store_messages)."""
        self._broker = broker
        self._write = write
        self._prefetch = prefetch
        self._liveness_file = liveness_file
        self._stopping = threading.Event()
        self._connection: pika.BlockingConnection | None = None
        self._pending: list[Delivery] = []
        self._reconnecting = Reconnecting("broker connection", log, cap=10)

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        """Consumes until stop(); reconnects with backoff whenever the broker goes away."""
        keep_connected(self._consume, (pika.exceptions.AMQPError, OSError), self._reconnecting, self._stopping)

    def _consume(self) -> None:
        connection = pika.BlockingConnection(connection_parameters(self._broker, "rabbitmq-server"))
        self._connection = connection
        try:
            channel = connection.channel()
            channel.confirm_delivery()  # dead-lettering publishes and waits for the broker's confirm
            channel.basic_qos(prefetch_count=self._prefetch)
            channel.basic_consume(self._broker.queue, self._on_message, auto_ack=False)
            log.info("consuming queue %r (prefetch %d)", self._broker.queue, self._prefetch)
            self._reconnecting.connected()
            proven_at = 0.0
            while not self._stopping.is_set():
                # Returns as soon as deliveries were dispatched to _on_message.
                connection.process_data_events(time_limit=1)
                if self._pending:
                    self._store_and_acknowledge(channel)
                elif time.monotonic() - proven_at < IDLE_ROUND_TRIP_SECONDS:
                    continue
                else:
                    channel.queue_declare(self._broker.queue, passive=True)
                proven_at = time.monotonic()
                touch(self._liveness_file)
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
        DELIVERIES.inc()
        if method.redelivered:
            REDELIVERED.inc()
        try:
            text = decode_text(body)
            key = validate_key(properties.message_id)
        except InvalidMessage as error:
            metrics.MESSAGES_REFUSED.labels(Via.RABBITMQ.value, "invalid").inc()
            DEAD_LETTERED.labels("invalid").inc()
            self._dead_letter(channel, body, properties, method.redelivered, error.reason)
            channel.basic_ack(method.delivery_tag)
            return
        self._pending.append(Delivery(method.delivery_tag, text, key, body, properties, bool(method.redelivered)))

    def _store_and_acknowledge(self, channel: BlockingChannel) -> None:
        # Taken out first: while the database is retried, connection.sleep()
        # dispatches new deliveries, which must wait for the next batch.
        batch, self._pending = self._pending, []
        delays = Backoff(cap=5).delays()
        while batch:
            outcomes = store_isolating_refusals(batch, self._store)
            done = 0
            failure: Exception | None = None
            for delivery, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, DatabaseUnavailable):
                    break
                if isinstance(outcome, MessageRefused):
                    reason = f"the database refused the message: {outcome.reason}"
                    metrics.MESSAGES_REFUSED.labels(Via.RABBITMQ.value, "database").inc()
                    DEAD_LETTERED.labels("database").inc()
                    self._dead_letter(channel, delivery.body, delivery.properties, delivery.redelivered, reason)
                elif isinstance(outcome, Exception):
                    failure = outcome
                    break
                done += 1
            if done:
                # Tags grow with each delivery: this acknowledges what was stored or
                # dead-lettered (and earlier dead-lettered ones), nothing newer.
                channel.basic_ack(batch[done - 1].tag, multiple=True)
                stored = [o for o in outcomes[:done] if isinstance(o, StoredMessage)]
                if stored:
                    log.debug("stored %d deliveries, ids %d..%d", len(stored), stored[0].id, stored[-1].id)
            if failure is not None:
                # Not the message's fault nor an outage: restart (see crash.py). What was
                # stored or dead-lettered is acknowledged first, so it is not redelivered.
                raise failure
            batch = batch[done:]
            if batch:
                if self._stopping.is_set():
                    return  # left unacknowledged: RabbitMQ redelivers them
                delay = next(delays)
                log.warning(
                    "database unavailable (%s); retrying %d deliveries in %.1f s", outcomes[done], len(batch), delay
                )
                assert self._connection is not None
                self._connection.sleep(delay)  # keeps the broker heartbeats going

    def _store(self, deliveries: Sequence[Delivery]) -> list[StoredMessage]:
        return self._write([d.text for d in deliveries], [d.key for d in deliveries])

    def _dead_letter(
        self, channel: BlockingChannel, body: bytes, properties: BasicProperties, redelivered: bool, reason: str
    ) -> None:
        """Publishes a copy to the dead-letter queue and waits for the broker's confirm; the caller acknowledges."""
        headers = dict(properties.headers or {})
        headers[REASON_HEADER] = reason
        copy = BasicProperties(
            content_type=properties.content_type,
            content_encoding=properties.content_encoding,
            message_id=properties.message_id,
            delivery_mode=pika.DeliveryMode.Persistent,
            headers=headers,
        )
        channel.basic_publish(self._broker.dead_letter_exchange, self._broker.routing_key, body, copy, mandatory=True)
        log.warning(
            "rejected delivery to the dead-letter queue: %s (message_id=%r, redelivered=%s)",
            reason,
            properties.message_id,
            redelivered,
        )
