"""The benchmark's no-op ceiling: the REST app answering without a database, validating as ever."""

from __future__ import annotations

from fastapi.testclient import TestClient

from msgsuite.messages import Via
from msgsuite.no_storage import NothingStored, NumberedRecords
from rest_server.app import create_app

from .fakes import FakePool


def test_numbered_records_count_from_one_and_keep_text_and_key() -> None:
    records = NumberedRecords(Via.RABBITMQ)(["uno", "dos"], ["k1", None])
    assert [(r.id, r.total, r.message, r.idempotency_key, r.via) for r in records] == [
        (1, 1, "uno", "k1", Via.RABBITMQ),
        (2, 2, "dos", None, Via.RABBITMQ),
    ]


def test_the_rest_app_without_storage_answers_records_and_refuses_what_the_real_one_refuses() -> None:
    pool = FakePool()
    with TestClient(create_app(NothingStored(Via.REST), pool)) as client:  # type: ignore[arg-type]
        first = client.post("/messages", json={"message": "hola"}, headers={"Idempotency-Key": "k"})
        batch = client.post("/messages/batch", json={"messages": [{"message": "a"}, {"message": "b"}]})
        blank = client.post("/messages", json={"message": "   "})
        extra = client.post("/messages", json={"message": "hola", "x": 1})
    assert first.status_code == 201 and first.json()["id"] == 1 and first.json()["idempotency_key"] == "k"
    assert batch.status_code == 201 and [m["id"] for m in batch.json()["messages"]] == [2, 3]
    assert blank.status_code == 422 and extra.status_code == 422
    assert pool.checkouts == 0  # nothing reached the database
