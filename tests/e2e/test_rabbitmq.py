"""The AMQP path: publisher confirms, the consumer, idempotency and the dead-letter queue."""

from __future__ import annotations

import uuid

import pika
import pytest

from harness.stack import Stack, receive_frames, wait_for

DEAD_LETTER_QUEUE = "messages.dead-letter"


def publish(stack: Stack, body: bytes, message_id: str | None) -> None:
    with stack.amqp_channel() as channel:
        channel.basic_publish(
            "messages", "messages", body, pika.BasicProperties(message_id=message_id, delivery_mode=2), mandatory=True
        )


def drain_dead_letters(stack: Stack) -> list[tuple[bytes, dict[str, object]]]:
    found = []
    with stack.amqp_channel() as channel:
        while True:
            method, properties, body = channel.basic_get(DEAD_LETTER_QUEUE, auto_ack=True)
            if method is None:
                return found
            found.append((body, dict(properties.headers or {})))


def test_rabbitmq_client_message_is_stored_and_announced(healthy: Stack) -> None:
    message = f"hola AMQP {uuid.uuid4().hex[:6]}"
    with healthy.listen(after=healthy.total()) as listener:
        result = healthy.run_client("rabbitmq-client", message)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("queued")
        frame = wait_for(
            lambda: next((f for f in receive_frames(listener, 0, timeout=30) if f["message"] == message), None),
            what="the AMQP notification",
        )
    assert frame["via"] == "RabbitMQ"
    assert frame["text"] == (
        f"Se ingresó un registro mediante RabbitMQ , con el mensaje {message}, total de mensajes {frame['id']}"
    )


def test_a_redelivered_message_id_stores_once(healthy: Stack) -> None:
    key = f"amqp-{uuid.uuid4()}"
    for _ in range(3):
        publish(healthy, b"tres veces el mismo", key)
    wait_for(
        lambda: healthy.query("SELECT count(*) FROM messages WHERE idempotency_key = %s", (key,)) == [(1,)],
        what="the message stored",
    )
    publish(healthy, b"sentinela", f"amqp-{uuid.uuid4()}")  # queue order: after the repeats
    wait_for(
        lambda: healthy.query("SELECT count(*) FROM messages WHERE message = 'sentinela'")[0][0] >= 1,
        what="the sentinel stored",
    )
    assert healthy.query("SELECT count(*) FROM messages WHERE idempotency_key = %s", (key,)) == [(1,)]


@pytest.mark.parametrize(
    ("body", "message_id", "words"),
    [
        (b"\xff\xfe invalid", "poison-utf8", "UTF-8"),
        (b"", "poison-empty", "empty"),
        (b"   ", "poison-blank", "blank"),
        (b"x" * 4097, "poison-long", "4096"),
        (b"a\x00b", "poison-nul", "NUL"),
        (b"valid text", "k" * 201, "idempotency key"),
    ],
    ids=["invalid UTF-8", "empty", "blank", "too long", "NUL", "bad message_id"],
)
def test_poison_messages_go_to_the_dead_letter_queue_with_their_reason(
    healthy: Stack, body: bytes, message_id: str, words: str
) -> None:
    drain_dead_letters(healthy)
    before = healthy.total()
    publish(healthy, body, message_id)
    dead = wait_for(lambda: drain_dead_letters(healthy), what="the dead-lettered message")
    assert [b for b, _ in dead] == [body]
    assert words in str(dead[0][1]["x-rejection-reason"])
    assert healthy.total() == before
    # the queue is not blocked: a good message right behind it is stored
    key = f"amqp-{uuid.uuid4()}"
    publish(healthy, "después del veneno".encode(), key)
    wait_for(
        lambda: healthy.query("SELECT count(*) FROM messages WHERE idempotency_key = %s", (key,)) == [(1,)],
        what="the good message stored",
    )
    assert healthy.total() == before + 1


def test_a_redelivered_poison_message_also_goes_to_the_dead_letter_queue(healthy: Stack) -> None:
    drain_dead_letters(healthy)
    before = healthy.total()
    healthy.compose("stop", "rabbitmq-server")
    try:
        publish(healthy, b"\xc3\x28 veneno", "poison-redelivered")
        with healthy.amqp_channel() as channel:  # take it without acknowledging: the broker requeues it
            method, _, body = wait_for(lambda: _first_delivery(channel), what="the poison message in the queue")
            assert body == b"\xc3\x28 veneno"
            channel.basic_nack(method.delivery_tag, requeue=True)
    finally:
        healthy.compose("start", "rabbitmq-server")
    dead = wait_for(lambda: drain_dead_letters(healthy), timeout=60, what="the dead-lettered redelivery")
    assert [b for b, _ in dead] == [b"\xc3\x28 veneno"] and "UTF-8" in str(dead[0][1]["x-rejection-reason"])
    assert "redelivered=True" in healthy.compose("logs", "rabbitmq-server").stdout
    assert healthy.total() == before


def _first_delivery(channel):  # type: ignore[no-untyped-def]
    method, properties, body = channel.basic_get("messages", auto_ack=False)
    return (method, properties, body) if method is not None else None
