"""python -m websocket_client: prints each notification's text as one line on stdout.

Connects to HUB_URL with ?after=<last id>&epoch=<epoch> from its cursor file,
so a restart neither repeats nor skips a line; reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, WebSocketException

from msgsuite import logs
from msgsuite.backoff import Backoff
from msgsuite.probe import touch
from msgsuite.settings import load_or_exit, optional, required

from .cursor import Cursor, CursorFile

log = logging.getLogger("websocket-client")


async def keep_alive_marker(path: str, connected: asyncio.Event) -> None:
    while True:
        await connected.wait()
        touch(path)
        await asyncio.sleep(5)


async def listen(hub_url: str, cursor_file: CursorFile, connected: asyncio.Event) -> None:
    cursor = cursor_file.load()
    delays = Backoff(cap=5).delays()
    while True:
        url = f"{hub_url}?{cursor.query()}"
        try:
            async with connect(url, compression=None, open_timeout=10) as websocket:
                log.info("connected to %s", url)
                connected.set()
                delays = Backoff(cap=5).delays()
                async for raw in websocket:
                    frame = json.loads(raw)
                    epoch, frame_id = frame["epoch"], frame["id"]
                    if not cursor.accepts(epoch, frame_id):
                        continue
                    if epoch != cursor.epoch and cursor.epoch is not None:
                        log.warning("the hub serves a new stream (epoch %s); printing it from the start", epoch)
                    print(frame["text"], flush=True)
                    cursor = Cursor(epoch, frame_id)
                    cursor_file.save(cursor)
            reason = f"closed by the hub ({websocket.close_code} {websocket.close_reason})".strip()
        except (OSError, InvalidHandshake, WebSocketException, TimeoutError) as error:
            reason = f"{type(error).__name__}: {error}"
        connected.clear()
        delay = next(delays)
        log.warning("hub connection ended: %s; reconnecting in %.1f s", reason, delay)
        await asyncio.sleep(delay)


async def run(hub_url: str, cursor_file: CursorFile, alive_file: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    connected = asyncio.Event()
    tasks = [
        asyncio.create_task(listen(hub_url, cursor_file, connected)),
        asyncio.create_task(keep_alive_marker(alive_file, connected)),
    ]
    await stop.wait()
    # Between frames: the cursor on disk matches the last line printed.
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    log.info("stopped at %s", cursor_file.load())


def main() -> int:
    logs.configure("websocket-client")
    hub_url, cursor_file, alive_file = load_or_exit(
        log,
        lambda: (
            required("HUB_URL"),
            CursorFile(optional("CURSOR_FILE", "/var/lib/websocket-client/cursor.json")),
            optional("HEARTBEAT_FILE", "/tmp/websocket-client.alive"),
        ),
    )
    log.info("starting from %s", cursor_file.load())
    asyncio.run(run(hub_url, cursor_file, alive_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
