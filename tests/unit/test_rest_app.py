"""The REST app in process: FastAPI's TestClient against the real MessageStore storing into a fake."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from msgsuite import store
from msgsuite.database import DatabaseFailure, DatabaseUnavailable, MessageRefused
from msgsuite.messages import Via
from msgsuite.store import MessageStore
from rest_server.app import create_app

from .fakes import NO_DATABASE, FakeDatabase, FakePool, FakeStoreFunction, record


class Rest:
    def __init__(self, client: TestClient, stored: FakeStoreFunction, pool: FakePool) -> None:
        self.client = client
        self.stored = stored
        self.pool = pool


@pytest.fixture(scope="module")
def rest_app() -> Iterator[Rest]:
    stored = FakeStoreFunction()
    pool = FakePool()
    with pytest.MonkeyPatch.context() as patch:
        # MessageStore validates and group-commits for real; only the SQL call is replaced.
        patch.setattr(store, "store_messages_async", stored.on_the_loop)
        app = create_app(MessageStore(NO_DATABASE, Via.REST), pool)  # type: ignore[arg-type]
        # An unexpected error must still become a JSON answer: look at it instead of re-raising it.
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Rest(client, stored, pool)


@pytest.fixture
def rest(rest_app: Rest) -> Rest:
    """The module's app (built once: it takes a while), with an empty store and a table of seven messages."""
    rest_app.stored.reset()
    rest_app.pool.database = FakeDatabase([record(i) for i in range(1, 8)])
    rest_app.pool.failure = None
    return rest_app


def assert_problem(response, status: int, words: str = "") -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert isinstance(detail, str) and words in detail, detail
    assert "Traceback" not in response.text and "File " not in response.text
    return detail


BAD_MESSAGES = [
    # (what, body bytes, content type, headers, expected status, words in the reason)
    ("not JSON", b"hola", "application/json", {}, 422, "JSON"),
    ("truncated JSON", b'{"message": "x"', "application/json", {}, 422, "JSON"),
    ("a number", b'{"message": 42}', "application/json", {}, 422, "string"),
    ("a boolean", b'{"message": true}', "application/json", {}, 422, "string"),
    ("null", b'{"message": null}', "application/json", {}, 422, "string"),
    ("an object", b'{"message": {"text": "x"}}', "application/json", {}, 422, "string"),
    ("missing field", b'{"mensaje": "x"}', "application/json", {}, 422, "message"),
    ("extra field", b'{"message": "x", "via": "GRPC"}', "application/json", {}, 422, "via"),
    ("a list", b'["x"]', "application/json", {}, 422, ""),
    ("empty body", b"", "application/json", {}, 422, ""),
    ("empty", b'{"message": ""}', "application/json", {}, 422, "empty"),
    ("blank", b'{"message": "  \\t "}', "application/json", {}, 422, "blank"),
    ("too long", json.dumps({"message": "x" * 4097}).encode(), "application/json", {}, 422, "4096"),
    ("NUL", b'{"message": "a\\u0000b"}', "application/json", {}, 422, "NUL"),
    ("lone surrogate", b'{"message": "a\\ud800b"}', "application/json", {}, 422, "UTF-8"),
    ("10 MB body", json.dumps({"message": "x" * 10_000_000}).encode(), "application/json", {}, 413, "larger"),
    ("just over 64 KiB", b" " * (64 * 1024 - 14) + b'{"message":"x"}', "application/json", {}, 413, "65536"),
    ("wrong content type", b'{"message": "x"}', "text/plain", {}, 415, "application/json"),
    ("no content type", b'{"message": "x"}', "", {}, 415, "application/json"),
    ("form content type", b"message=x", "application/x-www-form-urlencoded", {}, 415, "application/json"),
    ("over-long key", b'{"message": "x"}', "application/json", {"Idempotency-Key": "k" * 201}, 422, "idempotency key"),
    ("key with a space", b'{"message": "x"}', "application/json", {"Idempotency-Key": "a b"}, 422, "idempotency key"),
]


@pytest.mark.parametrize(
    ("what", "body", "content_type", "headers", "status", "words"), BAD_MESSAGES, ids=[case[0] for case in BAD_MESSAGES]
)
def test_bad_input_is_refused_clearly_and_stores_nothing(
    rest: Rest, what: str, body: bytes, content_type: str, headers: dict[str, str], status: int, words: str
) -> None:
    if content_type:
        headers = {"Content-Type": content_type, **headers}
    response = rest.client.post("/messages", content=body, headers=headers)
    assert_problem(response, status, words)
    assert rest.stored.transactions == []


