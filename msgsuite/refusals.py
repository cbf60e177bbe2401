"""Storing a group when the database may refuse one of its members.

A group (the requests of one group commit, or the deliveries of one AMQP
batch) is stored in one transaction. When the database refuses it because of
one member's content, the others must still be stored, in order, each once:
the first refused member is found by halving, storing (and so committing)
the half before it each time, and the members after it are tried again
together. One refused member among n costs at most ceil(log2 n) + 1 extra
transactions; a group with nothing refused costs one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from .database import MessageRefused

Member = TypeVar("Member")
Result = TypeVar("Result")


def store_isolating_refusals(
    members: Sequence[Member], store: Callable[[Sequence[Member]], list[Result]]
) -> list[Result | Exception]:
    """One outcome per member, in order: store's result for it, or the exception that is its answer.

    store(members) stores them in one transaction and returns one result per
    member, or raises. A refused member's outcome is the MessageRefused that
    names the database's reason. Any other exception fails every member not
    stored yet (members stored before it keep their results).
    """
    outcomes: list[Result | Exception] = []
    rest = list(members)
    while rest:
        try:
            outcomes.extend(store(rest))
            return outcomes
        except MessageRefused as refusal:
            last_refusal = refusal
        except Exception as error:
            return outcomes + [error] * len(rest)
        # rest[stored:failing_end] is known to hold a refused member.
        stored, failing_end = 0, len(rest)
        while failing_end - stored > 1:
            middle = stored + (failing_end - stored) // 2
            try:
                outcomes.extend(store(rest[stored:middle]))
                stored = middle
            except MessageRefused as refusal:
                last_refusal, failing_end = refusal, middle
            except Exception as error:
                return outcomes + [error] * (len(rest) - stored)
        # The last refusal was raised by the first refused member of its
        # transaction, which is rest[stored].
        outcomes.append(last_refusal)
        rest = rest[stored + 1 :]
    return outcomes
