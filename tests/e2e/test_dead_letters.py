"""Dead letters listed with their reason and sent again, through the real broker, consumer and database."""

from __future__ import annotations

import subprocess
import uuid

import pika

from harness.stack import Stack, wait_for

from .checks import assert_ids_gap_free

DEAD_LETTER_QUEUE = "messages.dead-letter"


def dead_letters(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """The README's `docker compose run --rm dead-letters ...`: the tool with the broker user of its own."""
    return stack.run_client("dead-letters", *args, timeout=120)


def publish(stack: Stack, messages: list[tuple[bytes, str]]) -> None:
    with stack.amqp_channel() as channel:
        for body, key in messages:
            properties = pika.BasicProperties(message_id=key, delivery_mode=2, content_type="text/plain")
            channel.basic_publish("messages", "messages", body, properties, mandatory=True)


def dead_letter_count(stack: Stack) -> int:
    with stack.amqp_channel() as channel:
        return int(channel.queue_declare(DEAD_LETTER_QUEUE, passive=True).method.message_count)


def drain_dead_letters(stack: Stack) -> None:
    with stack.amqp_channel() as channel:
        channel.queue_purge(DEAD_LETTER_QUEUE)


def stored(stack: Stack, key: str) -> int:
    return int(stack.query("SELECT count(*) FROM messages WHERE idempotency_key = %s", (key,))[0][0])


def test_list_shows_each_dead_letter_with_its_reason_and_leaves_it_in_the_queue(healthy: Stack) -> None:
    drain_dead_letters(healthy)
    key = f"dl-{uuid.uuid4()}"
    body = b"\xff\xfe no es UTF-8"
    publish(healthy, [(body, key)])
    wait_for(lambda: dead_letter_count(healthy) == 1, what="the invalid message in the dead-letter queue")
    try:
        for _ in range(2):  # listing twice shows it twice: the first listing took nothing
            result = dead_letters(healthy, "list")
            assert result.returncode == 0, result.stderr
            assert result.stdout.splitlines() == [
                f"{key} | message is not valid UTF-8 (byte 0) | {body!r} ({len(body)} bytes)"
            ]
            assert dead_letter_count(healthy) == 1
        missing = dead_letters(healthy, "resend", "no-such-key")
        assert missing.returncode == 1 and "no dead letter with message_id 'no-such-key'" in missing.stderr
        assert missing.stdout == "" and dead_letter_count(healthy) == 1
        usage = dead_letters(healthy, "resend")
        assert usage.returncode == 2 and "usage:" in usage.stderr and "Traceback" not in usage.stderr
    finally:
        drain_dead_letters(healthy)


def test_resend_puts_a_dead_letter_back_and_it_is_stored_once(healthy: Stack) -> None:
    drain_dead_letters(healthy)
    key = f"dl-{uuid.uuid4()}"
    text = f"refused once {key[-6:]}"
    with healthy.amqp_channel() as channel:  # a dead letter as the consumer makes one, for a cause since fixed
        headers = {"x-rejection-reason": "the database was being repaired"}
        properties = pika.BasicProperties(message_id=key, delivery_mode=2, content_type="text/plain", headers=headers)
        channel.basic_publish("messages.dead-letter", "messages", text.encode(), properties, mandatory=True)
    try:
        resent = dead_letters(healthy, "resend", "--all")
        assert (resent.returncode, resent.stdout) == (0, f"resent {key}\n"), resent.stderr
        assert dead_letter_count(healthy) == 0
        wait_for(lambda: stored(healthy, key) == 1, what="the re-sent message stored")
        assert healthy.query("SELECT message, via FROM messages WHERE idempotency_key = %s", (key,)) == [
            (text, "RabbitMQ")
        ]
    finally:
        drain_dead_letters(healthy)


def test_a_message_the_database_refused_is_stored_once_when_resent_after_the_fix(own_stack: Stack) -> None:
    """The scenario of issue 9: a constraint refuses one text while the others go through; after it is
    dropped, re-sending the dead letter stores it exactly once.

    Needs the consumer to dead-letter a delivery that the database refuses (with the database's reason in
    x-rejection-reason) and store the rest of its batch; a consumer that crashes on the refused batch never
    puts it in the dead-letter queue, and this test times out waiting for it.
    """
    stack = own_stack
    with stack.database() as conn, conn.cursor() as cursor:
        cursor.execute("ALTER TABLE messages ADD CONSTRAINT no_veneno CHECK (message <> 'veneno') NOT VALID")
    run = uuid.uuid4().hex[:8]
    poison_key = f"veneno-{run}"
    before = [(f"antes {i}".encode(), f"antes-{run}-{i}") for i in range(5)]
    after = [(f"después {i}".encode(), f"despues-{run}-{i}") for i in range(5)]
    publish(stack, [*before, (b"veneno", poison_key), *after])

    wait_for(lambda: dead_letter_count(stack) == 1, timeout=90, what="the refused message in the dead-letter queue")
    wait_for(
        lambda: all(stored(stack, key) == 1 for _, key in before + after),
        what="the messages around the refused one stored",
    )
    assert stored(stack, poison_key) == 0
    listed = dead_letters(stack, "list")
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()
    assert line.startswith(f"{poison_key} | ") and "no_veneno" in line and line.endswith("| 'veneno' (6 bytes)")

    with stack.database() as conn, conn.cursor() as cursor:
        cursor.execute("ALTER TABLE messages DROP CONSTRAINT no_veneno")
    resent = dead_letters(stack, "resend", poison_key)
    assert (resent.returncode, resent.stdout) == (0, f"resent {poison_key}\n"), resent.stderr
    assert dead_letter_count(stack) == 0
    wait_for(lambda: stored(stack, poison_key) == 1, what="the re-sent message stored")

    # A second re-publish of the same message_id (as after a crash between confirm and ack) stores nothing new.
    publish(stack, [(b"veneno", poison_key), (b"centinela", f"centinela-{run}")])
    wait_for(lambda: stored(stack, f"centinela-{run}") == 1, what="the sentinel behind the repeat stored")
    assert stored(stack, poison_key) == 1
    assert stack.query("SELECT message, via FROM messages WHERE idempotency_key = %s", (poison_key,)) == [
        ("veneno", "RabbitMQ")
    ]
    assert dead_letter_count(stack) == 0
    assert_ids_gap_free(stack)
