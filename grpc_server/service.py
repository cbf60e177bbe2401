"""suite.v1.MessageService: validates, stores through the shared code, answers the record."""
from __future__ import annotations

import logging

import grpc
from suite.v1 import messages_pb2, messages_pb2_grpc

from msgsuite.database import ConnectionPool, DatabaseUnavailable
from msgsuite.messages import InvalidMessage, StoredMessage, Via, validate_batch, validate_key, validate_text
from msgsuite.store import store_message, store_messages

log = logging.getLogger("grpc-server")


def to_response(record: StoredMessage) -> messages_pb2.SendMessageResponse:
    response = messages_pb2.SendMessageResponse(
        id=record.id, total=record.total, via=record.via.value, repeated=record.repeated
    )
    response.created_at.FromDatetime(record.created_at)
    return response


class MessageService(messages_pb2_grpc.MessageServiceServicer):
    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def SendMessage(
        self, request: messages_pb2.SendMessageRequest, context: grpc.ServicerContext
    ) -> messages_pb2.SendMessageResponse:
        try:
            text = validate_text(request.message)
            key = validate_key(request.idempotency_key or None)
        except InvalidMessage as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, error.reason)
        try:
            record = store_message(self._pool, Via.GRPC, text, key)
        except DatabaseUnavailable as error:
            log.warning("database unavailable: %s", error)
            context.abort(grpc.StatusCode.UNAVAILABLE, "the database is unavailable; retry later")
        log.debug("stored id=%d repeated=%s", record.id, record.repeated)
        return to_response(record)

    def SendMessageBatch(
        self, request: messages_pb2.SendMessageBatchRequest, context: grpc.ServicerContext
    ) -> messages_pb2.SendMessageBatchResponse:
        keys = [item.idempotency_key or None for item in request.messages]
        try:
            texts = validate_batch([item.message for item in request.messages], keys)
        except InvalidMessage as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, error.reason)
        try:
            records = store_messages(self._pool, Via.GRPC, texts, keys)
        except DatabaseUnavailable as error:
            log.warning("database unavailable: %s", error)
            context.abort(grpc.StatusCode.UNAVAILABLE, "the database is unavailable; retry later")
        return messages_pb2.SendMessageBatchResponse(messages=[to_response(record) for record in records])
