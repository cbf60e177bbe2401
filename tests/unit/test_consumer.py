"""The AMQP consumer in process: a fake channel and broker connection, the store replaced by a fake."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest
from pika.spec import Basic, BasicProperties

from msgsuite.database import DatabaseFailure, DatabaseUnavailable
from msgsuite.messages import StoredMessage, Via
from msgsuite.settings import BrokerSettings
from rabbitmq_server import __main__ as server
from rabbitmq_server import consumer as consumer_module
from rabbitmq_server.consumer import REASON_HEADER, Consumer

from .conftest import Exits
from .fakes import FakePool, FakeStoreFunction

BROKER = BrokerSettings(
    "rabbitmq", 5672, "suite", "secret", "messages", "messages.routing", "messages", "messages.dead-letter"
)


class FakeChannel:
    def __init__(self, events: list[tuple[Any, ...]]) -> None:
        self.events = events
        self.on_message: Callable[..., None] | None = None
        self.declare_failure: Exception | None = None

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.events.append(("ack", delivery_tag, multiple))

    def basic_publish(
        self, exchange: str, routing_key: str, body: bytes, properties: BasicProperties, mandatory: bool = False
    ) -> None:
        self.events.append(("dead-letter", exchange, routing_key, body, properties, mandatory))

    def confirm_delivery(self) -> None:
        self.events.append(("confirm",))

    def basic_qos(self, prefetch_count: int) -> None:
        self.events.append(("qos", prefetch_count))

    def basic_consume(self, queue: str, on_message: Callable[..., None], auto_ack: bool) -> None:
        assert auto_ack is False
        self.on_message = on_message

    def queue_declare(self, queue: str, passive: bool = False) -> None:
        if self.declare_failure is not None:
            raise self.declare_failure
        self.events.append(("declare", queue, passive))

    @property
    def acks(self) -> list[tuple[int, bool]]:
        return [(e[1], e[2]) for e in self.events if e[0] == "ack"]

    @property
    def dead_letters(self) -> list[tuple[bytes, BasicProperties]]:
        return [(e[3], e[4]) for e in self.events if e[0] == "dead-letter"]


class ScriptedStore(FakeStoreFunction):
    """Fails the calls numbered in `failures` (from 1) with that exception, then stores as usual."""

    def __init__(self) -> None:
        super().__init__()
        self.failures: dict[int, Exception] = {}

    def __call__(self, pool: object, via: Via, texts: Sequence[str], keys: Sequence[str | None]) -> list[StoredMessage]:
        self.failure = self.failures.get(len(self.transactions) + 1)
        return super().__call__(pool, via, texts, keys)


class SleepingConnection:
    """The consumer's broker connection while it retries the database: records each sleep."""

    def __init__(self, on_sleep: Callable[[], None] = lambda: None) -> None:
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.on_sleep()


class Harness:
    def __init__(self, tmp_path: Path, stored: ScriptedStore) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.channel = FakeChannel(self.events)
        self.stored = stored
        self.consumer = Consumer(
            BROKER,
            lambda texts, keys: stored(FakePool(), Via.RABBITMQ, texts, keys),  # type: ignore[arg-type]
            prefetch=100,
            liveness_file=str(tmp_path / "alive"),
        )
        self.connection = SleepingConnection()
        self.consumer._connection = self.connection

    def deliver(self, tag: int, body: bytes, message_id: str | None = None, redelivered: bool = False) -> None:
        method = Basic.Deliver(delivery_tag=tag, redelivered=redelivered, routing_key="messages")
        properties = BasicProperties(
            content_type="text/plain", message_id=message_id, headers={"sender": "test"}, delivery_mode=2
        )
        self.consumer._on_message(self.channel, method, properties, body)

    def store_and_acknowledge(self) -> None:
        self.consumer._store_and_acknowledge(self.channel)


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    stored = ScriptedStore()
    return Harness(tmp_path, stored)


@pytest.mark.parametrize(
    ("body", "message_id", "words"),
    [
        (b"\xff\xfe invalid", "poison-utf8", "not valid UTF-8 (byte 0)"),
        (b"", "poison-empty", "empty"),
        (b"   ", "poison-blank", "blank"),
        (b"x" * 4097, "poison-long", "4096"),
        (b"a\x00b", "poison-nul", "NUL"),
        (b"valid text", "k" * 201, "idempotency key"),
        (b"valid text", "with space", "idempotency key"),
    ],
    ids=["invalid UTF-8", "empty", "blank", "too long", "NUL", "long message_id", "bad message_id"],
)
def test_an_invalid_delivery_is_dead_lettered_with_its_reason_and_acknowledged(
    harness: Harness, body: bytes, message_id: str, words: str
) -> None:
    harness.deliver(7, body, message_id)
    [(dead_body, properties)] = harness.channel.dead_letters
    assert dead_body == body and words in properties.headers[REASON_HEADER]
    assert properties.message_id == message_id and properties.headers["sender"] == "test"
    assert properties.delivery_mode == 2 and properties.content_type == "text/plain"
    [publish] = [e for e in harness.events if e[0] == "dead-letter"]
    assert publish[1:3] == ("messages.dead-letter", "messages.routing") and publish[5] is True  # mandatory: confirmed
    assert harness.events[-1] == ("ack", 7, False)  # acknowledged only after the copy was confirmed
    assert harness.consumer._pending == []
    harness.store_and_acknowledge()
    assert harness.stored.transactions == []


