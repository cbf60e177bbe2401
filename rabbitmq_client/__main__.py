"""python -m rabbitmq_client: the shared client CLI over AMQP.

Publishes persistent messages with publisher confirms (batches in AMQP
transactions); a message counts as sent only once the broker has it. Its
total arrives with the notification.
"""

from __future__ import annotations

from collections.abc import Callable

from msgsuite import cli
from msgsuite.client import Sender
from msgsuite.settings import BrokerSettings

from .sender import AmqpSender


def sender_factory() -> Callable[[], Sender]:
    settings = BrokerSettings.from_env()
    return lambda: AmqpSender(settings)


if __name__ == "__main__":
    cli.main("rabbitmq-client", sender_factory)
