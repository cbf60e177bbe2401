"""A broker user per role, tried through the published AMQP port with each role's own password.

publisher (the clients) may only publish to the `messages` exchange; consumer (rabbitmq-server) may only
consume `messages` and publish to the dead-letter exchange; dead-letters (the tool) may only read the
dead-letter queue and publish to `messages`; the administrator alone may log in to the management UI.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pika
import pika.exceptions
import pytest
import requests
from pika.adapters.blocking_connection import BlockingChannel

from harness.stack import Stack, wait_for

ACCESS_REFUSED = 403
ROLES = {
    "publisher": "amqp_publisher_password",
    "consumer": "amqp_consumer_password",
    "dead-letters": "amqp_dead_letters_password",
}

Attempt = Callable[[BlockingChannel], object]


@contextmanager
def channel_as(stack: Stack, user: str) -> Iterator[BlockingChannel]:
    params = pika.ConnectionParameters(
        host="127.0.0.1",
        port=stack.port("rabbitmq", 5672),
        credentials=pika.PlainCredentials(user, stack.secret(ROLES[user])),
        connection_attempts=1,
        socket_timeout=10,
    )
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        yield channel
    finally:
        if connection.is_open:
            connection.close()


def persistent(key: str) -> pika.BasicProperties:
    return pika.BasicProperties(message_id=key, delivery_mode=2, content_type="text/plain")


def assert_refused(stack: Stack, user: str, attempt: Attempt, what: str) -> None:
    """Each attempt on a channel of its own: the broker closes a channel on a refusal."""
    with channel_as(stack, user) as channel, pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        attempt(channel)
    assert refused.value.reply_code == ACCESS_REFUSED, f"{user} {what}: {refused.value}"


def queue_depth(stack: Stack, queue: str) -> int:
    with stack.amqp_channel() as channel:  # the administrator's
        return int(channel.queue_declare(queue, passive=True).method.message_count)


def stored(stack: Stack, key: str) -> int:
    return int(stack.query("SELECT count(*) FROM messages WHERE idempotency_key = %s", (key,))[0][0])


WHAT_NO_CLIENT_MAY_DO: dict[str, Attempt] = {
    "consume messages": lambda ch: ch.basic_consume("messages", lambda *_: None),
    "get from messages": lambda ch: ch.basic_get("messages"),
    "purge messages": lambda ch: ch.queue_purge("messages"),
    "delete the messages queue": lambda ch: ch.queue_delete("messages"),
    "delete the messages exchange": lambda ch: ch.exchange_delete("messages"),
    "declare a queue": lambda ch: ch.queue_declare(f"intruder-{uuid.uuid4().hex[:6]}"),
    "declare an exchange": lambda ch: ch.exchange_declare("intruder", "fanout"),
    "bind a queue": lambda ch: ch.queue_bind("messages.dead-letter", "messages", "messages"),
    "read the dead letters": lambda ch: ch.basic_get("messages.dead-letter"),
    "publish a dead letter": lambda ch: ch.basic_publish("messages.dead-letter", "", b"x", persistent("x")),
    "publish through the default exchange": lambda ch: ch.basic_publish("", "messages", b"x", persistent("x")),
}


def test_client_credentials_publish_to_messages_and_nothing_else(healthy: Stack) -> None:
    depth_before = queue_depth(healthy, "messages.dead-letter")
    for what, attempt in WHAT_NO_CLIENT_MAY_DO.items():
        assert_refused(healthy, "publisher", attempt, what)
    assert queue_depth(healthy, "messages.dead-letter") == depth_before

    # The one thing a client does: publish to the messages exchange, and the consumer stores it.
    key = f"publisher-{uuid.uuid4()}"
    with channel_as(healthy, "publisher") as channel:
        channel.basic_publish("messages", "messages", b"hola como publisher", persistent(key), mandatory=True)
    wait_for(lambda: stored(healthy, key) == 1, what="the publisher's message stored")


def test_consumer_credentials_cannot_publish_to_messages_nor_configure(healthy: Stack) -> None:
    refusals: dict[str, Attempt] = {
        "publish to messages": lambda ch: ch.basic_publish("messages", "messages", b"x", persistent("x")),
        "purge the dead letters": lambda ch: ch.queue_purge("messages.dead-letter"),
        "read the dead letters": lambda ch: ch.basic_get("messages.dead-letter"),
        "delete the messages queue": lambda ch: ch.queue_delete("messages"),
        "declare a queue": lambda ch: ch.queue_declare(f"intruder-{uuid.uuid4().hex[:6]}"),
        "bind a queue": lambda ch: ch.queue_bind("messages", "messages.dead-letter", ""),
    }
    for what, attempt in refusals.items():
        assert_refused(healthy, "consumer", attempt, what)

    # What the consumer does, with its own credentials in rabbitmq-server: consume `messages` (a valid message
    # is stored) and publish to the dead-letter exchange (an invalid one lands in the dead-letter queue).
    dead_before = queue_depth(healthy, "messages.dead-letter")
    valid, invalid = f"consumer-ok-{uuid.uuid4()}", f"consumer-bad-{uuid.uuid4()}"
    with channel_as(healthy, "publisher") as channel:
        channel.basic_publish("messages", "messages", b"\xff no UTF-8", persistent(invalid), mandatory=True)
        channel.basic_publish("messages", "messages", b"hola como consumer", persistent(valid), mandatory=True)
    wait_for(lambda: stored(healthy, valid) == 1, what="the valid message stored by the consumer")
    wait_for(lambda: queue_depth(healthy, "messages.dead-letter") > dead_before, what="the invalid one dead-lettered")
    with healthy.amqp_channel() as channel:  # leave the dead-letter queue as it was
        channel.queue_purge("messages.dead-letter")


def test_dead_letters_credentials_only_read_dead_letters_and_publish_to_messages(healthy: Stack) -> None:
    refusals: dict[str, Attempt] = {
        "consume messages": lambda ch: ch.basic_consume("messages", lambda *_: None),
        "publish a dead letter": lambda ch: ch.basic_publish("messages.dead-letter", "", b"x", persistent("x")),
        "delete the dead-letter queue": lambda ch: ch.queue_delete("messages.dead-letter"),
        "declare a queue": lambda ch: ch.queue_declare(f"intruder-{uuid.uuid4().hex[:6]}"),
    }
    for what, attempt in refusals.items():
        assert_refused(healthy, "dead-letters", attempt, what)


def test_only_the_administrator_logs_in_to_the_management_ui(healthy: Stack) -> None:
    api = f"http://127.0.0.1:{healthy.port('rabbitmq', 15672)}/api/whoami"
    admin = requests.get(api, auth=("suite", healthy.secret("rabbitmq_password")), timeout=10)
    assert admin.status_code == 200 and "administrator" in admin.json()["tags"]
    for user, secret_name in ROLES.items():
        response = requests.get(api, auth=(user, healthy.secret(secret_name)), timeout=10)
        assert response.status_code == 401, f"{user} logs in to the management UI"
