"""Group commit on an event loop, ordered by the loop itself: no sleeps, no threads.

The fake store holds its first transaction open on an asyncio.Event, so the
requests started meanwhile are known to be waiting behind it once the loop
has run them up to their await.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from msgsuite.database import DatabaseUnavailable, MessageRefused
from msgsuite.group_commit import GroupCommitter
from msgsuite.messages import StoredMessage, Via

from .test_crash import assert_crashed, run_python


class GatedStore:
    """Numbers messages like the database; with gated=True its first transaction waits for release()."""

    def __init__(self, gated: bool = False, refused: Sequence[str] = (), fail_on: str | None = None) -> None:
        self.total = 0
        self.transactions: list[list[str]] = []
        self.refused = set(refused)
        self.fail_on = fail_on
        self.started = asyncio.Event()
        self._gate = asyncio.Event()
        if not gated:
            self._gate.set()

    def release(self) -> None:
        self._gate.set()

    async def __call__(self, texts: list[str], keys: list[str | None]) -> list[StoredMessage]:
        self.started.set()
        await self._gate.wait()
        self.transactions.append(list(texts))
        if self.fail_on in texts:
            raise DatabaseUnavailable("terminating connection due to administrator command")
        for text in texts:
            if text in self.refused:
                raise MessageRefused(f"check constraint refuses {text}")
        records = []
        for text, key in zip(texts, keys, strict=True):
            self.total += 1
            records.append(StoredMessage(self.total, Via.REST, text, datetime.now(UTC), key))
        return records


async def settle() -> None:
    """Lets every ready task run up to its next wait."""
    for _ in range(10):
        await asyncio.sleep(0)


def sent(committer: GroupCommitter, *texts: str) -> asyncio.Task[list[StoredMessage]]:
    return asyncio.create_task(committer.store(list(texts), [f"key-{t}" for t in texts]))


def test_a_lone_request_is_stored_at_once_with_its_own_records() -> None:
    async def scenario() -> None:
        store = GatedStore()
        records = await GroupCommitter(store).store(["a", "b"], ["k1", None])
        assert [(r.id, r.message, r.idempotency_key) for r in records] == [(1, "a", "k1"), (2, "b", None)]
        assert store.transactions == [["a", "b"]]

    asyncio.run(scenario())


def test_requests_that_arrive_during_a_transaction_share_the_next_one_in_arrival_order() -> None:
    async def scenario() -> None:
        store = GatedStore(gated=True)
        committer = GroupCommitter(store)
        first = sent(committer, "m0")
        await store.started.wait()  # the writer holds m0's transaction open
        others = [sent(committer, f"m{i}") for i in range(1, 50)]
        await settle()
        store.release()
        results = await asyncio.gather(first, *others)
        assert [r[0].message for r in results] == [f"m{i}" for i in range(50)]
        assert [r[0].id for r in results] == list(range(1, 51))
        assert store.transactions == [["m0"], [f"m{i}" for i in range(1, 50)]]

    asyncio.run(scenario())


def test_a_group_never_exceeds_the_limit_and_a_request_is_never_split() -> None:
    async def scenario() -> None:
        store = GatedStore(gated=True)
        committer = GroupCommitter(store, max_messages=5)
        tasks = [sent(committer, "first")]
        await store.started.wait()
        tasks += [sent(committer, f"{i}a", f"{i}b") for i in range(4)]
        await settle()
        store.release()
        await asyncio.gather(*tasks)
        assert store.transactions == [["first"], ["0a", "0b", "1a", "1b"], ["2a", "2b", "3a", "3b"]]

    asyncio.run(scenario())


def test_a_failed_group_fails_every_request_in_it_and_the_writer_goes_on() -> None:
    async def scenario() -> None:
        store = GatedStore(gated=True, fail_on="bad")
        committer = GroupCommitter(store)
        first = sent(committer, "first")
        await store.started.wait()
        group = [sent(committer, "x"), sent(committer, "bad"), sent(committer, "y")]
        await settle()
        store.release()
        assert (await first)[0].message == "first"
        outcomes = await asyncio.gather(*group, return_exceptions=True)
        assert all(isinstance(o, DatabaseUnavailable) for o in outcomes)
        assert (await committer.store(["after"], [None]))[0].message == "after"

    asyncio.run(scenario())


def test_a_refused_request_fails_alone_and_the_rest_of_its_group_is_stored_once_in_order() -> None:
    async def scenario() -> None:
        store = GatedStore(gated=True, refused=["veneno"])
        committer = GroupCommitter(store)
        first = sent(committer, "primero")
        await store.started.wait()
        group = [sent(committer, *texts) for texts in (["a1", "a2"], ["veneno", "b"], ["c1"], ["d1", "d2"])]
        await settle()
        store.release()
        await first
        a, refused, c, d = await asyncio.gather(*group, return_exceptions=True)
        assert isinstance(refused, MessageRefused) and "veneno" in refused.reason
        assert store.transactions[1] == ["a1", "a2", "veneno", "b", "c1", "d1", "d2"]
        stored = [r.message for answer in (a, c, d) for r in answer]  # type: ignore[union-attr]
        assert stored == ["a1", "a2", "c1", "d1", "d2"] and store.total == 6

    asyncio.run(scenario())


def test_a_request_whose_caller_gave_up_is_stored_all_the_same_and_the_others_answered() -> None:
    async def scenario() -> None:
        store = GatedStore(gated=True)
        committer = GroupCommitter(store)
        first = sent(committer, "first")
        await store.started.wait()
        abandoned, kept = sent(committer, "abandoned"), sent(committer, "kept")
        await settle()
        abandoned.cancel()  # a client that disconnected: its key makes its retry safe
        await settle()
        store.release()
        await first
        assert (await kept)[0].message == "kept"
        assert store.transactions == [["first"], ["abandoned", "kept"]]

    asyncio.run(scenario())


def test_a_request_that_arrives_as_the_writer_finishes_is_not_left_waiting() -> None:
    async def scenario() -> None:
        store = GatedStore()
        committer = GroupCommitter(store)
        late: list[asyncio.Task[list[StoredMessage]]] = []

        async def store_then_send_late(texts: list[str], keys: list[str | None]) -> list[StoredMessage]:
            if not late:
                # Runs once the writer has found nothing more waiting, before the loop learns that it ended.
                late.append(sent(committer, "late"))
            return await store(texts, keys)

        committer._store = store_then_send_late
        assert (await committer.store(["first"], [None]))[0].message == "first"
        assert (await asyncio.wait_for(late[0], 5))[0].message == "late"
        assert store.transactions == [["first"], ["late"]]

    asyncio.run(scenario())


def test_the_writer_lives_on_the_loop_that_uses_it_and_a_later_loop_gets_its_own() -> None:
    committer = GroupCommitter(GatedStore())
    for _ in range(3):  # a test client may run each request on a fresh loop
        assert asyncio.run(committer.store(["hola"], [None]))[0].message == "hola"


def test_a_writer_that_fails_outside_the_store_ends_the_process() -> None:
    result = run_python(
        """
        import asyncio
        from msgsuite import group_commit

        async def broken(group, store):
            raise AssertionError("the writer's own bug")

        async def never_answered(texts, keys):
            raise AssertionError("the store was reached")

        group_commit.store_isolating_refusals_async = broken
        committer = group_commit.GroupCommitter(never_answered)
        asyncio.run(committer.store(["hola"], [None]))  # waits for ever: only the crash ends it
        print("still running")
        """
    )
    assert_crashed(result, "the group-commit writer", "AssertionError: the writer's own bug")


@pytest.mark.parametrize("limit", [1, 3])
def test_a_request_larger_than_the_limit_is_stored_alone_and_whole(limit: int) -> None:
    async def scenario() -> None:
        store = GatedStore()
        records = await GroupCommitter(store, max_messages=limit).store(["a", "b", "c", "d"], [None] * 4)
        assert [r.message for r in records] == ["a", "b", "c", "d"] and store.transactions == [["a", "b", "c", "d"]]

    asyncio.run(scenario())
