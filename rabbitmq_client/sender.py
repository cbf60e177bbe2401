"""AmqpSender: messages published to RabbitMQ, confirmed by the broker."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from msgsuite.amqp import connection_parameters
from msgsuite.client import Receipt, Unreachable
from msgsuite.settings import BrokerSettings


class AmqpSender:
    def __init__(self, settings: BrokerSettings) -> None:
        self._settings = settings
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._batch_channel: BlockingChannel | None = None

    def _open_connection(self) -> pika.BlockingConnection:
        if self._connection is None or not self._connection.is_open:
            self.close()
            self._connection = pika.BlockingConnection(connection_parameters(self._settings, "rabbitmq-client"))
        return self._connection

    def _confirm_channel(self) -> BlockingChannel:
        """Publisher confirms: each publish returns once the broker has the message."""
        connection = self._open_connection()
        if self._channel is None or not self._channel.is_open:
            self._channel = connection.channel()
            self._channel.confirm_delivery()
        return self._channel

    def _transaction_channel(self) -> BlockingChannel:
        """AMQP transactions: a batch is the broker's once tx.commit returns."""
        connection = self._open_connection()
        if self._batch_channel is None or not self._batch_channel.is_open:
            self._batch_channel = connection.channel()
            self._batch_channel.tx_select()
        return self._batch_channel

    def _publish(self, channel: BlockingChannel, text: str, key: str, mandatory: bool) -> None:
        # surrogateescape gives back the exact bytes of a non-UTF-8 argument,
        # so the server (not the client) decides that it is invalid.
        body = text.encode("utf-8", errors="surrogateescape")
        properties = pika.BasicProperties(
            message_id=key,
            delivery_mode=pika.DeliveryMode.Persistent,
            content_type="text/plain",
            content_encoding="utf-8",
        )
        channel.basic_publish(
            self._settings.exchange, self._settings.routing_key, body, properties, mandatory=mandatory
        )

    def send(self, text: str, key: str) -> Receipt:
        self._guarded(lambda: self._publish(self._confirm_channel(), text, key, mandatory=True))
        return Receipt()

    def send_batch(self, texts: list[str], keys: list[str]) -> list[Receipt]:
        def publish_all() -> None:
            channel = self._transaction_channel()
            for text, key in zip(texts, keys, strict=True):
                self._publish(channel, text, key, mandatory=False)
            channel.tx_commit()

        self._guarded(publish_all)
        return [Receipt() for _ in texts]

    def _guarded(self, publish: Callable[[], None]) -> None:
        try:
            publish()
        except pika.exceptions.UnroutableError:
            raise Unreachable(f"the broker has no queue bound for {self._settings.routing_key!r}") from None
        except pika.exceptions.NackError:
            raise Unreachable("the broker did not accept the message") from None
        except (pika.exceptions.AMQPError, OSError) as error:
            self.close()
            raise Unreachable(f"broker unreachable: {type(error).__name__} {error}".strip()) from None

    def close(self) -> None:
        connection, self._connection, self._channel, self._batch_channel = self._connection, None, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                connection.close()
