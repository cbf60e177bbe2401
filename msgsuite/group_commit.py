"""Group commit: messages sent at the same moment share one store transaction.

Every store transaction takes the hot counter row's lock until it commits, so
a server that runs one transaction per request can store no more requests per
second than the database can commit transactions. Here one writer task on the
server's event loop stores a group while the requests that arrive meanwhile
wait in order, and stores all of them together next. A lone message goes out
at once (nothing waits for a timer), and nothing crosses a thread: a lone
request costs its statement's round trip and one task switch. Each message
still gets its own total and its own notification, in arrival order. A
request whose message the database refuses gets that refusal; the rest of
its group is stored without it (see refusals.py). Any other error fails the
requests not stored yet, which the clients retry with their keys.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from . import crash
from .messages import StoredMessage
from .refusals import store_isolating_refusals_async

AsyncStoreFunction = Callable[[list[str], list[str | None]], Awaitable[list[StoredMessage]]]


def _split_per_request(records: list[StoredMessage], counts: Sequence[int]) -> list[list[StoredMessage]]:
    """One group's records, in order, cut back into its requests' (counts: each request's number of texts)."""
    split, start = [], 0
    for count in counts:
        split.append(records[start : start + count])
        start += count
    return split


@dataclass
class _Request:
    texts: list[str]
    keys: list[str | None]
    result: asyncio.Future[list[StoredMessage]]


class GroupCommitter:
    """Lives on the loop that first stores through it; an error outside the store itself ends the process."""

    def __init__(self, store: AsyncStoreFunction, max_messages: int = 1000) -> None:
        self._store = store
        self._max_messages = max_messages
        self._waiting: deque[_Request] = deque()
        self._writer: asyncio.Task[None] | None = None

    async def store(self, texts: Sequence[str], keys: Sequence[str | None]) -> list[StoredMessage]:
        """Stores validated texts (one request's) and returns their records; raises what the store raised.

        A request whose waiter is cancelled is stored all the same (its key makes a retry safe).
        """
        request = _Request(list(texts), list(keys), asyncio.get_running_loop().create_future())
        self._waiting.append(request)
        if self._writer is None:
            self._start_writer()
        return await request.result

    def _start_writer(self) -> None:
        self._writer = asyncio.create_task(self._write_while_waiting(), name="group-commit")
        self._writer.add_done_callback(self._writer_done)

    async def _write_while_waiting(self) -> None:
        while self._waiting:
            group = self._next_group()
            outcomes = await store_isolating_refusals_async(group, self._store_requests)
            for request, outcome in zip(group, outcomes, strict=True):
                if request.result.cancelled():
                    continue
                if isinstance(outcome, Exception):
                    request.result.set_exception(outcome)
                else:
                    request.result.set_result(outcome)

    def _writer_done(self, writer: asyncio.Task[None]) -> None:
        self._writer = None
        if writer.cancelled():
            return  # the loop is shutting down
        error = writer.exception()
        if error is not None:
            crash.exit_now("the group-commit writer", error)
        elif self._waiting:  # arrived after the writer's last look
            self._start_writer()

    async def _store_requests(self, requests: Sequence[_Request]) -> list[list[StoredMessage]]:
        """The requests' messages in one transaction; their records, split back per request."""
        records = await self._store([t for r in requests for t in r.texts], [k for r in requests for k in r.keys])
        return _split_per_request(records, [len(r.texts) for r in requests])

    def _next_group(self) -> list[_Request]:
        """What is waiting now (at least one request), up to max_messages, in arrival order."""
        group = [self._waiting.popleft()]
        size = len(group[0].texts)
        while self._waiting and size + len(self._waiting[0].texts) <= self._max_messages:
            request = self._waiting.popleft()
            group.append(request)
            size += len(request.texts)
        return group
