"""The REST path end to end: the client, the API, the hub and the websocket client."""

from __future__ import annotations

import http.client
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness.stack import Stack, receive_frames, wait_for

from .checks import assert_ids_gap_free, assert_log_complete

TEXT = "Se ingresó un registro mediante {via} , con el mensaje {message}, total de mensajes {total}"


def test_up_sends_one_demo_message_per_protocol(stack: Stack) -> None:
    rows = sorted(stack.query("SELECT via, message FROM messages WHERE idempotency_key LIKE 'demo-%'"))
    assert rows == [
        ("GRPC", "Hola desde el cliente gRPC"),
        ("REST", "Hola desde el cliente REST"),
        ("RabbitMQ", "Hola desde el cliente RabbitMQ"),
    ]
    starts = [f"Se ingresó un registro mediante {via} , con el mensaje {message}, " for via, message in rows]
    wait_for(
        lambda: all(any(line.startswith(start) for line in stack.notification_lines()) for start in starts),
        what="the three demo lines in the websocket-client log",
    )


def test_rest_client_message_reaches_a_listener_and_the_log(healthy: Stack) -> None:
    message = f"hola {uuid.uuid4().hex[:6]}"
    with healthy.listen(after=healthy.total()) as listener:
        result = healthy.run_client("rest-client", message)
        assert result.returncode == 0, result.stderr
        stored_id = int(result.stdout.split("id=")[1].split()[0])
        assert result.stdout.startswith(f"stored id={stored_id} total={stored_id} key=")
        frame = receive_frames(listener, stored_id)[-1]
    expected = TEXT.format(via="REST", message=message, total=stored_id)
    assert frame["text"] == expected and frame["message"] == message and frame["via"] == "REST"
    assert frame["id"] == frame["total"] == stored_id
    wait_for(lambda: expected in healthy.notification_lines(), what="the line in the websocket-client log")


def test_api_answers_records_reads_and_repeats(healthy: Stack) -> None:
    key = f"key-{uuid.uuid4()}"
    url = healthy.rest_url
    first = requests.post(f"{url}/messages", json={"message": "uno"}, headers={"Idempotency-Key": key}, timeout=10)
    assert first.status_code == 201, first.text
    record = first.json()
    assert record["via"] == "REST" and record["message"] == "uno" and record["id"] == record["total"]
    assert record["repeated"] is False and record["created_at"]
    again = requests.post(f"{url}/messages", json={"message": "uno"}, headers={"Idempotency-Key": key}, timeout=10)
    assert again.status_code == 200 and again.json()["id"] == record["id"] and again.json()["repeated"] is True
    assert healthy.query("SELECT count(*) FROM messages WHERE idempotency_key = %s", (key,)) == [(1,)]
    one = requests.get(f"{url}/messages/{record['id']}", timeout=10).json()
    assert one["message"] == "uno" and one["id"] == record["id"]
    page = requests.get(f"{url}/messages", params={"after": record["id"] - 1, "limit": 1}, timeout=10).json()
    assert [m["id"] for m in page["messages"]] == [record["id"]] and page["next_after"] == record["id"]
    assert requests.get(f"{url}/messages/999999999", timeout=10).status_code == 404
    assert requests.get(f"{url}/health", timeout=10).json() == {"status": "ok"}
    assert requests.get(f"{url}/docs", timeout=10).status_code == 200


