"""SIGTERM (docker stop) and SIGINT both ask a service to finish cleanly."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType


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
