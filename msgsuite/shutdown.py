"""SIGTERM (docker stop) and SIGINT both ask a service to finish cleanly."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from . import crash


def on_stop(callback: Callable[[], None]) -> threading.Event:
    """Runs callback once on SIGTERM or SIGINT; the returned event is set then."""
    stopping = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            callback()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stopping


def stop_event() -> asyncio.Event:
    """For a service on an event loop (call it on the running loop): an event set on SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def until_stopped(stop: asyncio.Event, work: asyncio.Future[Any], what: str) -> None:
    """Returns once stop is set. `work` is meant to run until then: if it ends first, failed or not,
    the process ends (see crash.py), since it would do nothing ever again."""
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if work.done():
        error = None if work.cancelled() else work.exception()
        crash.exit_now(what, error or RuntimeError(f"{what} ended without being asked to"))
