"""python -m websocket_client: prints each notification's text as one line on stdout.

Connects to HUB_URL with ?after=<last id>&epoch=<epoch> from its cursor file,
so a restart neither repeats nor skips a line; reconnects with backoff.

Liveness is progress: the liveness file is touched when a frame arrives or
the hub answers a keep-alive ping (every KEEPALIVE_SECONDS), and the
healthcheck allows LIVENESS_WINDOW_SECONDS, longer than both that and the
hub's own ping interval (20 s). A frame it cannot read, or any other
unexpected error, ends the process (see msgsuite/crash.py); the restart
policy starts it again from its cursor.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, WebSocketException

from msgsuite import crash, logs, metrics, shutdown
from msgsuite.auth import client_token
from msgsuite.backoff import Reconnecting
from msgsuite.probe import touch
from msgsuite.settings import integer, load_or_exit, optional, required
from msgsuite.tls import TlsSettings, secure_url

from .cursor import Cursor, CursorFile

log = logging.getLogger("websocket-client")

KEEPALIVE_SECONDS = 10.0
LIVENESS_WINDOW_SECONDS = 30.0  # the compose healthcheck's window
_TOUCH_EVERY_SECONDS = 1.0  # at most one file touch per second, whatever the frame rate

LAST_ID = metrics.gauge("msgsuite_client_last_id", "Id of the last notification printed")
LINES_PRINTED = metrics.counter("msgsuite_client_lines_printed", "Notification lines printed")


class Liveness:
    """Records in a file that frames or keep-alive answers are arriving."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._touched_at = 0.0

    def proven(self) -> None:
        now = time.monotonic()
        if now - self._touched_at >= _TOUCH_EVERY_SECONDS:
            touch(self._path)
            self._touched_at = now


async def keep_alive(websocket: ClientConnection, liveness: Liveness) -> None:
    """Pings the hub; each answer proves the connection carries traffic."""
    while True:
        pong = await websocket.ping()
        await asyncio.wait_for(pong, KEEPALIVE_SECONDS)
        liveness.proven()
        await asyncio.sleep(KEEPALIVE_SECONDS)


async def listen(
    hub_url: str,
    cursor_file: CursorFile,
    liveness: Liveness,
    tls: TlsSettings | None = None,
    token: str | None = None,
) -> None:
    """Prints frames forever; returns never, raises on a frame it cannot read."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    cursor = cursor_file.load()
    LAST_ID.set(cursor.last_id)
    reconnecting = Reconnecting("hub connection", log, cap=5)
    context = tls.client_context() if tls is not None and tls.enabled else None
    while True:
        url = f"{hub_url}?{cursor.query()}"
        try:
            async with connect(
                url, compression=None, open_timeout=10, ssl=context, additional_headers=headers
            ) as websocket:
                log.info("connected to %s", url)
                reconnecting.connected()
                pinging = asyncio.create_task(keep_alive(websocket, liveness))
                try:
                    async for raw in websocket:
                        cursor = print_frame(json.loads(raw), cursor, cursor_file)
                        liveness.proven()
                finally:
                    pinging.cancel()
            reason: BaseException | str = f"closed by the hub ({websocket.close_code} {websocket.close_reason})"
        except (OSError, InvalidHandshake, WebSocketException, TimeoutError) as error:
            reason = error
        await asyncio.sleep(reconnecting.lost(reason))


def print_frame(frame: dict[str, object], cursor: Cursor, cursor_file: CursorFile) -> Cursor:
    """Prints a frame's text unless the cursor has seen it; returns the cursor after it (saved)."""
    epoch, frame_id, text = frame["epoch"], frame["id"], frame["text"]
    if not isinstance(epoch, str) or not isinstance(frame_id, int) or not isinstance(text, str):
        raise ValueError(f"not a notification frame: {frame!r:.200}")
    if not cursor.accepts(epoch, frame_id):
        return cursor
    if epoch != cursor.epoch and cursor.epoch is not None:
        log.warning("the hub serves a new stream (epoch %s); printing it from the start", epoch)
    print(text, flush=True)
    LINES_PRINTED.inc()
    LAST_ID.set(frame_id)
    cursor = Cursor(epoch, frame_id)
    cursor_file.save(cursor)
    return cursor


@dataclass(frozen=True)
class ListenerSettings:
    hub_url: str
    cursor_file: str  # where the epoch and last id printed are kept across restarts
    liveness_file: str  # touched on frames and keep-alive answers; the healthcheck reads its age
    metrics_port: int
    tls: TlsSettings  # TLS=on: wss://, the hub verified against the suite's CA
    token: str | None  # the listeners' token (HUB_TOKEN or HUB_TOKEN_FILE), sent when set

    @classmethod
    def from_env(cls) -> ListenerSettings:
        tls = TlsSettings.from_env()
        return cls(
            secure_url(required("HUB_URL"), tls),
            optional("CURSOR_FILE", "/var/lib/websocket-client/cursor.json"),
            optional("LIVENESS_FILE", "/tmp/websocket-client.alive"),
            integer("METRICS_PORT", 9464),
            tls,
            client_token("HUB_TOKEN"),
        )


async def run(
    hub_url: str,
    cursor_file: CursorFile,
    liveness_file: str,
    tls: TlsSettings | None = None,
    token: str | None = None,
) -> None:
    stop = shutdown.stop_event()
    listening = asyncio.create_task(listen(hub_url, cursor_file, Liveness(liveness_file), tls, token))
    await shutdown.until_stopped(stop, listening, "listening to the hub")
    # Between frames: the cursor on disk matches the last line printed.
    listening.cancel()
    await asyncio.gather(listening, return_exceptions=True)
    log.info("stopped at %s", cursor_file.load())


def main() -> int:
    logs.configure("websocket-client")
    settings = load_or_exit(log, ListenerSettings.from_env)
    cursor_file = CursorFile(settings.cursor_file)
    log.info("starting from %s", cursor_file.load())
    crash.exit_on_thread_errors()
    metrics.serve(settings.metrics_port)
    asyncio.run(run(settings.hub_url, cursor_file, settings.liveness_file, settings.tls, settings.token))
    return 0


if __name__ == "__main__":
    sys.exit(main())