BAD_BATCHES = [
    ("not a list", {"messages": "x"}, 422, "messages"),
    ("no messages field", {"mensajes": []}, 422, "messages"),
    ("empty batch", {"messages": []}, 422, "at least one"),
    ("blank member", {"messages": [{"message": "bien"}, {"message": "   "}]}, 422, "message 1 of the batch"),
    ("NUL member", {"messages": [{"message": "a\x00"}, {"message": "bien"}]}, 422, "message 0 of the batch"),
    ("bad key", {"messages": [{"message": "a", "idempotency_key": "ñ"}]}, 422, "idempotency key"),
    ("number member", {"messages": [{"message": 1}]}, 422, "string"),
    ("extra member field", {"messages": [{"message": "a", "via": "x"}]}, 422, "via"),
    ("over 1000", {"messages": [{"message": "x"}] * 1001}, 422, "at most 1000"),
]


@pytest.mark.parametrize(("what", "body", "status", "words"), BAD_BATCHES, ids=[case[0] for case in BAD_BATCHES])
def test_a_bad_batch_is_refused_whole(rest: Rest, what: str, body: object, status: int, words: str) -> None:
    assert_problem(rest.client.post("/messages/batch", json=body), status, words)
    assert rest.stored.transactions == []


def test_a_batch_may_be_larger_than_a_single_message_body_but_not_without_limit(rest: Rest) -> None:
    items = {"messages": [{"message": "x" * 4000} for _ in range(30)]}  # about 120 KB
    assert rest.client.post("/messages/batch", json=items).status_code == 201
    assert_problem(rest.client.post("/messages", json={"message": "x", "pad": "y" * 70_000}), 413, "65536")
    huge = json.dumps({"messages": [{"message": "x" * 4096}] * 2100}).encode()  # over 8 MiB
    assert_problem(
        rest.client.post("/messages/batch", content=huge, headers={"Content-Type": "application/json"}), 413, "8388608"
    )


def test_a_message_is_stored_and_answered_201_then_200_for_its_repeated_key(rest: Rest) -> None:
    first = rest.client.post("/messages", json={"message": "uno"}, headers={"Idempotency-Key": "key-1"})
    assert first.status_code == 201
    created = first.json()
    assert created == {
        "id": 1,
        "total": 1,
        "via": "REST",
        "message": "uno",
        "created_at": "2026-01-02T03:04:05+00:00",
        "idempotency_key": "key-1",
        "repeated": False,
    }
    again = rest.client.post("/messages", json={"message": "uno"}, headers={"Idempotency-Key": "key-1"})
    assert again.status_code == 200 and again.json() == {**created, "repeated": True}
    without_key = rest.client.post("/messages", json={"message": "uno"})
    assert without_key.status_code == 201 and without_key.json()["id"] == 2
    assert rest.stored.stored_texts == ["uno", "uno"]


def test_a_batch_is_stored_in_order_and_answered_200_only_when_every_key_repeats(rest: Rest) -> None:
    items = [{"message": f"lote {i}", "idempotency_key": f"b-{i}"} for i in range(5)]
    first = rest.client.post("/messages/batch", json={"messages": items})
    assert first.status_code == 201
    assert [(m["id"], m["message"]) for m in first.json()["messages"]] == [(i + 1, f"lote {i}") for i in range(5)]
    repeated = rest.client.post("/messages/batch", json={"messages": items[:3]})
    assert repeated.status_code == 200 and [m["repeated"] for m in repeated.json()["messages"]] == [True] * 3
    mixed = rest.client.post("/messages/batch", json={"messages": [items[0], {"message": "nuevo"}]})
    assert mixed.status_code == 201 and [m["repeated"] for m in mixed.json()["messages"]] == [True, False]
    assert rest.stored.stored_texts == [f"lote {i}" for i in range(5)] + ["nuevo"]


def test_an_unavailable_database_is_503_with_retry_after(rest: Rest) -> None:
    rest.stored.failure = DatabaseUnavailable("terminating connection due to administrator command")
    for path, body in (("/messages", {"message": "x"}), ("/messages/batch", {"messages": [{"message": "x"}]})):
        response = rest.client.post(path, json=body)
        detail = assert_problem(response, 503, "unavailable")
        assert response.headers["Retry-After"] == "1"
        assert "administrator" not in detail


