"""Assertions about the whole stream that several tests share."""

from __future__ import annotations

import contextlib
import re
from collections import Counter

from harness.stack import Stack, wait_for

from .load import Outcome

_TOTAL = re.compile(r"total de mensajes (\d+)$", re.MULTILINE)


def log_ids(stack: Stack) -> list[int]:
    return [int(n) for n in _TOTAL.findall(stack.client_log())]


def assert_ids_gap_free(stack: Stack) -> int:
    """Rows are exactly ids 1..N and the counter says N; returns N."""
    count, low, high = stack.query("SELECT count(*), min(id), max(id) FROM messages")[0]
    total = stack.total()
    assert (count, low, high) == (total, 1, total), f"rows {count}, ids {low}..{high}, counter {total}"
    return total


def assert_log_complete(stack: Stack, after: int = 0, earlier: list[int] | None = None, timeout: float = 120) -> None:
    """The websocket-client log holds notifications after+1..N (N the total now), each once, in order.

    after: the total when the test began. On the shared stack, what earlier
    tests did is theirs: only the lines from the first id above `after` on are
    checked, and among them no older id may come back. With after=0 (a stack
    of the test's own) the whole log is checked.
    earlier: the ids a removed websocket-client container had logged (after a
    `down`, the new container's log starts where its cursor left off).
    """
    total = stack.total()

    def window() -> list[int]:
        ids = (earlier or []) + log_ids(stack)
        first = next((k for k, i in enumerate(ids) if i > after), len(ids))
        return ids[first:]

    with contextlib.suppress(TimeoutError):  # the assertion below says what is missing
        wait_for(lambda: len(window()) >= total - after, timeout=timeout)
    ids = window()
    assert ids == list(range(after + 1, total + 1)), _describe(ids, after, total)


def _describe(ids: list[int], after: int, total: int) -> str:
    seen = set(ids)
    missing = [i for i in range(after + 1, total + 1) if i not in seen][:10]
    repeated = sorted({i for i in ids if ids.count(i) > 1})[:10]
    disorder = next((k for k in range(1, len(ids)) if ids[k] <= ids[k - 1]), None)
    return (
        f"{len(ids)} lines for ids {after + 1}..{total}; "
        f"missing {missing}, repeated {repeated}, first disorder at {disorder}"
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
