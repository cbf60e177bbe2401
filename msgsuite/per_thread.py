"""One object per worker thread, made on first use and closed together at the end.

Senders and database connections are not shared between threads; a pool of
worker threads each needs its own, and whoever ran the pool closes them all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerThread(Generic[T]):
    def __init__(self, make: Callable[[], T], close: Callable[[T], None]) -> None:
        self._make = make
        self._close = close
        self._local = threading.local()
        self._made: list[T] = []
        self._lock = threading.Lock()

    def get(self) -> T:
        """The calling thread's object, made now if it has none."""
        try:
            value: T = self._local.value
            return value
        except AttributeError:
            value = self._local.value = self._make()
            with self._lock:
                self._made.append(value)
            return value

    def close_all(self) -> None:
        with self._lock:
            made, self._made = self._made, []
        for value in made:
            self._close(value)
