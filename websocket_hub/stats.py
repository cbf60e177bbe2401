"""GET /stats: the stream's counts per protocol, read from the stream row and kept for a second."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from msgsuite.database import ConnectionPool
from msgsuite.store import stream_counts

MAX_AGE_SECONDS = 1.0


@dataclass(frozen=True)
class StreamCounts:
    epoch: str
    total: int
    by_via: dict[str, int]


class StreamCountsCache:
    """At most one read per MAX_AGE_SECONDS, however many pages ask: a page storm
    costs the database nothing more, and concurrent askers share one read."""

    def __init__(self, pool: ConnectionPool, max_age: float = MAX_AGE_SECONDS) -> None:
        self._pool = pool
        self._max_age = max_age
        self._counts: StreamCounts | None = None
        self._read_at = 0.0
        self._reading: asyncio.Future[StreamCounts] | None = None

    async def get(self) -> StreamCounts:
        """Raises a DatabaseError (see msgsuite/database.py) when the row cannot be read."""
        if self._counts is not None and time.monotonic() - self._read_at < self._max_age:
            return self._counts
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read())
            self._reading.add_done_callback(self._done)
        return await asyncio.shield(self._reading)

    async def _read(self) -> StreamCounts:
        def read() -> StreamCounts:
            with self._pool.connection() as conn:
                return StreamCounts(*stream_counts(conn))

        counts = await asyncio.get_running_loop().run_in_executor(None, read)
        self._counts, self._read_at = counts, time.monotonic()
        return counts

    def _done(self, reading: asyncio.Future[StreamCounts]) -> None:
        self._reading = None
        if not reading.cancelled():
            reading.exception()  # retrieved here, so a failure with no one waiting is not logged as lost
