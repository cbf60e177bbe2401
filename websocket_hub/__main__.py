"""python -m websocket_hub: relays every stored message to every listener on HUB_PORT (8765)."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from dataclasses import dataclass

import uvloop

from msgsuite import crash, logs, shutdown
from msgsuite.auth import TokenCheck, auth_enabled
from msgsuite.database import ConnectionPool
from msgsuite.schema import wait_for_schema
from msgsuite.settings import DatabaseSettings, integer, load_or_exit, number, secret
from msgsuite.tls import TlsSettings

from .access import HubAccess, ListenerLimits, ListenerSlots
from .follower import Follower
from .frame_window import FrameWindow
from .http_routes import Routes
from .listeners import Listeners
from .server import Keepalive, serve_hub
from .stats import StreamCountsCache


@dataclass(frozen=True)
class HubSettings:
    database: DatabaseSettings
    port: int
    memory_frames: int  # newest frames kept in memory (up to twice this between trims)
    slow_listener_seconds: float  # a send blocked this long cuts the listener off
    tls: TlsSettings  # TLS=on: WSS and HTTPS with its own certificate
    tokens: TokenCheck  # AUTH=on: the digest of the listeners' token
    limits: ListenerLimits
    keepalive: Keepalive

    @classmethod
    def from_env(cls) -> HubSettings:
        return cls(
            DatabaseSettings.from_env("websocket-hub"),
            integer("HUB_PORT", 8765),
            integer("HUB_MEMORY_FRAMES", 20000),
            number("HUB_SLOW_LISTENER_SECONDS", 10),
            TlsSettings.from_env("websocket-hub"),
            TokenCheck(secret("HUB_TOKEN_SHA256") if auth_enabled() else None),
            ListenerLimits.from_env(),
            Keepalive.from_env(),
        )


async def run(settings: HubSettings) -> None:
    log = logging.getLogger("websocket-hub")
    loop = asyncio.get_running_loop()
    window = FrameWindow(capacity=settings.memory_frames)
    follower = Follower(settings.database, window, loop)
    threading.Thread(target=follower.run, name="follower", daemon=True).start()
    pool = ConnectionPool(settings.database, size=2)
    listeners = Listeners(window, pool, settings.slow_listener_seconds)
    stop = shutdown.stop_event()
    access = HubAccess(settings.tokens, ListenerSlots(settings.limits))
    routes = Routes(window, listeners, StreamCountsCache(pool), access)
    context = settings.tls.server_context() if settings.tls.enabled else None
    async with serve_hub(listeners, routes, settings.keepalive, "0.0.0.0", settings.port, context):
        log.info(
            "listening on port %d (%s), bearer token %s",
            settings.port,
            "WSS" if settings.tls.enabled else "WS",
            "required" if settings.tokens.required else "not required (AUTH=off)",
        )
        await stop.wait()
        log.info("stopping: closing %d listener connections", listeners.connected)
    follower.stopping.set()
    log.info("stopped")


def main() -> int:
    log = logs.configure("websocket-hub")
    settings = load_or_exit(log, HubSettings.from_env)
    crash.exit_on_thread_errors()
    wait_for_schema(settings.database, log)
    # uvloop: the hub's work is writing frames to sockets, which it does in C.
    uvloop.run(run(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
