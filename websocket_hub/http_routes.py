"""Plain HTTP answered before the WebSocket handshake: the page, /health, /stats, refusals.

With AUTH=on, /notifications and /stats need the listeners' token (401
otherwise); the page itself (no data: it asks for the token), /health
(probes) and /metrics (Prometheus; counts, never a message) stay open.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from msgsuite import metrics
from msgsuite.auth import REFUSAL
from msgsuite.database import DatabaseError

from .access import REFUSED, HubAccess, open_access, presented_token
from .frame_window import FrameWindow
from .listeners import BadRequest, Listeners, parse_subscription
from .stats import StreamCountsCache

log = logging.getLogger("websocket-hub")

LIVE_PAGE_HTML = (Path(__file__).parent / "page.html").read_bytes()
NOTIFICATIONS_PATH = "/notifications"
HEALTHY_WITHIN_SECONDS = 15.0


def _response(status: int, reason: str, body: bytes, content_type: str) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("Date", email.utils.formatdate(usegmt=True)),  # the page's chart reads the hub's clock from it
        ]
    )
    return Response(status, reason, headers, body)


def _json(status: int, reason: str, payload: Mapping[str, object], **extra: str) -> Response:
    response = _response(status, reason, json.dumps(payload).encode(), "application/json")
    for name, value in extra.items():
        response.headers[name.replace("_", "-")] = value
    return response


def _unauthenticated() -> Response:
    REFUSED.labels("unauthenticated").inc()
    return _json(401, "Unauthorized", {"detail": REFUSAL}, WWW_Authenticate='Bearer realm="msgsuite"')


LIMIT_REFUSALS = {
    "address_limit": (429, "Too Many Requests", "too many listeners from your address; close one or retry later"),
    "total_limit": (503, "Service Unavailable", "the hub has as many listeners as it takes; retry later"),
}


class Routes:
    def __init__(
        self, window: FrameWindow, listeners: Listeners, counts: StreamCountsCache, access: HubAccess | None = None
    ) -> None:
        self._access = access or open_access()
        self._window = window
        self._listeners = listeners
        self._counts = counts
        self._plain: dict[str, Callable[[], Response]] = {
            "/": lambda: _response(200, "OK", LIVE_PAGE_HTML, "text/html; charset=utf-8"),
            "/health": self._health,
            "/metrics": lambda: _response(200, "OK", metrics.exposition(), metrics.CONTENT_TYPE),
        }

    def __call__(self, connection: ServerConnection, request: Request) -> Response | Awaitable[Response] | None:
        path = request.path.split("?", 1)[0]
        if path in (NOTIFICATIONS_PATH, "/stats") and not self._access.tokens.accepts(presented_token(request.headers)):
            return _unauthenticated()
        if path == NOTIFICATIONS_PATH:
            return self._before_handshake(connection, request)
        if path == "/stats":
            return self._stats()
        if path in self._plain:
            return self._plain[path]()
        return _json(404, "Not Found", {"detail": f"no such path; listen at {NOTIFICATIONS_PATH}"})

    def _before_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        """None (go on with the handshake) for a good subscription that gets a slot, else the refusal."""
        try:
            parse_subscription(request.path)
        except BadRequest as error:
            return _json(400, "Bad Request", {"detail": str(error)})
        if "websocket" not in request.headers.get("Upgrade", "").lower():
            return _json(426, "Upgrade Required", {"detail": "connect with a WebSocket client"})
        address = str(connection.remote_address[0]) if connection.remote_address else "unknown"
        slots = self._access.slots
        refusal = slots.refusal(address)
        if refusal is not None:
            REFUSED.labels(refusal).inc()
            status, reason, detail = LIMIT_REFUSALS[refusal]
            log.debug("refused a listener from %s: %s", address, detail)
            return _json(status, reason, {"detail": detail}, Retry_After="5")
        slots.take(address, connection)
        return None

    def _health(self) -> Response:
        fresh = time.monotonic() - self._window.database_ok_at <= HEALTHY_WITHIN_SECONDS
        payload = {
            "status": "ok" if fresh and self._window.epoch else "database unreachable",
            "epoch": self._window.epoch,
            "head": self._window.head,
            "listeners": self._listeners.connected,
        }
        if fresh and self._window.epoch:
            return _json(200, "OK", payload)
        return _json(503, "Service Unavailable", payload)

    async def _stats(self) -> Response:
        """Exact counts per protocol from the stream row (read at most once a second), and the hub's own state."""
        try:
            counts = await self._counts.get()
        except DatabaseError as error:
            log.warning("/stats: the stream row could not be read: %s", error.reason)
            return _json(503, "Service Unavailable", {"detail": "the database is unavailable; retry later"})
        payload = {
            "epoch": counts.epoch,
            "head": self._window.head,
            "total": counts.total,
            "by_via": counts.by_via,
            "listeners": self._listeners.connected,
        }
        return _json(200, "OK", payload)
