"""python -m rabbitmq_client: the shared client CLI over AMQP.

Publishes persistent messages with publisher confirms; a message counts as
sent only when the broker confirmed it. Its total arrives with the notification.
"""
from __future__ import annotations

from collections.abc import Callable

import pika
import pika.exceptions

from msgsuite import cli
from msgsuite.amqp import connection_parameters
from msgsuite.client import Receipt, Sender, Unreachable
from msgsuite.settings import BrokerSettings


class AmqpSender:
    def __init__(self, settings: BrokerSettings) -> None:
        self._settings = settings
        self._connection: pika.BlockingConnection | None = None
        self._channel: pika.adapters.blocking_connection.BlockingChannel | None = None

    def _open_channel(self) -> pika.adapters.blocking_connection.BlockingChannel:
        if self._channel is None or not self._channel.is_open:
            self.close()
            self._connection = pika.BlockingConnection(connection_parameters(self._settings, "rabbitmq-client"))
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
        return self._channel

    def send(self, text: str, key: str) -> Receipt:
        # surrogateescape gives back the exact bytes of a non-UTF-8 argument,
        # so the server (not the client) decides that it is invalid.
        body = text.encode("utf-8", errors="surrogateescape")
        properties = pika.BasicProperties(
            message_id=key, delivery_mode=pika.DeliveryMode.Persistent,
            content_type="text/plain", content_encoding="utf-8",
        )
        try:
            self._open_channel().basic_publish(
                self._settings.exchange, self._settings.queue, body, properties, mandatory=True
            )
        except pika.exceptions.UnroutableError:
            raise Unreachable(f"the broker has no queue bound for {self._settings.queue!r}") from None
        except pika.exceptions.NackError:
            raise Unreachable("the broker did not accept the message") from None
        except (pika.exceptions.AMQPError, OSError) as error:
            self.close()
            raise Unreachable(f"broker unreachable: {type(error).__name__} {error}".strip()) from None
        return Receipt()

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except (pika.exceptions.AMQPError, OSError):
                pass


def sender_factory() -> Callable[[], Sender]:
    settings = BrokerSettings.from_env()
    return lambda: AmqpSender(settings)


if __name__ == "__main__":
    cli.main("rabbitmq-client", sender_factory)