def test_valid_deliveries_are_stored_in_one_transaction_then_acknowledged_together(harness: Harness) -> None:
    for tag in range(1, 6):
        harness.deliver(tag, f"mensaje {tag}".encode(), f"key-{tag}")
    assert harness.events == []  # nothing acknowledged before it is stored
    harness.store_and_acknowledge()
    assert harness.stored.transactions == [[f"mensaje {tag}" for tag in range(1, 6)]]
    assert [r.idempotency_key for r in harness.stored.records] == [f"key-{tag}" for tag in range(1, 6)]
    assert all(r.via == Via.RABBITMQ for r in harness.stored.records)
    assert harness.channel.acks == [(5, True)]


def test_invalid_deliveries_among_valid_ones_leave_the_rest_stored_in_order(harness: Harness) -> None:
    harness.deliver(1, b"uno", "k1")
    harness.deliver(2, b"\xc3\x28", "k2")
    harness.deliver(3, b"tres", None)
    harness.deliver(4, b"  ", "k4")
    harness.store_and_acknowledge()
    assert harness.stored.stored_texts == ["uno", "tres"]
    assert [body for body, _ in harness.channel.dead_letters] == [b"\xc3\x28", b"  "]
    assert harness.channel.acks == [(2, False), (4, False), (3, True)]


def test_a_delivery_the_database_refuses_is_dead_lettered_and_the_others_are_stored_once(harness: Harness) -> None:
    harness.stored.refused = {"veneno"}
    texts = ["uno", "dos", "veneno", "cuatro", "cinco", "seis"]
    for tag, text in enumerate(texts, start=1):
        harness.deliver(tag, text.encode(), f"key-{tag}", redelivered=tag == 3)
    harness.store_and_acknowledge()
    assert harness.stored.stored_texts == ["uno", "dos", "cuatro", "cinco", "seis"]  # each once, in order
    [(body, properties)] = harness.channel.dead_letters
    assert body == b"veneno" and properties.message_id == "key-3"
    assert properties.headers[REASON_HEADER] == (
        'the database refused the message: new row for relation "messages" violates check constraint "no_veneno"'
    )
    assert harness.channel.acks == [(6, True)]  # one acknowledgement, after the dead letter was confirmed
    assert harness.events[-1][0] == "ack"
    assert harness.connection.sleeps == []


def test_every_delivery_refused(harness: Harness) -> None:
    harness.stored.refused = {"a", "b"}
    harness.deliver(1, b"a", "k1")
    harness.deliver(2, b"b", "k2")
    harness.store_and_acknowledge()
    assert harness.stored.stored_texts == []
    assert [body for body, _ in harness.channel.dead_letters] == [b"a", b"b"]
    assert harness.channel.acks == [(2, True)]


def test_an_unavailable_database_is_waited_for_and_retried(harness: Harness) -> None:
    down = DatabaseUnavailable("the database system is starting up")
    harness.stored.failures = {1: down, 2: down}
    for tag in (1, 2, 3):
        harness.deliver(tag, f"m{tag}".encode(), f"k{tag}")
    harness.store_and_acknowledge()
    assert len(harness.connection.sleeps) == 2 and all(0 < s <= 5 for s in harness.connection.sleeps)
    assert harness.stored.stored_texts == ["m1", "m2", "m3"]
    assert harness.channel.acks == [(3, True)] and harness.channel.dead_letters == []


def test_what_was_done_before_an_outage_is_acknowledged_and_only_the_rest_retried(harness: Harness) -> None:
    harness.stored.refused = {"veneno"}
    # 1: all six refused, 2: [m1 m2 veneno] refused, 3: [m1] stored, 4: [m2] stored, 5: the rest: unavailable
    harness.stored.failures = {5: DatabaseUnavailable("terminating connection due to administrator command")}
    for tag, text in enumerate(["m1", "m2", "veneno", "m4", "m5", "m6"], start=1):
        harness.deliver(tag, text.encode(), f"k{tag}")
    harness.store_and_acknowledge()
    assert harness.stored.stored_texts == ["m1", "m2", "m4", "m5", "m6"]
    assert harness.stored.transactions[-1] == ["m4", "m5", "m6"]  # the retry holds only what was left
    assert harness.channel.acks == [(3, True), (6, True)]
    assert len(harness.connection.sleeps) == 1 and len(harness.channel.dead_letters) == 1


