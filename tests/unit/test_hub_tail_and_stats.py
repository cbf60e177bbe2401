"""The hub's ?tail=N and GET /stats, on a real websockets server in process (the database is a fake row)."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import InvalidStatus

from msgsuite.database import DatabaseUnavailable
from websocket_hub.frame_window import FrameWindow
from websocket_hub.frames import Frame
from websocket_hub.http_routes import Routes
from websocket_hub.listeners import MAX_TAIL, BadRequest, Listeners, parse_subscription
from websocket_hub.stats import StreamCountsCache

EPOCH = "83f3c040-9a0f-46db-bc14-8f284cb258b2"


class StreamRow:
    """A pool whose database holds only the stream row; counts every read of it."""

    def __init__(self, row: tuple[object, ...]) -> None:
        self.row = row
        self.reads = 0
        self.down = False

    @contextmanager
    def connection(self) -> Iterator[StreamRow]:
        if self.down:
            raise DatabaseUnavailable("connection refused")
        yield self

    @contextmanager
    def cursor(self) -> Iterator[StreamRow]:
        yield self

    def execute(self, sql: str, params: object = None) -> None:
        assert sql.startswith("SELECT epoch::text, total, grpc_total, rest_total, rabbitmq_total FROM stream"), sql
        self.reads += 1

    def fetchone(self) -> tuple[object, ...]:
        return self.row


def test_tail_is_read_from_the_query() -> None:
    assert parse_subscription("/notifications?tail=200").tail == 200
    assert parse_subscription(f"/notifications?tail={MAX_TAIL}").tail == MAX_TAIL
    assert parse_subscription(f"/notifications?tail=5&epoch={EPOCH}").tail == 5
    assert parse_subscription("/notifications?after=7").tail is None


@pytest.mark.parametrize(
    "query", ["tail=0", f"tail={MAX_TAIL + 1}", "tail=abc", "tail=", "tail=-3", "tail=1&tail=2", "tail=" + "9" * 30]
)
def test_a_bad_tail_is_refused(query: str) -> None:
    with pytest.raises(BadRequest, match="tail must be a whole number from 1 to 1000"):
        parse_subscription(f"/notifications?{query}")


def test_tail_with_after_is_refused_saying_why() -> None:
    with pytest.raises(BadRequest, match="tail and after cannot be combined"):
        parse_subscription("/notifications?tail=10&after=3")


def published(window: FrameWindow, first: int, last: int) -> None:
    window.publish(EPOCH, [Frame(i, json.dumps({"id": i}), 0.0) for i in range(first, last + 1)])


async def ids(websocket: Any, count: int) -> list[int]:
    return [json.loads(await asyncio.wait_for(websocket.recv(), 5))["id"] for _ in range(count)]


def run_hub(body: Any, pool: StreamRow | None = None) -> Any:
    """Runs body(window, base_url) against a hub on a free port."""

    async def main() -> Any:
        window = FrameWindow(capacity=1000)
        window.set_epoch(EPOCH, head=0)
        row = pool or StreamRow((EPOCH, 0, 0, 0, 0))
        listeners = Listeners(window, row, send_timeout=5)  # type: ignore[arg-type]
        routes = Routes(window, listeners, StreamCountsCache(row))  # type: ignore[arg-type]
        async with serve(listeners.serve, "127.0.0.1", 0, process_request=routes) as server:
            port = server.sockets[0].getsockname()[1]
            return await body(window, f"127.0.0.1:{port}")

    return asyncio.run(main())


def test_a_tail_listener_starts_with_the_newest_frames_then_follows_live() -> None:
    async def body(window: FrameWindow, address: str) -> None:
        published(window, 1, 50)
        async with connect(f"ws://{address}/notifications?tail=3") as websocket:
            assert await ids(websocket, 3) == [48, 49, 50]
            published(window, 51, 52)
            assert await ids(websocket, 2) == [51, 52]
        async with connect(f"ws://{address}/notifications?tail=1000") as websocket:
            assert await ids(websocket, 52) == list(range(1, 53))  # fewer than asked: from the first
        async with connect(f"ws://{address}/notifications?after=50") as websocket:
            assert await ids(websocket, 2) == [51, 52]  # after is unchanged

    run_hub(body)


def test_tail_together_with_after_gets_400_naming_why() -> None:
    async def body(window: FrameWindow, address: str) -> None:
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"ws://{address}/notifications?tail=5&after=1")
        assert refused.value.response.status_code == 400
        assert "tail and after cannot be combined" in json.loads(refused.value.response.body)["detail"]

    run_hub(body)


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_stats_are_the_stream_row_read_at_most_once_a_second() -> None:
    pool = StreamRow((EPOCH, 60, 10, 20, 30))

    async def body(window: FrameWindow, address: str) -> None:
        published(window, 1, 57)
        async with connect(f"ws://{address}/notifications?tail=1") as websocket:
            await ids(websocket, 1)
            # Clients on threads of their own: the hub reads the database on the loop's default executor.
            with ThreadPoolExecutor(20) as clients:
                loop = asyncio.get_running_loop()
                answers = await asyncio.gather(
                    *(loop.run_in_executor(clients, get_json, f"http://{address}/stats") for _ in range(20))
                )
        assert answers[0] == (
            200,
            {
                "epoch": EPOCH,
                "head": 57,
                "total": 60,
                "by_via": {"GRPC": 10, "REST": 20, "RabbitMQ": 30},
                "listeners": 1,
            },
        )
        assert all(answer[1]["by_via"] == answers[0][1]["by_via"] for answer in answers)
        assert pool.reads == 1
        pool.row = (EPOCH, 61, 11, 20, 30)
        await asyncio.sleep(1.1)
        status, stats = await asyncio.to_thread(get_json, f"http://{address}/stats")
        assert (status, stats["total"], stats["by_via"]["GRPC"], pool.reads) == (200, 61, 11, 2)

    run_hub(body, pool)


def test_stats_answer_503_when_the_database_is_away() -> None:
    pool = StreamRow((EPOCH, 0, 0, 0, 0))
    pool.down = True

    async def body(window: FrameWindow, address: str) -> None:
        status, answer = await asyncio.to_thread(get_json, f"http://{address}/stats")
        assert status == 503 and answer == {"detail": "the database is unavailable; retry later"}

    run_hub(body, pool)


def test_the_page_opens_with_stats_and_a_tail_and_shows_messages_only_as_text() -> None:
    def read(url: str) -> str:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    async def body(window: FrameWindow, address: str) -> str:
        return await asyncio.to_thread(read, f"http://{address}/")

    page = run_hub(body)
    assert 'fetch("/stats"' in page and 'searchParams.set("tail", String(TAIL))' in page
    assert "const TAIL = 200;" in page
    assert 'role="log"' in page and 'aria-live="polite"' in page
    assert "innerHTML" not in page and "insertAdjacentHTML" not in page and "document.write" not in page
    assert "http://" not in page and "https://" not in page  # no external asset
