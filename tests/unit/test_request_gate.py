"""The REST request gate at the ASGI level: the real app, bodies sent in chunks as a server hands them over."""

from __future__ import annotations

import asyncio
import json

import pytest
from starlette.types import ASGIApp, Message

from msgsuite.messages import Via
from msgsuite.store import MessageStore
from rest_server.app import MAX_BATCH_BODY_BYTES, MAX_BODY_BYTES, create_app

from .fakes import NO_DATABASE


class UnusedPool:
    """The requests below never reach the database."""

    def connection(self) -> None:
        raise AssertionError("the database was used")


@pytest.fixture(scope="module")
def app() -> ASGIApp:
    pool = UnusedPool()
    return create_app(MessageStore(NO_DATABASE, Via.REST), pool)  # type: ignore[arg-type]


def request(
    app: ASGIApp, path: str, chunks: list[bytes], headers: list[tuple[bytes, bytes]], method: str = "POST"
) -> tuple[int, dict[str, object], int]:
    """Sends the chunks as successive http.request messages; returns (status, JSON body, messages read)."""
    incoming: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1} for i, chunk in enumerate(chunks)
    ]
    sent: list[Message] = []
    read = 0

    async def receive() -> Message:
        nonlocal read
        if read < len(incoming):
            read += 1
            return incoming[read - 1]
        await asyncio.sleep(3600)  # the client waits for the answer: no disconnect
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=10))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), read


CHUNKED = [(b"transfer-encoding", b"chunked")]


def chunks_of(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def test_a_chunked_body_over_the_limit_gets_413_and_is_not_read_to_the_end(app: ASGIApp) -> None:
    body = json.dumps({"message": "x" * (MAX_BODY_BYTES * 4)}).encode()
    chunks = chunks_of(body, 8192)
    status, answer, read = request(app, "/messages", chunks, CHUNKED)
    assert status == 413 and answer == {"detail": f"request body is larger than {MAX_BODY_BYTES} bytes"}
    assert read <= MAX_BODY_BYTES // 8192 + 1 < len(chunks)


def test_a_chunked_batch_body_has_the_batch_limit(app: ASGIApp) -> None:
    over = b'{"messages": [' + b" " * MAX_BATCH_BODY_BYTES + b"]}"
    status, answer, _ = request(app, "/messages/batch", chunks_of(over, 1 << 20), CHUNKED)
    assert status == 413 and str(MAX_BATCH_BODY_BYTES) in str(answer["detail"])
    # the same size is within the batch limit: the app reads it (and finds no messages in it)
    within = b'{"messages": [' + b" " * (MAX_BODY_BYTES * 2) + b"]}"
    status, answer, _ = request(app, "/messages/batch", chunks_of(within, 8192), CHUNKED)
    assert status == 422, answer


def blank_message_padded_to(size: int) -> bytes:
    """A JSON body of `size` bytes whose message is blank: only the whole body, parsed, says so."""
    head, tail = b'{"message": "   "', b"}"
    return head + b" " * (size - len(head) - len(tail)) + tail


def test_a_chunked_body_within_the_limit_reaches_the_app_whole(app: ASGIApp) -> None:
    chunks = chunks_of(blank_message_padded_to(MAX_BODY_BYTES - 100), 1000)
    status, answer, read = request(app, "/messages", chunks, CHUNKED)
    assert (status, answer) == (422, {"detail": "message must not be blank"})
    assert read == len(chunks)


def test_a_chunked_body_exactly_at_the_limit_is_read(app: ASGIApp) -> None:
    status, answer, _ = request(app, "/messages", chunks_of(blank_message_padded_to(MAX_BODY_BYTES), 4096), CHUNKED)
    assert (status, answer) == (422, {"detail": "message must not be blank"})
    status, answer, _ = request(app, "/messages", chunks_of(blank_message_padded_to(MAX_BODY_BYTES + 1), 4096), CHUNKED)
    assert status == 413


def test_a_declared_length_over_the_limit_gets_413_before_any_body_is_read(app: ASGIApp) -> None:
    length = str(MAX_BODY_BYTES + 1).encode()
    status, answer, read = request(app, "/messages", [b"{"], [(b"content-length", length)])
    assert (status, read) == (413, 0) and "larger" in str(answer["detail"])


def test_a_declared_length_within_the_limit_reaches_the_app(app: ASGIApp) -> None:
    body = b'{"message": "   "}'
    status, answer, _ = request(app, "/messages", [body], [(b"content-length", str(len(body)).encode())])
    assert (status, answer) == (422, {"detail": "message must not be blank"})


def test_a_request_without_a_body_passes(app: ASGIApp) -> None:
    status, answer, _ = request(app, "/messages/0", [b""], [], method="GET")
    assert status == 422 and "greater than or equal to 1" in str(answer["detail"])
