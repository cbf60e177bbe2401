"""Group commit: messages sent at the same moment share one store transaction.

Every store transaction takes the hot counter row's lock until it commits, so
a server that runs one transaction per request can store no more requests per
second than the database can commit transactions. Here request threads hand
their messages to one writer thread; while it stores a group, the next
requests queue up, and it stores all of them together next. A lone message
goes out at once (nothing waits for a timer). Each message still gets its
own total and its own notification, in arrival order. A request whose
message the database refuses gets that refusal; the rest of its group is
stored without it (see refusals.py). Any other error fails the requests not
stored yet, which the clients retry with their keys.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from .messages import StoredMessage
from .refusals import store_isolating_refusals

log = logging.getLogger(__name__)

StoreFunction = Callable[[list[str], list[str | None]], list[StoredMessage]]


@dataclass
class _Request:
    texts: list[str]
    keys: list[str | None]
    result: Future[list[StoredMessage]] = field(default_factory=Future)


def split_per_request(records: list[StoredMessage], counts: Sequence[int]) -> list[list[StoredMessage]]:
    """One group's records, in order, cut back into its requests' (counts: each request's number of texts)."""
    split, start = [], 0
    for count in counts:
        split.append(records[start : start + count])
        start += count
    return split


class GroupCommitter:
    """Owns one writer thread; an error outside the store itself ends the process (see crash.py)."""

    def __init__(self, store: StoreFunction, max_messages: int = 1000) -> None:
        self._store = store
        self._max_messages = max_messages
        self._queue: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._held: _Request | None = None
        threading.Thread(target=self._write_forever, name="group-commit", daemon=True).start()

    def store(self, texts: Sequence[str], keys: Sequence[str | None]) -> list[StoredMessage]:
        """Stores validated texts (one request's) and waits for their records; raises what the store raised."""
        return self.submit(texts, keys).result()

    def submit(self, texts: Sequence[str], keys: Sequence[str | None]) -> Future[list[StoredMessage]]:
        """Queues validated texts (one request's); the future holds their records or what the store raised."""
        request = _Request(list(texts), list(keys))
        self._queue.put(request)
        return request.result

    def _write_forever(self) -> None:
        while True:
            group = self._next_group()
            outcomes = store_isolating_refusals(group, self._store_requests)
            for request, outcome in zip(group, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    request.result.set_exception(outcome)
                else:
                    request.result.set_result(outcome)

    def _store_requests(self, requests: Sequence[_Request]) -> list[list[StoredMessage]]:
        """The requests' messages in one transaction; their records, split back per request."""
        records = self._store([t for r in requests for t in r.texts], [k for r in requests for k in r.keys])
        return split_per_request(records, [len(r.texts) for r in requests])

    def _next_group(self) -> list[_Request]:
        """What is waiting now (at least one request), up to max_messages."""
        first = self._held or self._queue.get()
        self._held = None
        group, size = [first], len(first.texts)
        while size < self._max_messages:
            try:
                request = self._queue.get_nowait()
            except queue.Empty:
                break
            if size + len(request.texts) > self._max_messages:
                self._held = request  # first of the next group, so order is kept
                break
            group.append(request)
            size += len(request.texts)
        return group
