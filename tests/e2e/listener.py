"""A listener that behaves like a real one: it reconnects with after=<last id> and its epoch."""

from __future__ import annotations

import json
import threading
import time

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from harness.stack import Stack


class ResumingListener:
    def __init__(self, stack: Stack, after: int = 0, epoch: str | None = None) -> None:
        self._stack = stack
        self.last_id = after
        self.epoch = epoch
        self.frames: list[dict[str, object]] = []
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ResumingListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def ids(self) -> list[int]:
        return [int(f["id"]) for f in list(self.frames)]  # type: ignore[call-overload]

    def wait_until(self, last_id: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.last_id < last_id:
            if time.monotonic() > deadline:
                raise TimeoutError(f"listener reached id {self.last_id}, waiting for {last_id}")
            time.sleep(0.2)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._stack.listen(self.last_id, self.epoch) as websocket:
                    self.connections += 1
                    while not self._stop.is_set():
                        try:
                            raw = websocket.recv(timeout=0.5)
                        except TimeoutError:
                            continue
                        frame = json.loads(raw)
                        self.frames.append(frame)
                        self.epoch, self.last_id = str(frame["epoch"]), int(frame["id"])  # type: ignore[call-overload]
            except (ConnectionClosed, InvalidHandshake, InvalidURI, OSError, TimeoutError, RuntimeError):
                self._stack.forget_ports()
                time.sleep(0.5)