def test_300_concurrent_rest_messages_get_gap_free_ids_and_arrive_in_order(healthy: Stack) -> None:
    before = healthy.total()
    session = requests.Session()

    def post(i: int) -> int:
        response = session.post(
            f"{healthy.rest_url}/messages",
            json={"message": f"concurrente {i}"},
            headers={"Idempotency-Key": str(uuid.uuid4())},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    with healthy.listen(after=before) as listener:
        with ThreadPoolExecutor(max_workers=16) as pool:
            ids = list(pool.map(post, range(300)))
        assert sorted(ids) == list(range(before + 1, before + 301))
        frames = receive_frames(listener, max(ids))
    assert [f["id"] for f in frames] == list(range(before + 1, before + 301))
    assert_ids_gap_free(healthy)
    assert_log_complete(healthy, after=before)


BAD_REQUESTS = [
    # (what, body bytes, content type, headers, expected status, words in the reason)
    ("not JSON", b"hola", "application/json", {}, 422, "JSON"),
    ("a number", b'{"message": 42}', "application/json", {}, 422, "string"),
    ("missing field", b'{"mensaje": "x"}', "application/json", {}, 422, "message"),
    ("a list", b'["x"]', "application/json", {}, 422, ""),
    ("empty", b'{"message": ""}', "application/json", {}, 422, "empty"),
    ("blank", b'{"message": "  \\t "}', "application/json", {}, 422, "blank"),
    ("too long", json.dumps({"message": "x" * 4097}).encode(), "application/json", {}, 422, "4096"),
    ("NUL", b'{"message": "a\\u0000b"}', "application/json", {}, 422, "NUL"),
    ("lone surrogate", b'{"message": "a\\ud800b"}', "application/json", {}, 422, "UTF-8"),
    ("10 MB body", json.dumps({"message": "x" * 10_000_000}).encode(), "application/json", {}, 413, "larger"),
    ("wrong content type", b'{"message": "x"}', "text/plain", {}, 415, "application/json"),
    ("over-long key", b'{"message": "x"}', "application/json", {"Idempotency-Key": "k" * 201}, 422, "idempotency key"),
]


@pytest.mark.parametrize(
    ("what", "body", "content_type", "headers", "status", "words"), BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS]
)
def test_bad_rest_input_is_refused_clearly_and_stores_nothing(
    healthy: Stack, what: str, body: bytes, content_type: str, headers: dict[str, str], status: int, words: str
) -> None:
    before = healthy.total()
    response = requests.post(
        f"{healthy.rest_url}/messages", data=body, headers={"Content-Type": content_type, **headers}, timeout=30
    )
    assert response.status_code == status, response.text[:300]
    reason = response.json()["detail"]
    assert isinstance(reason, str) and words in reason
    assert "Traceback" not in response.text
    assert healthy.total() == before
    assert requests.get(f"{healthy.rest_url}/health", timeout=10).status_code == 200


def post_chunked(stack: Stack, body: bytes, chunk_size: int) -> tuple[int, str]:
    """POST /messages with Transfer-Encoding: chunked (no Content-Length); returns (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.port("rest-server", 8000), timeout=30)
    try:
        conn.putrequest("POST", "/messages")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        try:
            for i in range(0, len(body), chunk_size):
                chunk = body[i : i + chunk_size]
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the rest was sent
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def test_a_chunked_body_over_the_limit_gets_413_and_one_within_it_is_stored(healthy: Stack) -> None:
    before = healthy.total()
    status, text = post_chunked(healthy, json.dumps({"message": "x" * 70_000}).encode(), 8192)
    assert status == 413, text[:300]
    assert "larger than 65536 bytes" in json.loads(text)["detail"] and "Traceback" not in text
    assert healthy.total() == before
    message = f"a trozos {uuid.uuid4().hex[:6]}"
    status, text = post_chunked(healthy, json.dumps({"message": message}).encode(), 5)
    assert status == 201, text[:300]
    assert json.loads(text)["message"] == message and healthy.total() == before + 1
    assert requests.get(f"{healthy.rest_url}/health", timeout=10).status_code == 200


def test_rest_client_reports_a_rejected_message_and_exits_non_zero(healthy: Stack) -> None:
    before = healthy.total()
    result = healthy.run_client("rest-client", "   ")
    assert result.returncode == 1
    assert "rejected: HTTP 422: message must not be blank" in result.stderr
    assert result.stdout == "" and healthy.total() == before
