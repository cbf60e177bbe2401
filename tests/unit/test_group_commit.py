"""Group commit, ordered with events instead of sleeps.

The committer's writer thread takes requests from a queue; the tests watch
that queue (ObservedQueue) to know when each request has arrived, and hold
the store transaction open (FakeStore's gate) to make requests wait behind it.
"""

import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from msgsuite import group_commit
from msgsuite.group_commit import GroupCommitter
from msgsuite.messages import StoredMessage, Via

WAIT = 10.0  # seconds before a test gives up on an event that should have happened


class ObservedQueue(queue.SimpleQueue):  # type: ignore[type-arg]
    """The committer's request queue, counting each request put into it."""

    made: list["ObservedQueue"] = []  # noqa: RUF012 (the queues made while `observed` is active)

    def __init__(self) -> None:
        super().__init__()
        self._arrived = threading.Semaphore(0)
        ObservedQueue.made.append(self)

    def put(self, item: object, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._arrived.release()

    def wait_for_arrivals(self, n: int) -> None:
        for i in range(n):
            assert self._arrived.acquire(timeout=WAIT), f"only {i} of {n} requests reached the committer"


class FakeStore:
    """Numbers messages like the database does and records each transaction.

    With gated=True the first transaction waits, once it has started, until
    release() is called: the requests sent meanwhile queue up behind it.
    """

    def __init__(self, gated: bool = False, fail_on: str | None = None) -> None:
        self.total = 0
        self.transactions: list[list[str]] = []
        self.fail_on = fail_on
        self.started = threading.Event()
        self._gate = threading.Event()
        if not gated:
            self._gate.set()

    def release(self) -> None:
        self._gate.set()

    def __call__(self, texts: list[str], keys: list[str | None]) -> list[StoredMessage]:
        self.started.set()
        assert self._gate.wait(WAIT), "the gated transaction was never released"
        if self.fail_on in texts:
            raise RuntimeError("database unavailable")
        self.transactions.append(texts)
        records = []
        for text in texts:
            self.total += 1
            records.append(StoredMessage(self.total, Via.REST, text, datetime.now(UTC)))
        return records


@pytest.fixture
def observed(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[ObservedQueue]]:
    """Committers built while this fixture is active use an ObservedQueue."""
    monkeypatch.setattr(group_commit.queue, "SimpleQueue", ObservedQueue)
    ObservedQueue.made.clear()
    yield ObservedQueue


def committer_with_queue(store: FakeStore, **options: int) -> tuple[GroupCommitter, ObservedQueue]:
    committer = GroupCommitter(store, **options)
    assert len(ObservedQueue.made) == 1, "GroupCommitter no longer takes its requests from one queue.SimpleQueue"
    return committer, ObservedQueue.made[0]


def start(target: object, *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args)  # type: ignore[arg-type]
    thread.start()
    return thread


def join_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive(), "a request never got its answer"


def test_a_lone_request_is_stored_at_once_with_its_own_records() -> None:
    store = FakeStore()
    records = GroupCommitter(store).store(["a", "b"], [None, None])
    assert [(r.id, r.message) for r in records] == [(1, "a"), (2, "b")] and store.transactions == [["a", "b"]]


def test_requests_that_arrive_during_a_transaction_share_the_next_one(observed: type[ObservedQueue]) -> None:
    store = FakeStore(gated=True)
    committer, requests = committer_with_queue(store)
    results: dict[int, list[StoredMessage]] = {}

    def send(i: int) -> None:
        results[i] = committer.store([f"m{i}"], [None])

    threads = [start(send, 0)]
    assert store.started.wait(WAIT)  # the writer holds m0's transaction open
    threads += [start(send, i) for i in range(1, 50)]
    requests.wait_for_arrivals(50)
    store.release()
    join_all(threads)
    assert all(results[i][0].message == f"m{i}" for i in range(50))
    assert sorted(r[0].id for r in results.values()) == list(range(1, 51))
    assert store.transactions[0] == ["m0"] and len(store.transactions) == 2  # the 49 others: one transaction


def test_a_group_never_exceeds_the_limit_and_keeps_arrival_order(observed: type[ObservedQueue]) -> None:
    store = FakeStore(gated=True)
    committer, requests = committer_with_queue(store, max_messages=5)
    threads = [start(committer.store, ["first"], [None])]
    requests.wait_for_arrivals(1)
    assert store.started.wait(WAIT)  # the writer is busy with "first"; the rest queue up in this order
    for i in range(4):
        threads.append(start(committer.store, [f"{i}a", f"{i}b"], [None, None]))
        requests.wait_for_arrivals(1)
    store.release()
    join_all(threads)
    assert store.transactions == [["first"], ["0a", "0b", "1a", "1b"], ["2a", "2b", "3a", "3b"]]


def test_a_failed_group_fails_every_request_in_it_and_the_writer_goes_on() -> None:
    committer = GroupCommitter(FakeStore(fail_on="bad"))
    with pytest.raises(RuntimeError, match="unavailable"):
        committer.store(["bad"], [None])
    assert committer.store(["good"], [None])[0].message == "good"
