"""python -m websocket_hub: relays every stored message to every listener on HUB_PORT (8765)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from dataclasses import dataclass

from websockets.asyncio.server import serve

from msgsuite import crash, logs
from msgsuite.database import ConnectionPool
from msgsuite.schema import wait_for_schema
from msgsuite.settings import DatabaseSettings, integer, load_or_exit, number
from msgsuite.tls import TlsSettings

from .follower import Follower
from .frame_window import FrameWindow
from .http_routes import Routes
from .listeners import Listeners
from .stats import StreamCountsCache


@dataclass(frozen=True)
class HubSettings:
    database: DatabaseSettings
    port: int
    memory_frames: int  # newest frames kept in memory (up to twice this between trims)
    slow_listener_seconds: float  # a send blocked this long cuts the listener off
    tls: TlsSettings  # TLS=on: WSS and HTTPS with its own certificate

    @classmethod
    def from_env(cls) -> HubSettings:
        return cls(
            DatabaseSettings.from_env("websocket-hub"),
            integer("HUB_PORT", 8765),
            integer("HUB_MEMORY_FRAMES", 20000),
            number("HUB_SLOW_LISTENER_SECONDS", 10),
            TlsSettings.from_env("websocket-hub"),
        )


async def run(settings: HubSettings) -> None:
    log = logging.getLogger("websocket-hub")
    loop = asyncio.get_running_loop()
    window = FrameWindow(capacity=settings.memory_frames)
    follower = Follower(settings.database, window, loop)
    threading.Thread(target=follower.run, name="follower", daemon=True).start()
    pool = ConnectionPool(settings.database, size=2)
    listeners = Listeners(window, pool, settings.slow_listener_seconds)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with serve(
        listeners.serve,
        "0.0.0.0",
        settings.port,
        process_request=Routes(window, listeners, StreamCountsCache(pool)),
        compression=None,  # the same frame goes to every listener; deflating it per listener costs CPU
        max_size=1024,  # listeners have nothing to send
        write_limit=64 * 1024,  # a stalled listener shows up after 64 KiB, not megabytes
        # A listener that answers no ping within 20 s of it is cut off (the
        # websockets defaults, stated): a vanished peer frees its slot in under 40 s.
        ping_interval=20,
        ping_timeout=20,
        ssl=settings.tls.server_context() if settings.tls.enabled else None,
    ):
        log.info("listening on port %d (%s)", settings.port, "WSS" if settings.tls.enabled else "WS")
        await stop.wait()
        log.info("stopping: closing %d listener connections", listeners.connected)
    follower.stopping.set()
    log.info("stopped")


def main() -> int:
    log = logs.configure("websocket-hub")
    settings = load_or_exit(log, HubSettings.from_env)
    crash.exit_on_thread_errors()
    wait_for_schema(settings.database, log)
    asyncio.run(run(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
