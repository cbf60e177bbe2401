"""The gRPC servicer and its health watcher in process: a fake context, the real MessageStore storing into a fake."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

import grpc
import pytest
from grpc_health.v1 import health_pb2
from suite.v1 import messages_pb2

from grpc_server.__main__ import MESSAGE_SERVICE, GrpcServerSettings, _exit_unless_cancelled, serve, watch_database
from grpc_server.service import MessageService
from msgsuite import store
from msgsuite.auth import RateLimit, TokenCheck
from msgsuite.database import DatabaseFailure, DatabaseUnavailable, MessageRefused
from msgsuite.messages import Via
from msgsuite.no_storage import NothingStored
from msgsuite.store import MessageStore
from msgsuite.tls import TlsSettings

from .conftest import Exits
from .fakes import NO_DATABASE, FakeStoreFunction

T = TypeVar("T")


class Aborted(Exception):
    """What a real ServicerContext.abort raises: the call ends with this status."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, details)
        self.code = code
        self.details = details


class FakeContext:
    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)


def call(coroutine: Awaitable[T]) -> T:
    async def awaited() -> T:
        return await coroutine

    return asyncio.run(awaited())


class Grpc:
    def __init__(self, service: MessageService, stored: FakeStoreFunction) -> None:
        self.service = service
        self.stored = stored

    def send(self, message: str, key: str = "") -> messages_pb2.SendMessageResponse:
        request = messages_pb2.SendMessageRequest(message=message, idempotency_key=key)
        return call(self.service.SendMessage(request, FakeContext()))  # type: ignore[arg-type]

    def send_batch(self, *messages: str | tuple[str, str]) -> messages_pb2.SendMessageBatchResponse:
        requests = [
            messages_pb2.SendMessageRequest(message=m)
            if isinstance(m, str)
            else messages_pb2.SendMessageRequest(message=m[0], idempotency_key=m[1])
            for m in messages
        ]
        batch = messages_pb2.SendMessageBatchRequest(messages=requests)
        return call(self.service.SendMessageBatch(batch, FakeContext()))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def grpc_service() -> Iterator[Grpc]:
    stored = FakeStoreFunction()
    with pytest.MonkeyPatch.context() as patch:
        # MessageStore validates and group-commits for real; only the SQL call is replaced.
        patch.setattr(store, "store_messages_async", stored.on_the_loop)
        yield Grpc(MessageService(MessageStore(NO_DATABASE, Via.GRPC)), stored)


@pytest.fixture
def service(grpc_service: Grpc) -> Grpc:
    grpc_service.stored.reset()
    return grpc_service


def test_a_message_is_stored_and_answered_with_its_record(service: Grpc) -> None:
    response = service.send("hola gRPC")
    assert (response.id, response.total, response.via, response.repeated) == (1, 1, "GRPC", False)
    assert response.created_at.ToJsonString() == "2026-01-02T03:04:05Z"
    assert service.stored.records[0].idempotency_key is None  # an empty key is no key


def test_a_repeated_key_answers_the_original_record(service: Grpc) -> None:
    first, second = service.send("una vez", "grpc-1"), service.send("una vez", "grpc-1")
    assert second.id == first.id and second.repeated and not first.repeated
    assert service.stored.stored_texts == ["una vez"]


def test_a_batch_answers_one_record_per_message_in_order(service: Grpc) -> None:
    response = service.send_batch(*(f"lote gRPC {i}" for i in range(20)))
    assert [m.id for m in response.messages] == list(range(1, 21))
    assert all(m.via == "GRPC" and not m.repeated for m in response.messages)
    assert service.stored.transactions == [[f"lote gRPC {i}" for i in range(20)]]
    again = service.send_batch(("nuevo", "k-new"), ("nuevo", "k-new"))
    assert [m.repeated for m in again.messages] == [False, True] and again.messages[0].id == 21