def test_a_refused_message_is_500_json_naming_the_database_reason(rest: Rest) -> None:
    rest.stored.refused = {"veneno"}
    response = rest.client.post("/messages", json={"message": "veneno"})
    detail = assert_problem(response, 500)
    assert (
        detail
        == 'the database refused the message: new row for relation "messages" violates check constraint "no_veneno"'
    )
    batch = rest.client.post("/messages/batch", json={"messages": [{"message": "bien"}, {"message": "veneno"}]})
    assert_problem(batch, 500, "the database refused the message")
    assert rest.stored.stored_texts == []  # the batch is one request: all of it or none
    assert rest.client.post("/messages", json={"message": "bien"}).status_code == 201


def test_a_refusal_raised_by_the_store_function_itself_is_answered_the_same(rest: Rest) -> None:
    rest.stored.failure = MessageRefused("value too long for type character varying(10)")
    assert_problem(
        rest.client.post("/messages", json={"message": "x"}),
        500,
        "the database refused the message: value too long for type character varying(10)",
    )


def test_a_database_failure_is_500_json_without_its_sql(rest: Rest) -> None:
    rest.stored.failure = DatabaseFailure('syntax error at or near "SELEC" (SQLSTATE 42601)')
    detail = assert_problem(rest.client.post("/messages", json={"message": "x"}), 500, "the database failed")
    assert "SELEC" not in detail and "42601" not in detail


def test_an_unexpected_error_is_500_json_never_a_traceback(rest: Rest) -> None:
    rest.stored.failure = RuntimeError("secret internals at line 42")
    for path, body in (("/messages", {"message": "x"}), ("/messages/batch", {"messages": [{"message": "x"}]})):
        response = rest.client.post(path, json=body)
        detail = assert_problem(response, 500, "internal error")
        assert "secret" not in response.text and "RuntimeError" not in response.text and detail


def test_reads_page_through_the_table(rest: Rest) -> None:
    page = rest.client.get("/messages", params={"after": 2, "limit": 3})
    assert page.status_code == 200
    assert [m["id"] for m in page.json()["messages"]] == [3, 4, 5] and page.json()["next_after"] == 5
    assert page.json()["messages"][0] == {
        "id": 3,
        "total": 3,
        "via": "REST",
        "message": "mensaje 3",
        "created_at": "2026-01-02T03:04:05+00:00",
        "idempotency_key": None,
        "repeated": False,
    }
    end = rest.client.get("/messages", params={"after": 7})
    assert end.json() == {"messages": [], "next_after": 7}
    assert [m["id"] for m in rest.client.get("/messages").json()["messages"]] == list(range(1, 8))


@pytest.mark.parametrize(
    "params", [{"after": -1}, {"after": "x"}, {"limit": 0}, {"limit": 1001}], ids=["after<0", "after=x", "0", "1001"]
)
def test_a_bad_page_request_is_422(rest: Rest, params: dict[str, int | str]) -> None:
    assert_problem(rest.client.get("/messages", params=params), 422)


def test_one_message_by_id_or_404(rest: Rest) -> None:
    assert rest.client.get("/messages/4").json()["message"] == "mensaje 4"
    assert_problem(rest.client.get("/messages/999999999"), 404, "no message with id 999999999")
    assert_problem(rest.client.get("/messages/0"), 422)
    assert_problem(rest.client.get("/messages/abc"), 422)


def test_health_is_200_while_the_database_answers_and_503_when_it_does_not(rest: Rest) -> None:
    assert rest.client.get("/health").json() == {"status": "ok"}
    rest.pool.failure = DatabaseUnavailable("could not connect to server")
    for path in ("/health", "/messages", "/messages/1"):
        response = rest.client.get(path)
        assert_problem(response, 503, "unavailable")
        assert response.headers["Retry-After"] == "1"


def test_the_docs_are_served(rest: Rest) -> None:
    assert rest.client.get("/docs").status_code == 200
    spec = rest.client.get("/openapi.json").json()
    assert {"413", "415", "422", "500", "503"} <= set(spec["paths"]["/messages"]["post"]["responses"])


def test_a_chunked_body_over_the_limit_is_413(rest: Rest) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"message": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    response = rest.client.post("/messages", content=chunks(), headers={"Content-Type": "application/json"})
    assert_problem(response, 413, "larger")
    assert rest.stored.transactions == []
