"""Which gRPC answers the client sends again (Unreachable) and which it reports as refused (Rejected)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from suite.v1 import messages_pb2, messages_pb2_grpc

from grpc_client.sender import GrpcSender
from msgsuite.client import Rejected, Unreachable


class Answering(messages_pb2_grpc.MessageServiceServicer):
    def __init__(self) -> None:
        self.code = grpc.StatusCode.OK

    def SendMessage(
        self, request: messages_pb2.SendMessageRequest, context: grpc.ServicerContext
    ) -> messages_pb2.SendMessageResponse:
        if self.code != grpc.StatusCode.OK:
            context.abort(self.code, f"answered {self.code.name}")
        return messages_pb2.SendMessageResponse(id=7, total=7, via="GRPC")


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Answering, GrpcSender]]:
    servicer = Answering()
    server = grpc.server(futures.ThreadPoolExecutor(2))
    messages_pb2_grpc.add_MessageServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    sender = GrpcSender(f"127.0.0.1:{port}", timeout=5)
    try:
        yield servicer, sender
    finally:
        sender.close()
        server.stop(None)


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        # what a stopping server answers to the calls it had not started (grpc/grpc#41785)
        grpc.StatusCode.CANCELLED,
    ],
)
def test_answers_of_a_server_going_away_are_sent_again(
    served: tuple[Answering, GrpcSender], code: grpc.StatusCode
) -> None:
    servicer, sender = served
    servicer.code = code
    with pytest.raises(Unreachable, match=code.name):
        sender.send("hola", "k")


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INTERNAL]
)
def test_a_refusal_is_not_sent_again(served: tuple[Answering, GrpcSender], code: grpc.StatusCode) -> None:
    servicer, sender = served
    servicer.code = code
    with pytest.raises(Rejected, match=code.name):
        sender.send("hola", "k")


def test_a_stored_message_gives_its_receipt(served: tuple[Answering, GrpcSender]) -> None:
    servicer, sender = served
    servicer.code = grpc.StatusCode.OK
    receipt = sender.send("hola", "k")
    assert (receipt.id, receipt.repeated) == (7, False)