@pytest.mark.parametrize(
    ("message", "key", "words"),
    [
        ("", "", "empty"),
        (" \t ", "", "blank"),
        ("x" * 4097, "", "4096"),
        ("a\x00b", "", "NUL"),
        ("hola", "k" * 201, "idempotency key"),
        ("hola", "con espacio", "idempotency key"),
    ],
    ids=["empty", "blank", "too long", "NUL", "over-long key", "key with a space"],
)
def test_bad_input_is_invalid_argument_and_stores_nothing(service: Grpc, message: str, key: str, words: str) -> None:
    with pytest.raises(Aborted) as aborted:
        service.send(message, key)
    assert aborted.value.code == grpc.StatusCode.INVALID_ARGUMENT and words in aborted.value.details
    assert service.stored.transactions == []


@pytest.mark.parametrize(
    ("messages", "words"),
    [
        (("bien", "a\x00"), "message 1 of the batch: message must not contain the NUL character"),
        (("   ", "bien"), "message 0 of the batch: message must not be blank"),
        ((), "a batch needs at least one message"),
        (("x",) * 1001, "a batch holds at most 1000 messages, not 1001"),
    ],
    ids=["NUL member", "blank member", "empty batch", "over 1000"],
)
def test_a_bad_batch_is_invalid_argument_naming_its_place(service: Grpc, messages: tuple[str, ...], words: str) -> None:
    with pytest.raises(Aborted) as aborted:
        service.send_batch(*messages)
    assert aborted.value.code == grpc.StatusCode.INVALID_ARGUMENT and aborted.value.details == words
    assert service.stored.transactions == []


def test_an_unavailable_database_is_unavailable(service: Grpc) -> None:
    service.stored.failure = DatabaseUnavailable("terminating connection due to administrator command")
    for call in (lambda: service.send("x"), lambda: service.send_batch("x", "y")):
        with pytest.raises(Aborted) as aborted:
            call()
        assert aborted.value.code == grpc.StatusCode.UNAVAILABLE
        assert aborted.value.details == "the database is unavailable; retry later"


def test_a_refused_message_is_internal_naming_the_database_reason(service: Grpc) -> None:
    service.stored.refused = {"veneno"}
    with pytest.raises(Aborted) as aborted:
        service.send("veneno")
    assert aborted.value.code == grpc.StatusCode.INTERNAL
    assert aborted.value.details == (
        'the database refused the message: new row for relation "messages" violates check constraint "no_veneno"'
    )
    with pytest.raises(Aborted) as batch:
        service.send_batch("bien", "veneno")
    assert batch.value.code == grpc.StatusCode.INTERNAL and "refused the message" in batch.value.details
    assert service.stored.stored_texts == []
    assert service.send("bien").id == 1


def test_a_refusal_from_the_store_is_internal_with_its_reason(service: Grpc) -> None:
    service.stored.failure = MessageRefused("value too long for type character varying(10)")
    with pytest.raises(Aborted) as aborted:
        service.send("x")
    assert aborted.value.code == grpc.StatusCode.INTERNAL
    assert aborted.value.details == "the database refused the message: value too long for type character varying(10)"


def test_a_database_failure_is_internal_without_its_sql(service: Grpc, caplog: pytest.LogCaptureFixture) -> None:
    service.stored.failure = DatabaseFailure('syntax error at or near "SELEC" (SQLSTATE 42601)')
    with pytest.raises(Aborted) as aborted:
        service.send("x")
    assert aborted.value.code == grpc.StatusCode.INTERNAL
    assert aborted.value.details == "the database failed to store the message; see the grpc-server log"
    assert any(r.exc_info and "SELEC" in str(r.exc_info[1]) for r in caplog.records)  # logged with its traceback


def test_an_unexpected_error_is_internal_and_logged(service: Grpc, caplog: pytest.LogCaptureFixture) -> None:
    service.stored.failure = RuntimeError("secret internals")
    with pytest.raises(Aborted) as aborted:
        service.send("x")
    assert aborted.value.code == grpc.StatusCode.INTERNAL
    assert aborted.value.details == "internal error; see the grpc-server log"
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)


# The health watcher


