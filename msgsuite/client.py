"""What a client sends through: one interface for the three protocols."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Rejected(Exception):
    """The server refused the message; sending it again cannot help."""


class Unreachable(Exception):
    """The server could not be reached or could not store now; a retry may help.

    retry_after: how long the server asked the client to wait (a rate limit), if it said.
    """

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Receipt:
    """What the server answered: the stored record, or only that the broker has it."""

    id: int | None = None
    repeated: bool = False

    def line(self, key: str) -> str:
        if self.id is None:
            return f"queued key={key} (confirmed by the broker; its total arrives with the notification)"
        line = f"stored id={self.id} total={self.id} key={key}"
        return line + " (repeated idempotency key: nothing new stored)" if self.repeated else line


class Sender(Protocol):
    """Sends messages with their idempotency keys; raises Rejected or Unreachable."""

    def send(self, text: str, key: str) -> Receipt: ...

    def send_batch(self, texts: list[str], keys: list[str]) -> list[Receipt]:
        """All or nothing: one receipt per text, in order, or an exception for the whole batch."""
        ...

    def close(self) -> None: ...


def close_sender(sender: Sender) -> None:
    sender.close()
