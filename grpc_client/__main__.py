"""python -m grpc_client: the shared client CLI over gRPC (GRPC_TARGET, default grpc-server:50051)."""
from __future__ import annotations

from collections.abc import Callable

import grpc
from suite.v1 import messages_pb2, messages_pb2_grpc

from msgsuite import cli
from msgsuite.client import Receipt, Rejected, Sender, Unreachable
from msgsuite.settings import integer, optional

RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED}


class GrpcSender:
    def __init__(self, target: str, timeout: float) -> None:
        self._channel = grpc.insecure_channel(target)
        self._stub = messages_pb2_grpc.MessageServiceStub(self._channel)
        self._timeout = timeout

    def send(self, text: str, key: str) -> Receipt:
        request = messages_pb2.SendMessageRequest(message=text, idempotency_key=key)
        try:
            response = self._stub.SendMessage(request, timeout=self._timeout)
        except grpc.RpcError as error:
            reason = f"{error.code().name}: {error.details()}"
            raise (Unreachable if error.code() in RETRYABLE else Rejected)(reason) from None
        return Receipt(id=response.id, repeated=response.repeated)

    def close(self) -> None:
        self._channel.close()


def sender_factory() -> Callable[[], Sender]:
    target = optional("GRPC_TARGET", "grpc-server:50051")
    timeout = integer("CLIENT_TIMEOUT_SECONDS", 10)
    return lambda: GrpcSender(target, timeout)


if __name__ == "__main__":
    cli.main("grpc-client", sender_factory)