class ScriptedConnection:
    """Answers SELECT 1 or fails by a script, one step per check; the last step repeats."""

    def __init__(self, script: list[BaseException | None]) -> None:
        self.script = script
        self.checks = 0

    async def fetch_all(self, statement: str, parameters: object) -> list[tuple[Any, ...]]:
        step = self.script[min(self.checks, len(self.script) - 1)]
        self.checks += 1
        if step is not None:
            raise step
        return [(1,)]


class RecordingHealth:
    def __init__(self) -> None:
        self.statuses: list[tuple[str, int]] = []

    async def set(self, name: str, status: int) -> None:
        self.statuses.append((name, status))


class Pauses:
    """The watcher's pause between checks: never waits, and cancels it after `rounds` checks."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if len(self.waits) >= self.rounds:
            raise asyncio.CancelledError


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
BOTH = ("", MESSAGE_SERVICE)


def watch(connection: ScriptedConnection, rounds: int) -> tuple[RecordingHealth, Pauses]:
    health, pauses = RecordingHealth(), Pauses(rounds)
    with pytest.raises(asyncio.CancelledError):
        call(watch_database(connection, health, pauses))  # type: ignore[arg-type]
    return health, pauses


def test_the_health_status_follows_the_database() -> None:
    down = DatabaseUnavailable("could not connect to server")
    connection = ScriptedConnection([down, down, None, None, None, DatabaseFailure("odd (SQLSTATE XX000)"), None])
    health, pauses = watch(connection, rounds=7)
    assert health.statuses == [
        *((name, NOT_SERVING) for name in BOTH),
        *((name, SERVING) for name in BOTH),
        *((name, NOT_SERVING) for name in BOTH),
        *((name, SERVING) for name in BOTH),
    ]
    assert pauses.waits == [1.0, 1.0, 2.0, 2.0, 2.0, 1.0, 2.0]  # looks again sooner while down


def test_any_other_error_in_the_watcher_ends_the_process(exits: Exits) -> None:
    connection = ScriptedConnection([None, RuntimeError("a bug in the watcher")])
    health = RecordingHealth()

    async def run_watcher() -> None:
        watcher = watch_database(connection, health, Pauses(rounds=10))  # type: ignore[arg-type]
        task = asyncio.create_task(watcher, name="health-watcher")
        task.add_done_callback(_exit_unless_cancelled)
        await asyncio.wait([task])
        await asyncio.sleep(0)  # done callbacks run on the next turn of the loop

    asyncio.run(run_watcher())
    assert exits.codes == [70]
    assert health.statuses == [("", SERVING), (MESSAGE_SERVICE, SERVING)]  # never frozen silently


# The server's life: serve() until a stop is asked for, and never past a server that stopped itself


def serving_settings() -> GrpcServerSettings:
    return GrpcServerSettings(NO_DATABASE, 0, 0, TlsSettings(), TokenCheck(None), RateLimit(5000, 10000))


def test_a_stop_signal_ends_serve_cleanly(exits: Exits) -> None:
    async def scenario() -> None:
        serving = asyncio.create_task(serve(serving_settings(), NothingStored(Via.GRPC), lambda: False))
        await asyncio.sleep(0.5)  # started, its signal handlers in place
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(serving, 15)

    asyncio.run(scenario())
    assert exits.codes == []


def test_a_server_that_stops_without_being_asked_ends_the_process(
    exits: Exits, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[grpc.aio.Server] = []
    real_server = grpc.aio.server

    def recorded(*args: Any, **kwargs: Any) -> grpc.aio.Server:
        created.append(real_server(*args, **kwargs))
        return created[-1]

    monkeypatch.setattr(grpc.aio, "server", recorded)

    async def scenario() -> None:
        serving = asyncio.create_task(serve(serving_settings(), NothingStored(Via.GRPC), lambda: False))
        await asyncio.sleep(0.5)
        await created[0].stop(None)  # as gRPC does when its serving loop fails
        await asyncio.wait_for(serving, 15)  # exit_now is recorded, not done, so serve goes on to its end

    asyncio.run(scenario())
    assert exits.codes == [70]
