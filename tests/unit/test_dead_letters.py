"""The dead-letter command against a fake broker that keeps unacknowledged messages as RabbitMQ does."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pika
import pika.exceptions
import pytest
from pika.spec import BasicProperties

from msgsuite.settings import BrokerSettings
from rabbitmq_server.consumer import REASON_HEADER
from rabbitmq_server.dead_letters import EXIT_FAILED, EXIT_OK, EXIT_USAGE, DeadLetter, main, parse, run

BROKER = BrokerSettings("rabbitmq", 5672, "suite", "secret", "messages", "route", "messages", "messages.dead-letter")
QUEUE = "messages.dead-letter"


class FakeBroker:
    """One dead-letter queue; taken messages stay unacknowledged until acked, and return to the front on close."""

    def __init__(self, letters: list[tuple[str | None, str, bytes]]) -> None:
        self.queue: list[tuple[BasicProperties, bytes]] = [
            (
                BasicProperties(
                    message_id=key,
                    content_type="text/plain",
                    delivery_mode=2,
                    headers={REASON_HEADER: reason, "trace": "t-1"},
                ),
                body,
            )
            for key, reason, body in letters
        ]
        self.unacked: dict[int, tuple[BasicProperties, bytes]] = {}
        self.published: list[tuple[str, str, bytes, BasicProperties, bool]] = []
        self.events: list[str] = []
        self.next_tag = 1
        self.refuse_publish_number: int | None = None  # the nth publish is nacked
        self.dead_letter_again = False  # what is re-published comes straight back (still refused)
        self.is_open = True
        self.confirms = False

    # the connection
    def channel(self) -> FakeBroker:
        return self

    def close(self) -> None:
        self.queue = list(self.unacked.values()) + self.queue
        self.unacked = {}
        self.is_open = False

    # the channel
    def confirm_delivery(self) -> None:
        self.confirms = True

    def queue_declare(self, queue: str, passive: bool = False) -> SimpleNamespace:
        assert queue == QUEUE and passive
        return SimpleNamespace(method=SimpleNamespace(message_count=len(self.queue)))

    def basic_get(self, queue: str, auto_ack: bool = False) -> tuple[object, BasicProperties | None, bytes | None]:
        assert queue == QUEUE and not auto_ack
        if not self.queue:
            return None, None, None
        properties, body = self.queue.pop(0)
        tag, self.next_tag = self.next_tag, self.next_tag + 1
        self.unacked[tag] = (properties, body)
        return SimpleNamespace(delivery_tag=tag), properties, body

    def basic_publish(
        self, exchange: str, routing_key: str, body: bytes, properties: BasicProperties, mandatory: bool = False
    ) -> None:
        assert self.confirms, "re-publishes must wait for the broker's confirm"
        if self.refuse_publish_number == len(self.published) + 1:
            raise pika.exceptions.NackError([])
        self.published.append((exchange, routing_key, body, properties, mandatory))
        self.events.append(f"publish {properties.message_id}")
        if self.dead_letter_again:
            self.queue.append((properties, body))

    def basic_ack(self, delivery_tag: int = 0, multiple: bool = False) -> None:
        assert not multiple
        properties, _ = self.unacked.pop(delivery_tag)
        self.events.append(f"ack {properties.message_id}")


LETTERS = [
    ("k-1", "message is not valid UTF-8 (byte 0)", b"\xff\xfe invalid"),
    ("k-2", 'new row for relation "messages" violates check constraint "no_veneno"', b"veneno"),
    ("k-3", "message must not be blank", b"   "),
]


def run_with(broker: FakeBroker, *argv: str) -> tuple[int, list[str], str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(parse(argv), BROKER, connect=lambda _: broker, out=out, err=err)  # type: ignore[arg-type,return-value]
    return code, out.getvalue().splitlines(), err.getvalue()


def queued_keys(broker: FakeBroker) -> list[str | None]:
    return [properties.message_id for properties, _ in broker.queue]


def test_list_shows_each_letter_with_its_reason_and_takes_nothing() -> None:
    broker = FakeBroker(LETTERS)
    code, lines, err = run_with(broker, "list")
    assert code == EXIT_OK and not broker.is_open
    assert lines == [
        "k-1 | message is not valid UTF-8 (byte 0) | b'\\xff\\xfe invalid' (10 bytes)",
        'k-2 | new row for relation "messages" violates check constraint "no_veneno" | \'veneno\' (6 bytes)',
        "k-3 | message must not be blank | '   ' (3 bytes)",
    ]
    assert "3 in 'messages.dead-letter'" in err
    assert queued_keys(broker) == ["k-1", "k-2", "k-3"] and broker.published == [] and broker.events == []


def test_resend_one_key_publishes_it_as_it_was_then_acknowledges_its_copy() -> None:
    broker = FakeBroker(LETTERS)
    code, lines, _ = run_with(broker, "resend", "k-2")
    assert (code, lines) == (EXIT_OK, ["resent k-2"])
    [(exchange, routing_key, body, properties, mandatory)] = broker.published
    assert (exchange, routing_key, body, mandatory) == ("messages", "route", b"veneno", True)
    assert properties.message_id == "k-2" and properties.content_type == "text/plain"
    assert properties.delivery_mode == 2 and properties.headers == {"trace": "t-1"}
    assert broker.events == ["publish k-2", "ack k-2"]
    assert queued_keys(broker) == ["k-1", "k-3"]  # the others are back, in their order


def test_resend_all_sends_each_once_even_when_they_are_dead_lettered_again() -> None:
    broker = FakeBroker(LETTERS)
    broker.dead_letter_again = True
    code, lines, _ = run_with(broker, "resend", "--all")
    assert (code, lines) == (EXIT_OK, ["resent k-1", "resent k-2", "resent k-3"])
    assert broker.events == ["publish k-1", "ack k-1", "publish k-2", "ack k-2", "publish k-3", "ack k-3"]


def test_a_key_not_in_the_queue_exits_1_and_the_found_ones_are_still_sent() -> None:
    broker = FakeBroker(LETTERS)
    code, lines, err = run_with(broker, "resend", "k-3", "nope")
    assert (code, lines) == (EXIT_FAILED, ["resent k-3"])
    assert "no dead letter with message_id 'nope'" in err
    assert queued_keys(broker) == ["k-1", "k-2"]


def test_a_refused_publish_leaves_that_letter_and_the_rest_in_the_queue() -> None:
    broker = FakeBroker(LETTERS)
    broker.refuse_publish_number = 2
    code, lines, err = run_with(broker, "resend", "--all")
    assert (code, lines) == (EXIT_FAILED, ["resent k-1"])
    assert "did not accept" in err and "Traceback" not in err
    assert broker.events == ["publish k-1", "ack k-1"]
    assert queued_keys(broker) == ["k-2", "k-3"]


def test_an_unreachable_broker_exits_1_with_the_reason() -> None:
    def refuse(_: object) -> None:
        raise pika.exceptions.AMQPConnectionError("connection refused")

    err = io.StringIO()
    code = run(parse(["list"]), BROKER, connect=refuse, out=io.StringIO(), err=err)  # type: ignore[arg-type]
    assert code == EXIT_FAILED and "broker unreachable" in err.getvalue()


@pytest.mark.parametrize("argv", [[], ["resend"], ["resend", "--all", "k-1"], ["purge"]])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == EXIT_USAGE
    assert "usage:" in capsys.readouterr().err


def test_missing_broker_settings_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RABBITMQ_HOST", raising=False)
    assert main(["list"]) == EXIT_USAGE


def test_a_long_body_is_cut_and_a_letter_without_key_or_reason_still_shows() -> None:
    letter = DeadLetter(1, BasicProperties(), "ñ".encode() * 100)
    assert letter.line() == f"- | no reason recorded | {'ñ' * 40!r}… (200 bytes)"
    broker_dead = DeadLetter(2, BasicProperties(headers={"x-first-death-reason": "expired", "x-death": []}), b"a")
    assert broker_dead.reason == "expired" and broker_dead.properties_to_resend().headers is None
