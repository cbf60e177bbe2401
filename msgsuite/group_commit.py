"""Group commit: messages sent at the same moment share one store transaction.

Every store transaction takes the hot counter row's lock until it commits, so
a server that runs one transaction per request can store no more requests per
second than the database can commit transactions. Here the requests that
arrive while a transaction is running wait in order, and the next
transaction stores all of them together. A lone message goes out at once
(nothing waits for a timer). Each message still gets its own total and its
own notification, in arrival order. A request whose message the database
refuses gets that refusal; the rest of its group is stored without it (see
refusals.py). Any other error fails the requests not stored yet, which the
clients retry with their keys.

There is no writer thread: the request thread that finds nobody writing
stores the group itself (a lone request crosses no thread), then hands the
writing to the first request that waited meanwhile, whose thread wakes to
store the next group and then returns its own answer (leader/follower).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from . import crash
from .messages import StoredMessage
from .refusals import store_isolating_refusals

log = logging.getLogger(__name__)

StoreFunction = Callable[[list[str], list[str | None]], list[StoredMessage]]


class _Sized(Protocol):
    texts: list[str]


Waiting = TypeVar("Waiting", bound=_Sized)


def take_group(waiting: deque[Waiting], max_messages: int) -> list[Waiting]:
    """What is waiting now (at least one request), up to max_messages, in arrival order; a request is never split."""
    group = [waiting.popleft()]
    size = len(group[0].texts)
    while waiting and size + len(waiting[0].texts) <= max_messages:
        request = waiting.popleft()
        group.append(request)
        size += len(request.texts)
    return group


def split_per_request(records: list[StoredMessage], counts: Sequence[int]) -> list[list[StoredMessage]]:
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
    woken: threading.Event = field(default_factory=threading.Event)  # answered, or asked to write
    outcome: list[StoredMessage] | Exception | None = None
    writes: bool = False  # its thread stores the next group


class GroupCommitter:
    """Stores through the request threads themselves; an error outside the store itself ends the process."""

    def __init__(self, store: StoreFunction, max_messages: int = 1000) -> None:
        self._store = store
        self._max_messages = max_messages
        self._lock = threading.Lock()
        self._waiting: deque[_Request] = deque()
        self._writing = False

    def store(self, texts: Sequence[str], keys: Sequence[str | None]) -> list[StoredMessage]:
        """Stores validated texts (one request's) and returns their records; raises what the store raised."""
        request = _Request(list(texts), list(keys))
        with self._lock:
            self._waiting.append(request)
            request.writes = not self._writing
            self._writing = True
        while request.outcome is None:
            if request.writes:
                self._write_group_then_hand_over()
            else:
                request.woken.wait()
        if isinstance(request.outcome, Exception):
            raise request.outcome
        return request.outcome

    def _write_group_then_hand_over(self) -> None:
        """Stores the group at the head (the writer's own request first), answers it, passes the writing on."""
        try:
            with self._lock:
                group = take_group(self._waiting, self._max_messages)
            outcomes = store_isolating_refusals(group, self._store_requests)
            for request, outcome in zip(group, outcomes, strict=True):
                request.outcome = outcome
                request.woken.set()
            with self._lock:
                if self._waiting:
                    self._waiting[0].writes = True
                    self._waiting[0].woken.set()
                else:
                    self._writing = False
        except BaseException as error:  # the others would wait for ever: see crash.py
            crash.exit_now("the group-commit writer", error)

    def _store_requests(self, requests: Sequence[_Request]) -> list[list[StoredMessage]]:
        """The requests' messages in one transaction; their records, split back per request."""
        records = self._store([t for r in requests for t in r.texts], [k for r in requests for k in r.keys])
        return split_per_request(records, [len(r.texts) for r in requests])
