"""The gRPC path: the service, its errors, health checking and reflection."""

from __future__ import annotations

import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from suite.v1 import messages_pb2, messages_pb2_grpc

from harness.stack import Stack, receive_frames


@pytest.fixture
def channel(healthy: Stack):  # type: ignore[no-untyped-def]
    with grpc.insecure_channel(healthy.grpc_target) as channel:
        yield channel


def send(channel: grpc.Channel, message: str, key: str = "") -> messages_pb2.SendMessageResponse:
    stub = messages_pb2_grpc.MessageServiceStub(channel)
    return stub.SendMessage(messages_pb2.SendMessageRequest(message=message, idempotency_key=key), timeout=10)


def test_grpc_stores_answers_the_record_and_notifies(healthy: Stack, channel: grpc.Channel) -> None:
    message = f"hola gRPC {uuid.uuid4().hex[:6]}"
    with healthy.listen(after=healthy.total()) as listener:
        response = send(channel, message)
        frame = receive_frames(listener, response.id)[-1]
    assert response.total == response.id and response.via == "GRPC" and not response.repeated
    assert response.created_at.seconds > 0
    assert frame["text"] == (
        f"Se ingresó un registro mediante GRPC , con el mensaje {message}, total de mensajes {response.id}"
    )


def test_a_repeated_grpc_key_stores_once(healthy: Stack, channel: grpc.Channel) -> None:
    key = f"grpc-{uuid.uuid4()}"
    first, second = send(channel, "una vez", key), send(channel, "una vez", key)
    assert second.id == first.id and second.repeated and not first.repeated
    assert healthy.query("SELECT count(*) FROM messages WHERE idempotency_key = %s", (key,)) == [(1,)]


@pytest.mark.parametrize(
    ("message", "code", "words"),
    [
        ("", grpc.StatusCode.INVALID_ARGUMENT, "empty"),
        (" \t ", grpc.StatusCode.INVALID_ARGUMENT, "blank"),
        ("x" * 4097, grpc.StatusCode.INVALID_ARGUMENT, "4096"),
        ("a\x00b", grpc.StatusCode.INVALID_ARGUMENT, "NUL"),
        ("x" * 18_000_000, grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
    ],
    ids=["empty", "blank", "too long", "NUL", "over the size limit"],
)
def test_bad_grpc_input_is_refused_and_stores_nothing(
    healthy: Stack, channel: grpc.Channel, message: str, code: grpc.StatusCode, words: str
) -> None:
    before = healthy.total()
    with pytest.raises(grpc.RpcError) as error:
        send(channel, message)
    assert error.value.code() == code
    assert words in (error.value.details() or "")
    assert healthy.total() == before
    assert send(channel, "todavía funciona").id == before + 1


def test_health_service_reports_serving(channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "suite.v1.MessageService"):
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_and_describes_the_services(channel: grpc.Channel) -> None:
    database = ProtoReflectionDescriptorDatabase(channel)
    services = set(database.get_services())
    assert {"suite.v1.MessageService", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= services
    descriptor = database.FindFileContainingSymbol("suite.v1.MessageService")
    assert descriptor.package == "suite.v1"


def test_grpc_client_sends_one_message_per_stdin_line(healthy: Stack) -> None:
    result = healthy.run_client("grpc-client", input="línea uno\nlínea dos\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("stored id=") for line in lines)
    ids = [int(line.split("id=")[1].split()[0]) for line in lines]
    rows = healthy.query("SELECT id, via, message FROM messages WHERE id = ANY(%s) ORDER BY id", (ids,))
    assert rows == [(ids[0], "GRPC", "línea uno"), (ids[1], "GRPC", "línea dos")]
