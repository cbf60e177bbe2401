"""Assertions about the whole stream that several tests share."""

from __future__ import annotations

import re
from collections import Counter

from .load import Outcome
from .stack import Stack, wait_for

_TOTAL = re.compile(r"total de mensajes (\d+)$", re.MULTILINE)


def log_ids(stack: Stack) -> list[int]:
    return [int(n) for n in _TOTAL.findall(stack.client_log())]


def assert_ids_gap_free(stack: Stack) -> int:
    """Rows are exactly ids 1..N and the counter says N; returns N."""
    count, low, high = stack.query("SELECT count(*), min(id), max(id) FROM messages")[0]
    total = stack.total()
    assert (count, low, high) == (total, 1, total), f"rows {count}, ids {low}..{high}, counter {total}"
    return total


def assert_log_complete(stack: Stack, earlier: list[int] | None = None, timeout: float = 120) -> None:
    """The websocket-client log holds notifications 1..N, each once, in order.

    earlier: the ids a removed websocket-client container had logged (after a
    `down`, the new container's log starts where its cursor left off).
    """
    total = stack.total()
    prefix = earlier or []
    wait_for(
        lambda: len(prefix) + len(log_ids(stack)) >= total,
        timeout=timeout,
        what=f"{total} lines in the websocket-client log",
    )
    ids = prefix + log_ids(stack)
    assert ids == list(range(1, total + 1)), _describe(ids, total)


def _describe(ids: list[int], total: int) -> str:
    seen = set(ids)
    missing = [i for i in range(1, total + 1) if i not in seen][:10]
    repeated = sorted({i for i in ids if ids.count(i) > 1})[:10]
    disorder = next((k for k in range(1, len(ids)) if ids[k] <= ids[k - 1]), None)
    return (
        f"{len(ids)} lines for {total} messages; missing {missing}, repeated {repeated}, first disorder at {disorder}"
    )


def assert_reported_stored_once(rows: list[tuple[int, str | None, str]], outcomes: list[Outcome]) -> None:
    """rows: every (id, idempotency_key, message) of the table. Each message a client reported
    as stored or confirmed is there, under the id it reported; no generated text is there twice."""
    by_key = {key: id_ for id_, key, _ in rows if key is not None}
    for outcome in outcomes:
        for key, reported_id in outcome.stored.items():
            assert key in by_key, f"{outcome.client}: confirmed {key} is not stored"
            if reported_id is not None:
                assert by_key[key] == reported_id, (
                    f"{outcome.client}: {key} reported id {reported_id}, stored {by_key[key]}"
                )
    texts = Counter(message for _, _, message in rows if message.startswith("carga "))
    doubled = [text for text, count in texts.items() if count > 1]
    assert doubled == [], f"stored twice: {doubled[:5]}"
