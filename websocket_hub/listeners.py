"""One coroutine pair per listener: send frames in id order, refuse anything it sends.

A listener behind the head is sent its frames one awaited send at a time
(from memory or the table). Once it has everything up to the head it is
"live": each run of new frames is encoded once, as WebSocket frames, and
written to every live listener's socket straight from FrameWindow.publish,
with no task switch and no per-listener framing (what websockets' broadcast()
does, minus encoding the frame again for every connection). Such a write
does not wait for a slow peer, so before each one a live listener whose
unsent bytes pass WRITE_BUFFER_LIMIT is released back to the awaited sends,
where a send that waits longer than the slow-listener timeout cuts it off.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame as WireFrame
from websockets.frames import Opcode
from websockets.protocol import State

from msgsuite import metrics
from msgsuite.database import ConnectionPool, DatabaseUnavailable
from msgsuite.store import messages_after, stream_state

from .frame_window import FrameWindow
from .frames import Frame, encode_frame

log = logging.getLogger("websocket-hub")

BATCH = 500
MAX_TAIL = 1000
# Bytes a live listener may have unsent before it goes back to awaited sends;
# also the connections' high-water mark for those (see server.py).
WRITE_BUFFER_LIMIT = 64 * 1024


def write_frames(connections: Iterable[ServerConnection], frames: list[Frame]) -> None:
    """The frames as one write per open connection: text frames, unmasked and uncompressed
    (a server's frames are never masked, and the hub turns compression off)."""
    encoded = b"".join(WireFrame(Opcode.TEXT, frame.data.encode()).serialize(mask=False) for frame in frames)
    for websocket in connections:
        if websocket.protocol.state is State.OPEN:
            websocket.transport.write(encoded)


WriteFrames = Callable[[Iterable[ServerConnection], list[Frame]], None]

LISTENERS = metrics.gauge("msgsuite_hub_listeners", "Listeners connected now")
FRAMES_SENT = metrics.counter("msgsuite_hub_frames_sent", "Frames written to listeners (one per listener per frame)")
SLOW_LISTENERS_CUT = metrics.counter(
    "msgsuite_hub_slow_listeners_disconnected", "Listeners cut off because they did not keep up"
)
CATCH_UP_READS = metrics.counter(
    "msgsuite_hub_catch_up_reads", "Reads from the table for listeners further behind than memory"
)
_WHOLE_NUMBER = re.compile(r"\d{1,18}")
_EPOCH = re.compile(r"[0-9a-fA-F-]{1,64}")

CLOSE_POLICY = 1008  # the listener sent a frame
CLOSE_INTERNAL_ERROR = 1011  # this listener's sender failed; the others go on
CLOSE_RESTART = 1012  # the stream was replaced: reconnect with your cursor
CLOSE_TRY_AGAIN = 1013  # too slow: reconnect with after=<last id>


class BadRequest(ValueError):
    pass


@dataclass(frozen=True)
class Subscription:
    after: int
    epoch: str | None
    tail: int | None = None  # start with the newest `tail` frames instead of after `after`


def parse_subscription(target: str) -> Subscription:
    """Reads ?after=<id>&epoch=<epoch> or ?tail=<n> from a request target; raises BadRequest."""
    query = parse_qs(urlsplit(target).query, keep_blank_values=True)
    unknown = set(query) - {"after", "epoch", "tail"}
    if unknown:
        raise BadRequest(f"unknown parameter {sorted(unknown)[0]!r}; use after and epoch, or tail")
    after_values = query.get("after", ["0"])
    if len(after_values) != 1 or not _WHOLE_NUMBER.fullmatch(after_values[0]):
        raise BadRequest("after must be a whole number (the last id you received, 0 for all)")
    epoch_values = query.get("epoch", [])
    if len(epoch_values) > 1 or (epoch_values and not _EPOCH.fullmatch(epoch_values[0])):
        raise BadRequest("epoch must be the epoch of a frame you received")
    tail: int | None = None
    if "tail" in query:
        if "after" in query:
            raise BadRequest(
                "tail and after cannot be combined: tail starts at the newest frames, after at a given id"
                " (reconnect with after=<last id>&epoch=<epoch> once you have frames)"
            )
        tail_values = query["tail"]
        if (
            len(tail_values) != 1
            or not _WHOLE_NUMBER.fullmatch(tail_values[0])
            or not 1 <= int(tail_values[0]) <= MAX_TAIL
        ):
            raise BadRequest(
                f"tail must be a whole number from 1 to {MAX_TAIL} (how many of the newest frames to start with)"
            )
        tail = int(tail_values[0])
    return Subscription(int(after_values[0]), epoch_values[0] if epoch_values else None, tail)


@dataclass(eq=False)
class _LiveListener:
    released: asyncio.Event = field(default_factory=asyncio.Event)
    cursor: int = 0  # set on release: the last id written to it


class Listeners:
    def __init__(
        self, window: FrameWindow, pool: ConnectionPool, send_timeout: float, write_to_all: WriteFrames = write_frames
    ) -> None:
        self._window = window
        self._pool = pool
        self._send_timeout = send_timeout
        self._write_to_all = write_to_all
        self._live: dict[ServerConnection, _LiveListener] = {}
        self.connected = 0
        window.relay_to(self)

    def relay(self, frames: list[Frame]) -> None:
        """Called by the window with each new run of frames, which follow its previous head."""
        if not self._live:
            return
        before = frames[0].id - 1
        for websocket, listener in list(self._live.items()):
            if websocket.transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
                self._release(websocket, listener, before)
        live = list(self._live)
        self._write_to_all(live, frames)
        FRAMES_SENT.inc(len(live) * len(frames))

    def release_all(self, head: int) -> None:
        """The window changed other than by new frames (a new epoch, a skip): every live
        listener goes back to its own loop, which has written up to `head`."""
        for websocket, listener in list(self._live.items()):
            self._release(websocket, listener, head)

    def _release(self, websocket: ServerConnection, listener: _LiveListener, cursor: int) -> None:
        del self._live[websocket]
        listener.cursor = cursor
        listener.released.set()

    async def serve(self, websocket: ServerConnection) -> None:
        subscription = parse_subscription(websocket.request.path if websocket.request else "")
        self.connected += 1
        LISTENERS.set(self.connected)
        sender = asyncio.create_task(self._send_frames(websocket, subscription))
        refuser = asyncio.create_task(self._refuse_input(websocket))
        try:
            await asyncio.wait({sender, refuser}, return_when=asyncio.FIRST_COMPLETED)
            if sender.done() and not sender.cancelled() and sender.exception() is not None:
                log.error(
                    "sending to listener %s failed; closing it", websocket.remote_address, exc_info=sender.exception()
                )
                await websocket.close(CLOSE_INTERNAL_ERROR, "internal error; reconnect with after=<last id>")
        finally:
            for task in (sender, refuser):
                task.cancel()
            self._live.pop(websocket, None)
            self.connected -= 1
            LISTENERS.set(self.connected)

    async def _refuse_input(self, websocket: ServerConnection) -> None:
        try:
            async for _ in websocket:
                log.info("listener %s sent a frame; closing it", websocket.remote_address)
                await websocket.close(CLOSE_POLICY, "listeners cannot publish")
                return
        except ConnectionClosed:
            return

    async def _send_frames(self, websocket: ServerConnection, subscription: Subscription) -> None:
        epoch = await self._window.ready()
        cursor = subscription.after
        if subscription.tail is not None:
            # The newest frames at connect, whatever the table size: a cursor, no count.
            cursor = max(0, self._window.head - subscription.tail)
        elif subscription.epoch is not None and subscription.epoch != epoch:
            log.info(
                "listener %s had epoch %s; replaying epoch %s from the start",
                websocket.remote_address,
                subscription.epoch,
                epoch,
            )
            cursor = 0
        try:
            while True:
                if self._window.epoch != epoch:
                    await _stream_replaced(websocket)
                    return
                changed = self._window.changed
                frames = self._window.after(cursor, BATCH)
                if frames is None:
                    frames = await self._read_back(epoch, cursor)
                    if frames is None:
                        await _stream_replaced(websocket)
                        return
                if not frames:
                    if cursor == self._window.head:
                        cursor = await self._live_until_released(websocket)
                    else:  # asked for ids after the head: wait for them
                        await changed.wait()
                    continue
                for frame in frames:
                    await asyncio.wait_for(websocket.send(frame.data), self._send_timeout)
                    cursor = frame.id
                FRAMES_SENT.inc(len(frames))
        except TimeoutError:
            log.warning(
                "listener %s too slow (a send waited %.0f s); disconnecting it at id %d",
                websocket.remote_address,
                self._send_timeout,
                cursor,
            )
            SLOW_LISTENERS_CUT.inc()
            websocket.transport.abort()
        except ConnectionClosed:
            return

    async def _live_until_released(self, websocket: ServerConnection) -> int:
        """Caught up: new frames reach it through relay() until it is released; returns its cursor then."""
        listener = _LiveListener()
        self._live[websocket] = listener
        try:
            await listener.released.wait()
        finally:
            self._live.pop(websocket, None)
        return listener.cursor

    async def _read_back(self, epoch: str, cursor: int) -> list[Frame] | None:
        """Frames older than the hub's memory, from the table itself; None when the
        database now holds another stream (the listener is told to reconnect)."""

        CATCH_UP_READS.inc()

        def read() -> list[Frame] | None:
            with self._pool.connection() as conn:
                if stream_state(conn)[0] != epoch:
                    return None
                return [encode_frame(epoch, record) for record in messages_after(conn, cursor, BATCH)]

        while True:
            try:
                return await asyncio.get_running_loop().run_in_executor(None, read)
            except DatabaseUnavailable as error:
                log.warning("catch-up read failed (%s); retrying in 1 s", error)
                await asyncio.sleep(1)


async def _stream_replaced(websocket: ServerConnection) -> None:
    await websocket.close(CLOSE_RESTART, "the stream was replaced; reconnect with your cursor")
