import threading
import time
from datetime import UTC, datetime

import pytest

from msgsuite.group_commit import GroupCommitter
from msgsuite.messages import StoredMessage, Via


class FakeStore:
    """Numbers messages like the database does and records each transaction's size."""

    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.total = 0
        self.transactions: list[list[str]] = []
        self.delay = delay
        self.fail_on = fail_on

    def __call__(self, texts: list[str], keys: list[str | None]) -> list[StoredMessage]:
        time.sleep(self.delay)
        if self.fail_on in texts:
            raise RuntimeError("database unavailable")
        self.transactions.append(texts)
        records = []
        for text in texts:
            self.total += 1
            records.append(StoredMessage(self.total, Via.REST, text, datetime.now(UTC)))
        return records


def test_a_lone_request_is_stored_at_once_with_its_own_records() -> None:
    store = FakeStore()
    records = GroupCommitter(store).store(["a", "b"], [None, None])
    assert [(r.id, r.message) for r in records] == [(1, "a"), (2, "b")] and store.transactions == [["a", "b"]]


def test_concurrent_requests_share_transactions_and_each_gets_its_own_records() -> None:
    store = FakeStore(delay=0.01)
    committer = GroupCommitter(store)
    results: dict[int, list[StoredMessage]] = {}

    def send(i: int) -> None:
        results[i] = committer.store([f"m{i}"], [None])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(results[i][0].message == f"m{i}" for i in range(50))
    assert sorted(r[0].id for r in results.values()) == list(range(1, 51))
    assert len(store.transactions) < 50  # grouped


def test_a_group_never_exceeds_the_limit_and_keeps_arrival_order() -> None:
    store = FakeStore(delay=0.02)
    committer = GroupCommitter(store, max_messages=5)
    blocker = threading.Thread(target=committer.store, args=(["first"], [None]))
    blocker.start()
    time.sleep(0.005)  # the writer is busy with "first"; the rest queue up in this order
    threads = [threading.Thread(target=committer.store, args=([f"{i}a", f"{i}b"], [None, None])) for i in range(4)]
    for thread in threads:
        thread.start()
        time.sleep(0.001)
    for thread in [blocker, *threads]:
        thread.join()
    assert all(len(t) <= 5 for t in store.transactions)
    assert [t for group in store.transactions for t in group] == [
        "first",
        "0a",
        "0b",
        "1a",
        "1b",
        "2a",
        "2b",
        "3a",
        "3b",
    ]


def test_a_failed_group_fails_every_request_in_it_and_the_writer_goes_on() -> None:
    committer = GroupCommitter(FakeStore(fail_on="bad"))
    with pytest.raises(RuntimeError, match="unavailable"):
        committer.store(["bad"], [None])
    assert committer.store(["good"], [None])[0].message == "good"
