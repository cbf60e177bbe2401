"""python -m websocket_hub: relays every stored message to every listener on HUB_PORT (8765)."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading

from websockets.asyncio.server import serve

from msgsuite import crash, logs
from msgsuite.database import ConnectionPool
from msgsuite.settings import DatabaseSettings, integer, load_or_exit

from .follower import Follower
from .http_routes import Routes
from .listeners import Listeners
from .stream import Stream


async def run(settings: DatabaseSettings, port: int, memory: int, send_timeout: float) -> None:
    log = logs.configure("websocket-hub")
    loop = asyncio.get_running_loop()
    stream = Stream(capacity=memory)
    follower = Follower(settings, stream, loop)
    threading.Thread(target=follower.run, name="follower", daemon=True).start()
    listeners = Listeners(stream, ConnectionPool(settings, size=2), send_timeout)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with serve(
        listeners.serve,
        "0.0.0.0",
        port,
        process_request=Routes(stream, listeners),
        compression=None,  # the same frame goes to every listener; deflating it per listener costs CPU
        max_size=1024,  # listeners have nothing to send
        write_limit=64 * 1024,  # a stalled listener shows up after 64 KiB, not megabytes
        # A listener that answers no ping within 20 s of it is cut off (the
        # websockets defaults, stated): a vanished peer frees its slot in under 40 s.
        ping_interval=20,
        ping_timeout=20,
    ):
        log.info("listening on port %d", port)
        await stop.wait()
        log.info("stopping: closing %d listener connections", listeners.connected)
    follower.stopping.set()
    log.info("stopped")


def main() -> int:
    log = logs.configure("websocket-hub")
    settings, port, memory, send_timeout = load_or_exit(
        log,
        lambda: (
            DatabaseSettings.from_env(),
            integer("HUB_PORT", 8765),
            integer("HUB_MEMORY_FRAMES", 20000),
            float(integer("HUB_SLOW_LISTENER_SECONDS", 10)),
        ),
    )
    crash.exit_on_thread_errors()
    asyncio.run(run(settings, port, memory, send_timeout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
