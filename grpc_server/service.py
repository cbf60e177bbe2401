"""suite.v1.MessageService on grpc.aio: validates, stores through the shared code, answers the record."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import grpc
from suite.v1 import messages_pb2, messages_pb2_grpc

from msgsuite.database import DatabaseFailure, DatabaseUnavailable, MessageRefused
from msgsuite.messages import InvalidMessage, StoredMessage
from msgsuite.store import Messages

log = logging.getLogger("grpc-server")


def to_response(record: StoredMessage) -> messages_pb2.SendMessageResponse:
    response = messages_pb2.SendMessageResponse(
        id=record.id, total=record.total, via=record.via.value, repeated=record.repeated
    )
    response.created_at.FromDatetime(record.created_at)
    return response


class MessageService(messages_pb2_grpc.MessageServiceServicer):
    def __init__(self, messages: Messages) -> None:
        self._messages = messages

    async def SendMessage(
        self, request: messages_pb2.SendMessageRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> messages_pb2.SendMessageResponse:
        return (await self._store(context, [request]))[0]

    async def SendMessageBatch(
        self, request: messages_pb2.SendMessageBatchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> messages_pb2.SendMessageBatchResponse:
        return messages_pb2.SendMessageBatchResponse(messages=await self._store(context, request.messages))

    async def _store(
        self, context: grpc.aio.ServicerContext[Any, Any], requests: Sequence[messages_pb2.SendMessageRequest]
    ) -> list[messages_pb2.SendMessageResponse]:
        try:
            records = await self._messages.validate_and_store(
                [r.message for r in requests], [r.idempotency_key or None for r in requests]
            )
        except InvalidMessage as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, error.reason)
        except DatabaseUnavailable as error:
            log.warning("database unavailable: %s", error)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the database is unavailable; retry later")
        except MessageRefused as error:
            log.warning("the database refused a message: %s", error.reason)
            await context.abort(grpc.StatusCode.INTERNAL, f"the database refused the message: {error.reason}")
        except DatabaseFailure as error:
            log.error("database error", exc_info=error)
            await context.abort(
                grpc.StatusCode.INTERNAL, "the database failed to store the message; see the grpc-server log"
            )
        except Exception:
            log.exception("unexpected error while storing")
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the grpc-server log")
        return [to_response(record) for record in records]
