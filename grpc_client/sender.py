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


# The server's rate limit: RESOURCE_EXHAUSTED with this trailing metadata key
# (seconds). The size refusal is RESOURCE_EXHAUSTED without it, and is final.
RETRY_AFTER_KEY = "retry-after"


def retry_after(error: grpc.RpcError) -> float | None:
    """The seconds a rate-limited call was told to wait; None for any other failure."""
    if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return None
    for item in error.trailing_metadata() or ():
        value: str | bytes = item.value
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
        if item.key == RETRY_AFTER_KEY and text.isdigit():
            return float(text)
    return None


class GrpcSender:
    def __init__(
        self, target: str, timeout: float, root_certificates: bytes | None = None, token: str | None = None
    ) -> None:
        """root_certificates: the CA to verify the server with over TLS; None for plain text.
        token: the bearer token sent with every call (AUTH=on); None sends none."""
        options = [("grpc.service_config", ROUND_ROBIN)]
        if root_certificates is None:
            self._channel = grpc.insecure_channel(dns_target(target), options=options)
        else:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.secure_channel(dns_target(target), credentials, options=options)
        self._stub = messages_pb2_grpc.MessageServiceStub(self._channel)
        self._timeout = timeout
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None

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
            return method(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            reason = f"{error.code().name}: {error.details()}"
            wait = retry_after(error)
            if wait is not None:
                raise Unreachable(reason, wait) from None
            raise (Unreachable if error.code() in RETRYABLE else Rejected)(reason) from None

    def close(self) -> None:
        self._channel.close()


def dns_target(target: str) -> str:
    """host:port as a dns:/// target, so round_robin sees every address (an explicit scheme is kept)."""
    return target if "://" in target or target.startswith(("dns:", "unix:", "ipv4:", "ipv6:")) else f"dns:///{target}"