def test_a_stop_while_the_database_is_down_leaves_the_batch_unacknowledged(harness: Harness) -> None:
    harness.stored.failures = {1: DatabaseUnavailable("could not connect")}
    harness.connection.on_sleep = harness.consumer.stop
    harness.deliver(1, b"m1", "k1")
    harness.store_and_acknowledge()  # the first try fails; stopped during the wait, the retry stores it
    assert harness.stored.stored_texts == ["m1"] and harness.channel.acks == [(1, True)]
    harness.stored.failures = {n: DatabaseUnavailable("could not connect") for n in range(1, 10)}
    harness.deliver(2, b"m2", "k2")
    harness.store_and_acknowledge()  # stopping: no wait, no retry
    assert harness.stored.stored_texts == ["m1"] and len(harness.connection.sleeps) == 1
    assert harness.channel.acks == [(1, True)]  # m2: redelivered by the broker to the next consumer


@pytest.mark.parametrize(
    "error", [DatabaseFailure("odd (SQLSTATE XX000)"), RuntimeError("a bug")], ids=["failure", "unexpected"]
)
def test_any_other_error_escapes_so_that_the_process_restarts(harness: Harness, error: Exception) -> None:
    harness.stored.failures = {1: error}
    harness.deliver(1, b"m1", "k1")
    harness.deliver(2, b"m2", "k2")
    with pytest.raises(type(error)):
        harness.store_and_acknowledge()
    assert harness.channel.acks == [] and harness.channel.dead_letters == []


def test_an_error_after_part_of_the_batch_was_handled_acknowledges_that_part_first(harness: Harness) -> None:
    # Stored and dead-lettered deliveries must not be redelivered: one without a
    # message_id would be stored twice, a refused one dead-lettered twice.
    harness.stored.refused = {"veneno"}
    harness.stored.failures = {5: RuntimeError("a bug")}  # the retry of what follows the refused one
    for tag, text in enumerate(["m1", "m2", "veneno", "m4", "m5", "m6"], start=1):
        harness.deliver(tag, text.encode(), None)
    with pytest.raises(RuntimeError):
        harness.store_and_acknowledge()
    assert harness.stored.stored_texts == ["m1", "m2"]
    assert len(harness.channel.dead_letters) == 1
    assert harness.channel.acks == [(3, True)]


# Liveness is progress: the file is touched after a batch or an idle round trip to the broker.


class FakeBroker:
    """pika.BlockingConnection: each process_data_events call plays the next step of a script."""

    def __init__(self, channel: FakeChannel, steps: list[Callable[[], None]]) -> None:
        self._channel = channel
        self._steps = steps
        self.is_open = True

    def __call__(self, parameters: object) -> FakeBroker:
        return self

    def channel(self) -> FakeChannel:
        return self._channel

    def process_data_events(self, time_limit: float) -> None:
        self._steps.pop(0)()

    def close(self) -> None:
        self.is_open = False


def test_the_liveness_file_is_touched_after_progress_only(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_module, "IDLE_ROUND_TRIP_SECONDS", 0.0)
    monkeypatch.setattr(consumer_module, "touch", lambda path: harness.events.append(("touch",)))

    def deliver_two() -> None:
        for tag in (1, 2):
            method = Basic.Deliver(delivery_tag=tag, redelivered=False)
            assert harness.channel.on_message is not None
            harness.channel.on_message(harness.channel, method, BasicProperties(message_id=f"k{tag}"), b"hola")

    def broker_stops_answering() -> None:
        harness.channel.declare_failure = pika.exceptions.ChannelClosedByBroker(404, "NOT_FOUND - no queue")

    broker = FakeBroker(harness.channel, [deliver_two, lambda: None, broker_stops_answering])
    monkeypatch.setattr(consumer_module.pika, "BlockingConnection", broker)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        harness.consumer._consume()
    progress = [e for e in harness.events if e[0] in {"ack", "declare", "touch"}]
    assert progress == [("ack", 2, True), ("touch",), ("declare", "messages", True), ("touch",)]
    assert not broker.is_open  # closed: the broker redelivers what was not acknowledged


def test_an_error_escaping_the_consumer_ends_the_process(
    monkeypatch: pytest.MonkeyPatch, exits: Exits, caplog: pytest.LogCaptureFixture
) -> None:
    for name, value in {
        "POSTGRES_HOST": "db",
        "POSTGRES_DB": "messages",
        "POSTGRES_USER": "suite",
        "POSTGRES_PASSWORD": "secret",
        "RABBITMQ_HOST": "rabbitmq",
        "RABBITMQ_USER": "suite",
        "RABBITMQ_PASSWORD": "secret",
    }.items():
        monkeypatch.setenv(name, value)

    class FailingConsumer:
        def __init__(self, *args: object) -> None:
            pass

        def stop(self) -> None:
            pass

        def run(self) -> None:
            raise DatabaseFailure("odd (SQLSTATE XX000)")

    monkeypatch.setattr(server, "Consumer", FailingConsumer)
    monkeypatch.setattr(server.shutdown, "on_stop", lambda callback: None)  # no signal handlers in pytest
    monkeypatch.setattr(server.metrics, "serve", lambda port: None)
    monkeypatch.setattr(server, "wait_for_schema", lambda *args: True)  # no database here
    monkeypatch.setattr(server.logs, "configure", logging.getLogger)  # leave pytest's logging alone
    server.main()
    assert exits.codes == [70]
    assert any(r.exc_info and r.exc_info[0] is DatabaseFailure for r in caplog.records if r.name == "msgsuite.crash")
