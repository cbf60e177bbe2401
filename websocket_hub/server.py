"""The hub's WebSocket server: its routes, listeners and connection options in one place."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from websockets.asyncio.server import Server, serve

from msgsuite.settings import number

from .access import select_subprotocol
from .http_routes import Routes
from .listeners import WRITE_BUFFER_LIMIT, Listeners


@dataclass(frozen=True)
class Keepalive:
    """The hub pings every listener every `interval` seconds; one that has not answered a ping
    `timeout` seconds after it is cut off (close 1011, then the socket is dropped at most `timeout`
    later if the peer does not answer the close either). websockets 17.4's defaults are 20 and 20."""

    interval: float
    timeout: float

    @classmethod
    def from_env(cls) -> Keepalive:
        return cls(number("HUB_PING_INTERVAL_SECONDS", 20), number("HUB_PING_TIMEOUT_SECONDS", 20))

    @property
    def longest_silence(self) -> float:
        """The longest a listener that stopped answering keeps its slot."""
        return self.interval + 2 * self.timeout


@asynccontextmanager
async def serve_hub(
    listeners: Listeners,
    routes: Routes,
    keepalive: Keepalive,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[Server]:
    """ssl_context: WSS (TLS=on); None serves plain WS."""
    async with serve(
        listeners.serve,
        host,
        port,
        process_request=routes,
        select_subprotocol=select_subprotocol,
        compression=None,  # the same frame goes to every listener; deflating it per listener costs CPU
        max_size=1024,  # listeners have nothing to send
        write_limit=WRITE_BUFFER_LIMIT,  # a stalled listener shows up after 64 KiB, not megabytes
        ping_interval=keepalive.interval,
        ping_timeout=keepalive.timeout,
        close_timeout=keepalive.timeout,
        ssl=ssl_context,
    ) as server:
        yield server
