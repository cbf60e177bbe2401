"""Follows the messages table from a thread: LISTEN for the doorbell, read new rows in id order.

NOTIFY alone is at-most-once; the table is the log. The doorbell only says
"look now", and a 5-second timeout looks anyway, so a lost notification
delays a frame by at most that long and never loses it.

A database error makes it reconnect; any other error ends the process (see
msgsuite/crash.py), here or in the stream it hands frames to, since a hub
whose follower died would relay nothing ever again.
"""

from __future__ import annotations

import asyncio
import logging
import select
import threading
from collections.abc import Callable
from typing import Any

import psycopg2
import psycopg2.extensions

from msgsuite import crash
from msgsuite.backoff import Reconnecting, keep_connected
from msgsuite.settings import DatabaseSettings
from msgsuite.store import messages_after, stream_state

from .frame_window import FrameWindow
from .frames import encode_frame

log = logging.getLogger("websocket-hub")

ROWS_PER_READ = 1000
IDLE_LOOK_SECONDS = 5.0


class Follower:
    def __init__(self, settings: DatabaseSettings, window: FrameWindow, loop: asyncio.AbstractEventLoop) -> None:
        self._settings = settings
        self._window = window
        self._loop = loop
        self._epoch: str | None = None
        self._last = 0
        self.stopping = threading.Event()
        self._reconnecting = Reconnecting("database connection", log, cap=5)

    def run(self) -> None:
        keep_connected(self._session, (psycopg2.Error,), self._reconnecting, self.stopping)

    def _session(self) -> None:
        conn = psycopg2.connect(**self._settings.connect_kwargs())
        try:
            conn.autocommit = True
            self._follow(conn)
        finally:
            conn.close()

    def _hand(self, method: Callable[..., None], *args: Any) -> None:
        """Runs a FrameWindow method on the event loop, the only place that touches the FrameWindow."""
        self._loop.call_soon_threadsafe(crash.or_exit(f"FrameWindow.{method.__name__}", method), *args)

    def _follow(self, conn: psycopg2.extensions.connection) -> None:
        with conn.cursor() as cursor:
            cursor.execute("LISTEN messages")
        epoch, total = stream_state(conn)
        if epoch != self._epoch:
            if self._epoch is not None:
                log.warning("the database holds a new stream (epoch %s, was %s): starting over", epoch, self._epoch)
            # Memory needs only the newest frames; listeners further behind read
            # the table. Starting there keeps a restart as fast at 10 million
            # rows as at 10.
            self._epoch, self._last = epoch, max(0, total - self._window.capacity)
        self._hand(self._window.set_epoch, epoch, self._last)
        log.info("following the messages table: epoch %s, %d stored, relayed up to %d", epoch, total, self._last)
        self._reconnecting.connected()
        while not self.stopping.is_set():
            records = messages_after(conn, self._last, ROWS_PER_READ)
            self._hand(self._window.mark_database_ok)
            if len(records) == ROWS_PER_READ:
                _, total = stream_state(conn)
                if total - self._last > self._window.capacity:
                    # A burst (a bulk load, a big batch) larger than memory:
                    # encoding it all would only be thrown away.
                    self._last = total - self._window.capacity
                    self._hand(self._window.skip_to, epoch, self._last)
                    continue
            if records:
                frames = [encode_frame(epoch, record) for record in records]
                self._hand(self._window.publish, epoch, frames)
                self._last = records[-1].id
                if len(records) == ROWS_PER_READ:
                    continue
            if select.select([conn], [], [], IDLE_LOOK_SECONDS) != ([], [], []):
                conn.poll()
                conn.notifies.clear()
