"""Where the client is in the stream: the epoch and the last id it printed, kept on disk."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Cursor:
    epoch: str | None = None
    last_id: int = 0

    def accepts(self, epoch: str, frame_id: int) -> bool:
        """Whether a frame is new to this cursor: a new epoch starts over."""
        return epoch != self.epoch or frame_id > self.last_id

    def query(self) -> str:
        query = f"after={self.last_id}"
        return query + f"&epoch={self.epoch}" if self.epoch else query


class CursorFile:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> Cursor:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return Cursor(str(data["epoch"]) if data.get("epoch") else None, int(data["last_id"]))
        except FileNotFoundError:
            return Cursor()
        except (ValueError, KeyError, TypeError):
            # A torn or foreign file: starting over repeats lines, which beats skipping them.
            return Cursor()

    def save(self, cursor: Cursor) -> None:
        # Written whole to a temporary file and renamed: a crash leaves the old cursor or the new one.
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"epoch": cursor.epoch, "last_id": cursor.last_id}), encoding="utf-8")
        os.replace(temporary, self.path)
