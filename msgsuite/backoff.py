"""Exponential backoff with jitter, for reconnecting and retrying."""

from __future__ import annotations

import random
from collections.abc import Iterator
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
