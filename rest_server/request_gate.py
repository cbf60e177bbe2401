"""Checks a request before the application sees it: JSON bodies only, and not too large.

A plain ASGI middleware: Starlette's @app.middleware("http") wraps every
request in extra tasks and streams, which cost more than the check itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestGate:
    """A POST must be application/json; a body may have max_bytes, or per_path[path].

    A body of declared length (Content-Length) is judged by its header: the
    server hands the app exactly that many bytes. A body of unknown length
    (Transfer-Encoding: chunked, or no header at all) is read here, up to the
    limit, and handed to the app whole. It cannot be counted while the app
    reads it instead: FastAPI turns any exception raised while it reads a
    body into its own 400 answer (fastapi/routing.py, "There was an error
    parsing the body"), so the gate would never get to answer 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, per_path: dict[str, int] | None = None) -> None:
        self.app = app
        self.default_max = max_bytes
        self.per_path = per_path or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.per_path.get(scope["path"], self.default_max)
        headers = dict(scope["headers"])
        if scope["method"] == "POST":
            content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if content_type != b"application/json":
                await problem(send, 415, "send the message as JSON with Content-Type: application/json")
                return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and b"transfer-encoding" not in headers:
            if int(declared) > max_bytes:
                await problem(send, 413, f"request body is larger than {max_bytes} bytes")
                return
            await self.app(scope, receive, send)
            return
        first = await _read_body(receive, max_bytes)
        if first is None:
            await problem(send, 413, f"request body is larger than {max_bytes} bytes")
            return
        replayed = False

        async def replay_then_receive() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # what follows the body: a disconnect, when the client goes
            replayed = True
            return first

        await self.app(scope, replay_then_receive, send)


async def _read_body(receive: Receive, max_bytes: int) -> Message | None:
    """The whole body as one http.request message, or None when it passes max_bytes.

    A disconnect before the end is handed on as it is, for the app to see.
    """
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return message
        part = message.get("body", b"")
        size += len(part)
        if size > max_bytes:
            return None
        parts.append(part)
        if not message.get("more_body", False):
            return {"type": "http.request", "body": b"".join(parts), "more_body": False}


async def problem(send: Send, status: int, detail: str, extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """A JSON {"detail": ...} answer sent before the request's body was read (so the connection closes)."""
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
