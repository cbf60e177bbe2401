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
from msgsuite.backoff import Backoff
from msgsuite.settings import DatabaseSettings
from msgsuite.store import messages_after, stream_state

from .frames import encode_frame
from .stream import Stream

log = logging.getLogger("websocket-hub")

PAGE = 1000
IDLE_LOOK_SECONDS = 5.0


class Follower:
    def __init__(self, settings: DatabaseSettings, stream: Stream, loop: asyncio.AbstractEventLoop) -> None:
        self._settings = settings
        self._stream = stream
        self._loop = loop
        self._epoch: str | None = None
        self._last = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        delays = Backoff(cap=5).delays()
        while not self.stopping.is_set():
            conn = None
            try:
                conn = psycopg2.connect(**self._settings.connect_kwargs())
                conn.autocommit = True
                self._follow(conn)
                delays = Backoff(cap=5).delays()
            except psycopg2.Error as error:
                delay = next(delays)
                log.warning(
                    "database connection lost (%s); reconnecting in %.1f s",
                    str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__,
                    delay,
                )
                self.stopping.wait(delay)
                continue
            finally:
                if conn is not None and not conn.closed:
                    conn.close()

    def _hand(self, method: Callable[..., None], *args: Any) -> None:
        """Runs a Stream method on the event loop, the only place that touches the Stream."""
        self._loop.call_soon_threadsafe(crash.or_exit(f"Stream.{method.__name__}", method), *args)

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
            self._epoch, self._last = epoch, max(0, total - self._stream.capacity)
        self._hand(self._stream.set_epoch, epoch, self._last)
        log.info("following the messages table: epoch %s, %d stored, relayed up to %d", epoch, total, self._last)
        while not self.stopping.is_set():
            records = messages_after(conn, self._last, PAGE)
            self._hand(self._stream.mark_database_ok)
            if len(records) == PAGE:
                _, total = stream_state(conn)
                if total - self._last > self._stream.capacity:
                    # A burst (a bulk load, a big batch) larger than memory:
                    # encoding it all would only be thrown away.
                    self._last = total - self._stream.capacity
                    self._hand(self._stream.skip_to, epoch, self._last)
                    continue
            if records:
                frames = [encode_frame(epoch, record) for record in records]
                self._hand(self._stream.publish, epoch, frames)
                self._last = records[-1].id
                if len(records) == PAGE:
                    continue
            if select.select([conn], [], [], IDLE_LOOK_SECONDS) != ([], [], []):
                conn.poll()
                conn.notifies.clear()
