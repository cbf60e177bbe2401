"""What a server does without its database: the benchmark's no-op ceiling.

`python -m rest_server.noop`, `grpc_server.noop` and `rabbitmq_server.noop`
run each server exactly as it runs (same settings, middleware, validation and
answers) with these in place of the store, so the benchmark can tell what the
framework itself allows from what storing costs. Nothing here is durable:
the records it answers are made up, numbered from 1 in this process.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime

from .messages import StoredMessage, Via, validate_batch


class NumberedRecords:
    """A StoreFunction that stores nothing: the next ids of this process, the time now."""

    def __init__(self, via: Via) -> None:
        self._via = via
        self._ids = itertools.count(1)

    def __call__(self, texts: list[str], keys: list[str | None]) -> list[StoredMessage]:
        now = datetime.now(UTC)
        return [
            StoredMessage(next(self._ids), self._via, text, now, key) for text, key in zip(texts, keys, strict=True)
        ]


class NothingStored:
    """MessageStore's interface, validating the same way and answering at once."""

    def __init__(self, via: Via) -> None:
        self._records = NumberedRecords(via)

    async def validate_and_store(self, texts: Sequence[object], keys: Sequence[str | None]) -> list[StoredMessage]:
        return self._records(validate_batch(list(texts), list(keys)), list(keys))
