"""Who may call, and how often: the bearer token (AUTH=on) and the request-rate limit, as a server interceptor.

Every service but grpc.health.v1.Health needs the token in the metadata
`authorization: Bearer <token>` (reflection too: it is a way in like any other);
health stays open for probes. A missing or wrong token gets UNAUTHENTICATED,
the same words either way. Too many requests get RESOURCE_EXHAUSTED with the
trailing metadata `retry-after` (whole seconds): the status gRPC defines for
an exhausted quota, told apart from the size refusal (also RESOURCE_EXHAUSTED,
raised by gRPC itself, which never carries that key), so a client retries the
one and not the other.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from msgsuite.auth import REFUSAL, RateLimiter, TokenCheck, bearer_token, retry_after_header
from msgsuite.messages import Via
from msgsuite.metrics import REQUESTS_REFUSED

OPEN_PREFIX = "/grpc.health.v1.Health/"
RETRY_AFTER_KEY = "retry-after"
Context = grpc.aio.ServicerContext[Any, Any]


def caller_address(peer: str) -> str:
    """The host of a gRPC peer string (ipv4:10.0.0.5:5000, ipv6:[::1]:5000), without the port."""
    address = peer.split(":", 1)[1] if peer.startswith(("ipv4:", "ipv6:")) else peer
    return address.rsplit(":", 1)[0] if ":" in address else address


class AccessInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, tokens: TokenCheck, limiter: RateLimiter) -> None:
        self._tokens = tokens
        self._limiter = limiter

    async def admit(self, context: Context) -> None:
        """Returns when the call may go on; else aborts it with the status that says why."""
        if self._tokens.required:
            metadata = dict(context.invocation_metadata() or ())
            authorization = metadata.get("authorization")
            if not self._tokens.accepts(bearer_token(authorization if isinstance(authorization, str) else None)):
                REQUESTS_REFUSED.labels(Via.GRPC.value, "unauthenticated").inc()
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSAL)
            caller = "token"  # one token per kind of client: the token is the caller
        else:
            caller = caller_address(context.peer())
        wait = self._limiter.take(caller)
        if wait:
            REQUESTS_REFUSED.labels(Via.GRPC.value, "rate_limited").inc()
            seconds = retry_after_header(wait)
            context.set_trailing_metadata(((RETRY_AFTER_KEY, seconds),))
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"too many requests; retry after {seconds} s")

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        if handler is None or details.method.startswith(OPEN_PREFIX):
            return handler
        return _guarded(handler, self.admit)


def _guarded(
    handler: grpc.RpcMethodHandler[Any, Any], admit: Callable[[Context], Awaitable[None]]
) -> grpc.RpcMethodHandler[Any, Any]:
    """The same handler, awaiting admit(context) before its behaviour.

    A behaviour that answers with a stream is an async generator here, or a
    coroutine that writes through context.write: the guard passes on what
    the one yields and awaits the other.
    """
    codecs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        inner_uu: Any = handler.unary_unary  # a coroutine function: the typing stubs know only sync handlers

        async def unary_unary(request: Any, context: Context) -> Any:
            await admit(context)
            return await inner_uu(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, **codecs)
    if handler.stream_unary:
        inner_su: Any = handler.stream_unary

        async def stream_unary(requests: AsyncIterator[Any], context: Context) -> Any:
            await admit(context)
            return await inner_su(requests, context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, **codecs)
    if handler.unary_stream:
        inner_us: Any = handler.unary_stream

        async def unary_stream(request: Any, context: Context) -> AsyncIterator[Any]:
            await admit(context)
            async for response in _responses(inner_us(request, context)):
                yield response

        return grpc.unary_stream_rpc_method_handler(unary_stream, **codecs)
    inner_ss: Any = handler.stream_stream
    assert inner_ss is not None, "a handler has one of the four behaviours"

    async def stream_stream(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
        await admit(context)
        async for response in _responses(inner_ss(requests, context)):
            yield response

    return grpc.stream_stream_rpc_method_handler(stream_stream, **codecs)


async def _responses(behaviour: Any) -> AsyncIterator[Any]:
    """What a streaming behaviour yields; nothing when it is a coroutine that wrote its own responses."""
    if inspect.isawaitable(behaviour):
        await behaviour
        return
    async for response in behaviour:
        yield response
