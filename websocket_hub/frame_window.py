"""The hub's view of the log: its epoch, its head and the most recent frames.

Only the event loop touches a FrameWindow; the follower thread hands it frames
with call_soon_threadsafe. Ids are gap-free, so frame n sits at a fixed
offset from the first frame kept.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from msgsuite import metrics

from .frames import Frame

HEAD = metrics.gauge("msgsuite_hub_head", "Id of the last notification the hub relays (its head)")
NOTIFICATION_DELAY = metrics.histogram(
    "msgsuite_notification_delay_seconds",
    "From a message's created_at to the hub handing its frame to the listeners",
    metrics.LATENCY_BUCKETS,
)


class Relay(Protocol):
    def relay(self, frames: list[Frame]) -> None: ...

    def release_all(self, head: int) -> None: ...


class FrameWindow:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.epoch: str | None = None
        self.head = 0
        self.database_ok_at = 0.0
        self._frames: list[Frame] = []
        self._changed = asyncio.Event()
        self._ready = asyncio.Event()
        self._relay: Relay | None = None

    def relay_to(self, relay: Relay) -> None:
        """`relay` gets each run of new frames as it is published, and hears of every other change."""
        self._relay = relay

    @property
    def changed(self) -> asyncio.Event:
        """Set at the next change; take it before reading, then wait on it."""
        return self._changed

    async def ready(self) -> str:
        await self._ready.wait()
        assert self.epoch is not None
        return self.epoch

    def set_epoch(self, epoch: str, head: int = 0) -> None:
        """The database says which stream it holds; memory starts after id `head` of it."""
        if epoch != self.epoch:
            self._release_all()
            self.epoch = epoch
            self.head = head
            self._frames = []
            self._ready.set()
            self._wake()

    def skip_to(self, epoch: str, head: int) -> None:
        """Forget memory and continue after `head`: the follower fell further behind
        than memory holds, and listeners that far back read the table anyway."""
        if epoch == self.epoch and head > self.head:
            self._release_all()
            self.head = head
            self._frames = []
            self._wake()

    def publish(self, epoch: str, frames: list[Frame]) -> None:
        if epoch != self.epoch or not frames:
            return
        if frames[0].id != self.head + 1:
            # The follower never skips; refuse to keep a hole in memory.
            raise ValueError(f"frame {frames[0].id} does not follow {self.head}")
        now = time.time()
        for frame in frames:  # once per frame, whatever the number of listeners
            NOTIFICATION_DELAY.observe(now - frame.created_at)
        self._frames.extend(frames)
        self.head = frames[-1].id
        if len(self._frames) > 2 * self.capacity:
            del self._frames[: len(self._frames) - self.capacity]
        if self._relay is not None:
            self._relay.relay(frames)
        self._wake()

    def mark_database_ok(self) -> None:
        self.database_ok_at = time.monotonic()

    def after(self, cursor: int, limit: int) -> list[Frame] | None:
        """Frames after cursor (at most limit); None when memory no longer holds them."""
        if cursor >= self.head:
            return []
        if not self._frames or self._frames[0].id > cursor + 1:
            return None
        start = cursor + 1 - self._frames[0].id
        return self._frames[start : start + limit]

    def _release_all(self) -> None:
        if self._relay is not None:
            self._relay.release_all(self.head)

    def _wake(self) -> None:
        HEAD.set(self.head)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
