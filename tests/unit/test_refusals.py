"""store_isolating_refusals (and its awaited twin): a refused member does not fail the others of its group."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from msgsuite.database import DatabaseUnavailable, MessageRefused
from msgsuite.refusals import store_isolating_refusals, store_isolating_refusals_async


class TransactionalStore:
    """Stores a group all or nothing, like one transaction: the first refused member refuses it whole."""

    def __init__(self, refused: set[str] | frozenset[str] = frozenset(), fail_on_call: int | None = None) -> None:
        self.refused = set(refused)
        self.fail_on_call = fail_on_call
        self.calls: list[list[str]] = []
        self.stored: list[str] = []

    def __call__(self, members: Sequence[str]) -> list[str]:
        self.calls.append(list(members))
        if len(self.calls) == self.fail_on_call:
            raise DatabaseUnavailable("terminating connection due to administrator command")
        for member in members:
            if member in self.refused:
                raise MessageRefused(f"check constraint refuses {member}")
        self.stored.extend(members)
        return [f"stored {member}" for member in members]


Isolate = Callable[[Sequence[str], TransactionalStore], list[Any]]


def isolated_on_a_loop(members: Sequence[str], store: TransactionalStore) -> list[Any]:
    async def store_awaited(group: Sequence[str]) -> list[str]:
        await asyncio.sleep(0)
        return store(group)

    return asyncio.run(store_isolating_refusals_async(members, store_awaited))


@pytest.fixture(params=[store_isolating_refusals, isolated_on_a_loop], ids=["blocking", "awaited"])
def isolate(request: pytest.FixtureRequest) -> Isolate:
    """The halving driven by a blocking store and by an awaited one: both must behave alike."""
    isolate: Isolate = request.param
    return isolate


def members(n: int) -> list[str]:
    return [f"m{i}" for i in range(n)]


def check_outcomes(group: list[str], store: TransactionalStore, outcomes: Sequence[object]) -> None:
    """Each member's outcome in order; each member not refused stored exactly once, in order."""
    assert len(outcomes) == len(group)
    for member, outcome in zip(group, outcomes, strict=True):
        if member in store.refused:
            assert isinstance(outcome, MessageRefused) and outcome.reason == f"check constraint refuses {member}"
        else:
            assert outcome == f"stored {member}"
    assert store.stored == [m for m in group if m not in store.refused]


def test_nothing_refused_costs_one_transaction(isolate: Isolate) -> None:
    store = TransactionalStore()
    outcomes = isolate(members(7), store)
    check_outcomes(members(7), store, outcomes)
    assert store.calls == [members(7)]


def test_an_empty_group_stores_nothing(isolate: Isolate) -> None:
    store = TransactionalStore()
    assert isolate([], store) == [] and store.calls == []


def test_a_refused_member_gets_its_refusal_and_the_others_are_stored_in_order(isolate: Isolate) -> None:
    group = members(8)
    store = TransactionalStore(refused={"m5"})
    outcomes = isolate(group, store)
    check_outcomes(group, store, outcomes)
    # 1 whole + ceil(log2 8) halvings + 1 for the members after it
    assert len(store.calls) <= 1 + math.ceil(math.log2(8)) + 1


@pytest.mark.parametrize("n", range(1, 41))
def test_one_refused_member_anywhere_costs_at_most_log2_n_plus_one_extra_transactions(isolate: Isolate, n: int) -> None:
    group = members(n)
    for position in range(n):
        store = TransactionalStore(refused={group[position]})
        outcomes = isolate(group, store)
        check_outcomes(group, store, outcomes)
        extra = len(store.calls) - 1
        assert extra <= math.ceil(math.log2(n)) + 1, (n, position, store.calls)


@pytest.mark.parametrize("n", range(2, 21))
def test_two_refused_members_anywhere(isolate: Isolate, n: int) -> None:
    group = members(n)
    for first, second in itertools.combinations(range(n), 2):
        store = TransactionalStore(refused={group[first], group[second]})
        outcomes = isolate(group, store)
        check_outcomes(group, store, outcomes)
        # Each refused member is isolated on its own, at the same cost as one alone.
        assert len(store.calls) - 1 <= 2 * (math.ceil(math.log2(n)) + 1), (n, first, second)


@pytest.mark.parametrize("n", [1, 2, 3, 8, 13])
def test_every_member_refused(isolate: Isolate, n: int) -> None:
    group = members(n)
    store = TransactionalStore(refused=set(group))
    outcomes = isolate(group, store)
    check_outcomes(group, store, outcomes)
    assert store.stored == []


@pytest.mark.parametrize("n", [1, 5, 16, 23])
def test_an_error_that_is_not_a_refusal_fails_every_member_not_stored_yet(isolate: Isolate, n: int) -> None:
    group = members(n)
    for position in range(n):
        # Every call the isolation makes, failed in turn: what was stored keeps its result.
        calls_needed = len(_calls_for(group, {group[position]}))
        for failing_call in range(1, calls_needed + 1):
            store = TransactionalStore(refused={group[position]}, fail_on_call=failing_call)
            outcomes = isolate(group, store)
            assert len(outcomes) == n
            failed = [o for o in outcomes if isinstance(o, DatabaseUnavailable)]
            assert failed and all(o is failed[0] for o in failed)
            first_failed = outcomes.index(failed[0])
            assert outcomes[first_failed:] == [failed[0]] * (n - first_failed)
            for member, outcome in zip(group[:first_failed], outcomes[:first_failed], strict=True):
                if member == group[position]:
                    assert isinstance(outcome, MessageRefused)
                else:
                    assert outcome == f"stored {member}"
            assert store.stored == [m for m in group[:first_failed] if m != group[position]]


def test_an_error_on_the_first_try_fails_the_whole_group(isolate: Isolate) -> None:
    store = TransactionalStore(fail_on_call=1)
    outcomes = isolate(members(4), store)
    assert all(isinstance(o, DatabaseUnavailable) for o in outcomes) and len(outcomes) == 4
    assert store.stored == []


def test_an_error_after_the_refused_member_keeps_what_was_stored_before_it(isolate: Isolate) -> None:
    group = members(8)
    calls = len(_calls_for(group, {"m3"}))
    store = TransactionalStore(refused={"m3"}, fail_on_call=calls)  # the retry of m4..m7 fails
    outcomes = isolate(group, store)
    assert outcomes[:3] == ["stored m0", "stored m1", "stored m2"]
    assert isinstance(outcomes[3], MessageRefused)
    assert all(isinstance(o, DatabaseUnavailable) for o in outcomes[4:])
    assert store.stored == ["m0", "m1", "m2"]


def _calls_for(group: list[str], refused: set[str]) -> list[list[str]]:
    store = TransactionalStore(refused=refused)
    store_isolating_refusals(group, store)
    return store.calls
