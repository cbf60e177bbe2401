"""Exponential backoff with jitter, for reconnecting and retrying."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    first: float = 0.2
    cap: float = 5.0
    factor: float = 2.0

    def delays(self, attempts: int | None = None) -> Iterator[float]:
        """Yields the wait before each retry: `attempts` of them, or forever when None."""
        ceiling = self.first
        made = 0
        while attempts is None or made < attempts:
            # "Full jitter" keeps many clients that failed together from retrying together.
            yield random.uniform(ceiling / 2, ceiling)
            ceiling = min(self.cap, ceiling * self.factor)
            made += 1


class Reconnecting:
    """The waits of a loop that keeps one connection open: they grow while attempts
    fail and start small again once a connection worked. Shared by the consumer
    (broker), the hub's follower (database) and the websocket client (hub)."""

    def __init__(self, what: str, log: logging.Logger, cap: float) -> None:
        self._what = what
        self._log = log
        self._backoff = Backoff(cap=cap)
        self._delays = self._backoff.delays()

    def connected(self) -> None:
        self._delays = self._backoff.delays()

    def lost(self, reason: BaseException | str) -> float:
        """Logs why the connection ended; returns how long to wait before the next attempt."""
        if isinstance(reason, BaseException):
            text = str(reason).strip()
            reason = type(reason).__name__ + (f": {text.splitlines()[0]}" if text else "")
        delay = next(self._delays)
        self._log.warning("%s ended (%s); reconnecting in %.1f s", self._what, reason, delay)
        return delay


def keep_connected(
    session: Callable[[], None],
    errors: tuple[type[BaseException], ...],
    reconnecting: Reconnecting,
    stopping: threading.Event,
) -> None:
    """Runs session() again whenever it ends with one of `errors`, until stopping is set.

    session() calls reconnecting.connected() once its connection works. Any
    other exception leaves this loop (and so ends the process: see crash.py).
    """
    while not stopping.is_set():
        try:
            session()
        except errors as error:
            if stopping.is_set():
                return
            stopping.wait(reconnecting.lost(error))
