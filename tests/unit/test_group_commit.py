"""Group commit through the request threads (leader/follower), ordered with events instead of sleeps.

The fake store holds the first transaction open (FakeStore's gate) so that
requests wait behind it; the committer's queue of waiting requests tells when
each has arrived.
"""

import threading
import time
from datetime import UTC, datetime

import pytest

from msgsuite.group_commit import GroupCommitter
from msgsuite.messages import StoredMessage, Via

WAIT = 10.0  # seconds before a test gives up on an event that should have happened


class FakeStore:
    """Numbers messages like the database does and records each transaction and the thread that ran it.

    With gated=True the first transaction waits, once it has started, until
    release() is called: the requests sent meanwhile queue up behind it.
    """

    def __init__(self, gated: bool = False, fail_on: str | None = None) -> None:
        self.total = 0
        self.transactions: list[list[str]] = []
        self.threads: list[str] = []
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
        self.threads.append(threading.current_thread().name)
        if self.fail_on in texts:
            raise RuntimeError("database unavailable")
        self.transactions.append(texts)
        records = []
        for text in texts:
            self.total += 1
            records.append(StoredMessage(self.total, Via.REST, text, datetime.now(UTC)))
        return records


def wait_for_waiting(committer: GroupCommitter, n: int) -> None:
    """Until n requests wait behind the transaction being written."""
    deadline = time.monotonic() + WAIT
    while len(committer._waiting) < n:
        assert time.monotonic() < deadline, f"only {len(committer._waiting)} of {n} requests are waiting"
        time.sleep(0.001)


def start(name: str, target: object, *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, name=name)  # type: ignore[arg-type]
    thread.start()
    return thread


def join_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive(), "a request never got its answer"


def test_a_lone_request_is_stored_at_once_on_its_own_thread_with_its_own_records() -> None:
    store = FakeStore()
    records = GroupCommitter(store).store(["a", "b"], [None, None])
    assert [(r.id, r.message) for r in records] == [(1, "a"), (2, "b")] and store.transactions == [["a", "b"]]
    assert store.threads == [threading.current_thread().name]  # no hand-off to another thread


def test_requests_that_arrive_during_a_transaction_share_the_next_one_written_by_the_first_of_them() -> None:
    store = FakeStore(gated=True)
    committer = GroupCommitter(store)
    results: dict[int, list[StoredMessage]] = {}

    def send(i: int) -> None:
        results[i] = committer.store([f"m{i}"], [None])

    threads = [start("request-0", send, 0)]
    assert store.started.wait(WAIT)  # request-0's thread holds m0's transaction open
    for i in range(1, 50):
        threads.append(start(f"request-{i}", send, i))
        wait_for_waiting(committer, i)  # in this order
    store.release()
    join_all(threads)
    assert all(results[i][0].message == f"m{i}" for i in range(50))
    assert [results[i][0].id for i in range(50)] == list(range(1, 51))
    assert store.transactions == [["m0"], [f"m{i}" for i in range(1, 50)]]
    assert store.threads == ["request-0", "request-1"]


def test_a_group_never_exceeds_the_limit_and_keeps_arrival_order() -> None:
    store = FakeStore(gated=True)
    committer = GroupCommitter(store, max_messages=5)
    threads = [start("first", committer.store, ["first"], [None])]
    assert store.started.wait(WAIT)  # busy with "first"; the rest queue up in this order
    for i in range(4):
        threads.append(start(f"request-{i}", committer.store, [f"{i}a", f"{i}b"], [None, None]))
        wait_for_waiting(committer, i + 1)
    store.release()
    join_all(threads)
    assert store.transactions == [["first"], ["0a", "0b", "1a", "1b"], ["2a", "2b", "3a", "3b"]]
    assert store.threads == ["first", "request-0", "request-2"]  # each group by its first request's thread


@pytest.mark.parametrize("limit", [1, 3])
def test_a_request_larger_than_the_limit_is_stored_alone_and_whole(limit: int) -> None:
    store = FakeStore()
    records = GroupCommitter(store, max_messages=limit).store(["a", "b", "c", "d"], [None] * 4)
    assert [r.message for r in records] == ["a", "b", "c", "d"] and store.transactions == [["a", "b", "c", "d"]]


def test_a_failed_group_fails_every_request_in_it_and_the_writing_goes_on() -> None:
    store = FakeStore(gated=True, fail_on="bad")
    committer = GroupCommitter(store)
    answers: dict[str, object] = {}

    def send(text: str) -> None:
        try:
            answers[text] = committer.store([text], [None])[0].message
        except RuntimeError as error:
            answers[text] = error

    threads = [start("first", send, "first")]
    assert store.started.wait(WAIT)
    for number, text in enumerate(["x", "bad", "y"], start=1):
        threads.append(start(text, send, text))
        wait_for_waiting(committer, number)
    store.release()
    join_all(threads)
    assert answers["first"] == "first"
    assert all(isinstance(answers[t], RuntimeError) for t in ("x", "bad", "y"))
    assert committer.store(["after"], [None])[0].message == "after"


def test_many_threads_at_once_each_get_their_own_records_exactly_once() -> None:
    store = FakeStore()
    committer = GroupCommitter(store)
    results: dict[int, list[StoredMessage]] = {}
    barrier = threading.Barrier(16)

    def send(i: int) -> None:
        barrier.wait(WAIT)
        for j in range(50):
            results[i * 100 + j] = committer.store([f"{i}-{j}"], [None])

    join_all([start(f"request-{i}", send, i) for i in range(16)])
    assert len(results) == 800 and all(r[0].message == f"{n // 100}-{n % 100}" for n, r in results.items())
    assert sorted(r[0].id for r in results.values()) == list(range(1, 801))
    assert sum(len(t) for t in store.transactions) == 800 and not committer._waiting and not committer._writing
