"""A hub listener that records when each notification arrived."""

from __future__ import annotations

import json
import threading
import time

from websockets.sync.client import connect


class TimingListener:
    def __init__(self, hub_url: str, after: int) -> None:
        self.arrived_by_id: dict[int, float] = {}
        self.arrived_by_text: dict[str, float] = {}
        self.last_id = after
        self._websocket = connect(
            f"{hub_url}/notifications?after={after}", compression=None, open_timeout=10, max_size=None
        )
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for raw in self._websocket:
                now = time.perf_counter()
                frame = json.loads(raw)
                self.arrived_by_id[frame["id"]] = now
                self.arrived_by_text[frame["message"]] = now
                self.last_id = frame["id"]
        except Exception:  # the connection closing ends the listener
            return

    def wait_until(self, last_id: int, timeout: float) -> float:
        """Returns when notification last_id arrived."""
        deadline = time.monotonic() + timeout
        while self.last_id < last_id:
            if time.monotonic() > deadline:
                raise TimeoutError(f"listener at id {self.last_id}, waiting for {last_id}")
            time.sleep(0.002)
        return self.arrived_by_id[last_id]

    def close(self) -> None:
        self._websocket.close()
        self._thread.join(timeout=5)
