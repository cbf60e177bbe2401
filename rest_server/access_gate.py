"""Who may call /messages, and how often: the bearer token (AUTH=on) and the request-rate limit.

A plain ASGI middleware in front of everything else, so a refused request is
answered before its body is read. /health, /metrics and the API docs stay
open: probes and Prometheus carry no token, and none of them shows a message.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from msgsuite.auth import REFUSAL, RateLimiter, TokenCheck, bearer_token, retry_after_header
from msgsuite.messages import Via
from msgsuite.metrics import REQUESTS_REFUSED

from .request_gate import problem

GUARDED_PREFIX = "/messages"


class AccessGate:
    def __init__(self, app: ASGIApp, tokens: TokenCheck, limiter: RateLimiter) -> None:
        self.app = app
        self.tokens = tokens
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(GUARDED_PREFIX):
            await self.app(scope, receive, send)
            return
        if self.tokens.required:
            authorization = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            if not self.tokens.accepts(bearer_token(authorization)):
                REQUESTS_REFUSED.labels(Via.REST.value, "unauthenticated").inc()
                await problem(send, 401, REFUSAL, [(b"www-authenticate", b'Bearer realm="msgsuite"')])
                return
            # One token per kind of client: the token is the caller.
            caller = "token"
        else:
            client = scope.get("client")
            caller = client[0] if client else "unknown"
        wait = self.limiter.take(caller)
        if wait:
            REQUESTS_REFUSED.labels(Via.REST.value, "rate_limited").inc()
            seconds = retry_after_header(wait)
            await problem(
                send,
                429,
                f"too many requests; retry after {seconds} s",
                [(b"retry-after", seconds.encode())],
            )
            return
        await self.app(scope, receive, send)
