"""GrpcSender: messages over gRPC to suite.v1.MessageService."""

from __future__ import annotations

import json
from typing import TypeVar

import grpc
from suite.v1 import messages_pb2, messages_pb2_grpc

from msgsuite.client import Receipt, Rejected, Unreachable

Request = TypeVar("Request")
Response = TypeVar("Response")

# Every address the name resolves to (each replica) gets calls in turn, and
# the resolver is asked again when one goes away.
ROUND_ROBIN = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})

# CANCELLED too: this client never cancels its own calls, while a server that
# stops cancels the calls it received but had not handed to a handler yet
# (grpc/grpc#41785). The idempotency key makes sending again safe.
RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.CANCELLED,
}


class GrpcSender:
    def __init__(self, target: str, timeout: float, root_certificates: bytes | None = None) -> None:
        """root_certificates: the CA to verify the server with over TLS; None for plain text."""
        options = [("grpc.service_config", ROUND_ROBIN)]
        if root_certificates is None:
            self._channel = grpc.insecure_channel(dns_target(target), options=options)
        else:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.secure_channel(dns_target(target), credentials, options=options)
        self._stub = messages_pb2_grpc.MessageServiceStub(self._channel)
        self._timeout = timeout

    def send(self, text: str, key: str) -> Receipt:
        request = messages_pb2.SendMessageRequest(message=text, idempotency_key=key)
        response = self._call(self._stub.SendMessage, request)
        return Receipt(id=response.id, repeated=response.repeated)

    def send_batch(self, texts: list[str], keys: list[str]) -> list[Receipt]:
        request = messages_pb2.SendMessageBatchRequest(
            messages=[
                messages_pb2.SendMessageRequest(message=text, idempotency_key=key)
                for text, key in zip(texts, keys, strict=True)
            ]
        )
        response = self._call(self._stub.SendMessageBatch, request)
        return [Receipt(id=item.id, repeated=item.repeated) for item in response.messages]

    def _call(self, method: grpc.UnaryUnaryMultiCallable[Request, Response], request: Request) -> Response:
        try:
            return method(request, timeout=self._timeout)
        except grpc.RpcError as error:
            reason = f"{error.code().name}: {error.details()}"
            raise (Unreachable if error.code() in RETRYABLE else Rejected)(reason) from None

    def close(self) -> None:
        self._channel.close()


def dns_target(target: str) -> str:
    """host:port as a dns:/// target, so round_robin sees every address (an explicit scheme is kept)."""
    return target if "://" in target or target.startswith(("dns:", "unix:", "ipv4:", "ipv6:")) else f"dns:///{target}"
