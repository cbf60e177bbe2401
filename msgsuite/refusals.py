"""Storing a group when the database may refuse one of its members.

A group (the requests of one group commit, or the deliveries of one AMQP
batch) is stored in one transaction. When the database refuses it because of
one member's content, the others must still be stored, in order, each once:
the first refused member is found by halving, storing (and so committing)
the half before it each time, and the members after it are tried again
together. One refused member among n costs at most ceil(log2 n) + 1 extra
transactions; a group with nothing refused costs one.

The halving is written once (`_attempts`, which says what to store next and
is told how it went); store_isolating_refusals drives it with a blocking
store and store_isolating_refusals_async with an awaitable one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import TypeVar

from .database import MessageRefused

Member = TypeVar("Member")
Result = TypeVar("Result")

# Yields the members to store next in one transaction, is sent store's results for them or what it raised,
# and returns one outcome per member.
_Attempts = Generator[Sequence[Member], "list[Result] | Exception", "list[Result | Exception]"]


def store_isolating_refusals(
    members: Sequence[Member], store: Callable[[Sequence[Member]], list[Result]]
) -> list[Result | Exception]:
    """One outcome per member, in order: store's result for it, or the exception that is its answer.

    store(members) stores them in one transaction and returns one result per
    member, or raises. A refused member's outcome is the MessageRefused that
    names the database's reason. Any other exception fails every member not
    stored yet (members stored before it keep their results).
    """
    attempts: _Attempts[Member, Result] = _attempts(members)
    try:
        attempt = next(attempts)
        while True:
            try:
                outcome: list[Result] | Exception = store(attempt)
            except Exception as error:
                outcome = error
            attempt = attempts.send(outcome)
    except StopIteration as done:
        outcomes: list[Result | Exception] = done.value
        return outcomes


async def store_isolating_refusals_async(
    members: Sequence[Member], store: Callable[[Sequence[Member]], Awaitable[list[Result]]]
) -> list[Result | Exception]:
    """store_isolating_refusals with a store that is awaited (an event loop's)."""
    attempts: _Attempts[Member, Result] = _attempts(members)
    try:
        attempt = next(attempts)
        while True:
            try:
                outcome: list[Result] | Exception = await store(attempt)
            except Exception as error:
                outcome = error
            attempt = attempts.send(outcome)
    except StopIteration as done:
        outcomes: list[Result | Exception] = done.value
        return outcomes


def _attempts(members: Sequence[Member]) -> _Attempts[Member, Result]:
    outcomes: list[Result | Exception] = []
    rest = list(members)
    while rest:
        outcome = yield rest
        if not isinstance(outcome, Exception):
            return outcomes + outcome
        if not isinstance(outcome, MessageRefused):
            return outcomes + [outcome] * len(rest)
        last_refusal = outcome
        # rest[stored:failing_end] is known to hold a refused member.
        stored, failing_end = 0, len(rest)
        while failing_end - stored > 1:
            middle = stored + (failing_end - stored) // 2
            outcome = yield rest[stored:middle]
            if not isinstance(outcome, Exception):
                outcomes.extend(outcome)
                stored = middle
            elif isinstance(outcome, MessageRefused):
                last_refusal, failing_end = outcome, middle
            else:
                return outcomes + [outcome] * (len(rest) - stored)
        # The last refusal was raised by the first refused member of its
        # transaction, which is rest[stored].
        outcomes.append(last_refusal)
        rest = rest[stored + 1 :]
    return outcomes
