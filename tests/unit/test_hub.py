"""The hub in process: subscriptions, plain HTTP routes, listeners with fake connections, the follower."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

import psycopg2
import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedOK
from websockets.http11 import Request

from msgsuite.database import DatabaseUnavailable
from msgsuite.settings import DatabaseSettings
from websocket_hub import follower as follower_module
from websocket_hub import listeners as listeners_module
from websocket_hub.follower import Follower
from websocket_hub.frame_window import FrameWindow
from websocket_hub.frames import encode_frame
from websocket_hub.http_routes import HEALTHY_WITHIN_SECONDS, Routes
from websocket_hub.listeners import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_POLICY,
    CLOSE_RESTART,
    BadRequest,
    Listeners,
    Subscription,
    parse_subscription,
)
from websocket_hub.stats import StreamCountsCache

from .conftest import Exits
from .fakes import FakeConnection, FakeDatabase, FakePool, record


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(test(), 5)

    asyncio.run(bounded())


_sleep = asyncio.sleep  # the real one, whatever a test replaces


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 3
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await _sleep(0.001)


def frames(first: int, last: int, epoch: str = "e1") -> list[Any]:
    return [encode_frame(epoch, record(i)) for i in range(first, last + 1)]


# Subscriptions and plain HTTP


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("/notifications?after=-1", "after must be a whole number"),
        ("/notifications?after=abc", "after must be a whole number"),
        ("/notifications?after=", "after must be a whole number"),
        ("/notifications?after=1&after=2", "after must be a whole number"),
        ("/notifications?after=1234567890123456789", "after must be a whole number"),
        ("/notifications?since=3", "unknown parameter 'since'"),
        ("/notifications?epoch=%3Cx%3E", "epoch must be the epoch of a frame you received"),
        ("/notifications?epoch=a&epoch=b", "epoch must be the epoch of a frame you received"),
        ("/notifications?epoch=", "epoch must be the epoch of a frame you received"),
    ],
)
def test_a_bad_subscription_names_its_fault(target: str, words: str) -> None:
    with pytest.raises(BadRequest, match=words):
        parse_subscription(target)


def test_a_subscription_reads_after_and_epoch() -> None:
    assert parse_subscription("/notifications") == Subscription(0, None)
    epoch = "3f2a9c1e-0d4b-4e8a-9b1c-2d3e4f5a6b7c"
    assert parse_subscription(f"/notifications?after=42&epoch={epoch}") == Subscription(42, epoch)


@pytest.fixture
def window() -> Iterator[FrameWindow]:
    yield FrameWindow(capacity=100)


def answer(window: FrameWindow, path: str, **headers: str) -> Any:
    pool = FakePool()
    routes = Routes(window, Listeners(window, pool, send_timeout=1.0), StreamCountsCache(pool))  # type: ignore[arg-type]
    connection = SimpleNamespace(remote_address=("192.0.2.1", 40000), connection_lost_waiter=Future())
    return routes(connection, Request(path, Headers(list(headers.items()))))  # type: ignore[arg-type]


@pytest.mark.parametrize("query", ["after=-1", "after=abc", "after=", "after=1&after=2", "since=3", "epoch=%3Cx%3E"])
def test_a_bad_query_is_400_before_the_handshake(window: FrameWindow, query: str) -> None:
    response = answer(window, f"/notifications?{query}", Upgrade="websocket")
    assert response.status_code == 400 and response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body)["detail"]


def test_a_plain_request_for_notifications_is_426_and_a_handshake_goes_through(window: FrameWindow) -> None:
    response = answer(window, "/notifications?after=3")
    assert response.status_code == 426 and "WebSocket" in json.loads(response.body)["detail"]
    assert answer(window, "/notifications?after=3", Upgrade="websocket") is None
    assert answer(window, "/notifications", Upgrade="WebSocket") is None


def test_the_page_and_an_unknown_path(window: FrameWindow) -> None:
    page = answer(window, "/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert b"/notifications" in page.body
    missing = answer(window, "/nope")
    assert missing.status_code == 404 and "/notifications" in json.loads(missing.body)["detail"]


def test_health_is_200_only_while_the_follower_reads_the_database_lately(window: FrameWindow) -> None:
    unready = answer(window, "/health")
    assert unready.status_code == 503 and json.loads(unready.body)["status"] == "database unreachable"
    window.set_epoch("e1", 0)
    window.mark_database_ok()
    healthy = answer(window, "/health")
    assert healthy.status_code == 200
    assert json.loads(healthy.body) == {"status": "ok", "epoch": "e1", "head": 0, "listeners": 0}
    window.database_ok_at = time.monotonic() - HEALTHY_WITHIN_SECONDS - 1
    stale = answer(window, "/health")
    assert stale.status_code == 503 and json.loads(stale.body)["epoch"] == "e1"


# Listeners


class FakeTransport:
    def __init__(self) -> None:
        self.aborted = False
        self.unsent_bytes = 0

    def get_write_buffer_size(self) -> int:
        return self.unsent_bytes

    def abort(self) -> None:
        self.aborted = True


class FakeWebSocket:
    """A listener's connection: records what the hub sends; `send` may be replaced to fail or stall."""

    def __init__(self, path: str = "/notifications") -> None:
        self.request = SimpleNamespace(path=path)
        self.remote_address = ("192.0.2.1", 40000)
        self.sent: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.transport = FakeTransport()
        self.send_hook: Callable[[str], Awaitable[None]] | None = None
        self._incoming: asyncio.Queue[str | None] = asyncio.Queue()

    async def send(self, data: str) -> None:
        if self.close_code is not None:
            raise ConnectionClosedOK(None, None)
        if self.send_hook is not None:
            await self.send_hook(data)
        self.sent.append(json.loads(data))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.close_code is None:
            self.close_code = code
            self._incoming.put_nowait(None)

    def listener_sends(self, text: str) -> None:
        self._incoming.put_nowait(text)

    def listener_leaves(self) -> None:
        self._incoming.put_nowait(None)

    def __aiter__(self) -> FakeWebSocket:
        return self

    async def __anext__(self) -> str:
        item = await self._incoming.get()
        if item is None:
            raise StopAsyncIteration
        return item

    @property
    def ids(self) -> list[int]:
        return [frame["id"] for frame in self.sent]


def fake_broadcast(connections: Any, published: list[Any]) -> None:
    """listeners.write_frames for FakeWebSockets: written at once, skipped once closed."""
    for websocket in connections:
        if websocket.close_code is None:
            websocket.sent.extend(json.loads(frame.data) for frame in published)


def test_frames_go_out_in_id_order_from_memory_then_as_they_are_published() -> None:
    async def test() -> None:
        window = FrameWindow(capacity=100)
        window.set_epoch("e1", 0)
        window.publish("e1", frames(1, 5))
        listeners = Listeners(window, FakePool(), send_timeout=1.0, write_to_all=fake_broadcast)  # type: ignore[arg-type]
        websocket = FakeWebSocket("/notifications?after=2&epoch=e1")
        serving = asyncio.create_task(listeners.serve(websocket))  # type: ignore[arg-type]
        await until(lambda: websocket.ids == [3, 4, 5], "the frames in memory")
        assert listeners.connected == 1
        window.publish("e1", frames(6, 8))
        await until(lambda: websocket.ids == [3, 4, 5, 6, 7, 8], "the published frames")
        assert websocket.sent[0]["text"].endswith("total de mensajes 3") and websocket.sent[0]["epoch"] == "e1"
        websocket.listener_leaves()
        await serving
        assert listeners.connected == 0 and websocket.close_code is None

    run(test)


def test_a_caught_up_listener_gets_new_frames_written_at_publish_and_one_behind_is_not() -> None:
    async def test() -> None:
        window = FrameWindow(capacity=100)
        window.set_epoch("e1", 0)
        window.publish("e1", frames(1, 3))
        written: list[tuple[list[Any], int]] = []

        def recording_broadcast(connections: Any, published: list[Any]) -> None:
            written.append((list(connections), [frame.id for frame in published]))
            fake_broadcast(connections, published)

        listeners = Listeners(window, FakePool(), send_timeout=1.0, write_to_all=recording_broadcast)  # type: ignore[arg-type]
        live, behind = FakeWebSocket(), FakeWebSocket("/notifications?after=1")
        gate = asyncio.Event()

        async def held(data: str) -> None:
            await gate.wait()  # this listener's own sends are held up

        behind.send_hook = held
        serving = [asyncio.create_task(listeners.serve(ws)) for ws in (live, behind)]  # type: ignore[arg-type]
        await until(lambda: live.ids == [1, 2, 3], "the first listener catching up")
        await _sleep(0.01)
        window.publish("e1", frames(4, 5))
        # Written at publish, in order, to the caught-up listener only: no task switch in between.
        assert written == [([live], [4, 5])] and live.ids == [1, 2, 3, 4, 5]
        gate.set()
        await until(lambda: behind.ids == [2, 3, 4, 5], "the other listener by its own sends")
        await _sleep(0.01)
        window.publish("e1", frames(6, 6))
        assert written[-1] == ([live, behind], [6]) and behind.ids == [2, 3, 4, 5, 6]
        for websocket in (live, behind):
            websocket.listener_leaves()
        await asyncio.gather(*serving)
        assert listeners.connected == 0

    run(test)


def test_a_live_listener_with_unsent_bytes_is_released_to_its_own_sends_and_cut_if_it_stays_stuck() -> None:
    async def test() -> None:
        window = FrameWindow(capacity=100)
        window.set_epoch("e1", 0)
        window.publish("e1", frames(1, 2))
        listeners = Listeners(window, FakePool(), send_timeout=0.05, write_to_all=fake_broadcast)  # type: ignore[arg-type]
        slow, fine = FakeWebSocket(), FakeWebSocket()
        serving = [asyncio.create_task(listeners.serve(ws)) for ws in (slow, fine)]  # type: ignore[arg-type]
        await until(lambda: slow.ids == [1, 2] and fine.ids == [1, 2], "both listeners caught up")
        await _sleep(0.01)
        slow.transport.unsent_bytes = listeners_module.WRITE_BUFFER_LIMIT + 1
        never = asyncio.get_running_loop().create_future()

        async def stuck(data: str) -> None:
            await never

        slow.send_hook = stuck
        window.publish("e1", frames(3, 4))
        assert fine.ids == [1, 2, 3, 4] and slow.ids == [1, 2]  # not written past its limit
        await serving[0]  # its own send of frame 3 waited longer than the timeout
        assert slow.transport.aborted and not fine.transport.aborted
        window.publish("e1", frames(5, 5))
        assert fine.ids == [1, 2, 3, 4, 5]
        fine.listener_leaves()
        await serving[1]

    run(test)


def test_a_live_listener_released_by_a_new_stream_is_closed_with_1012() -> None:
    async def test() -> None:
        window = FrameWindow(capacity=100)
        window.set_epoch("e1", 0)
        window.publish("e1", frames(1, 2))
        listeners = Listeners(window, FakePool(), send_timeout=1.0, write_to_all=fake_broadcast)  # type: ignore[arg-type]
        websocket = FakeWebSocket()
        serving = asyncio.create_task(listeners.serve(websocket))  # type: ignore[arg-type]
        await until(lambda: websocket.ids == [1, 2], "the listener caught up")
        await _sleep(0.01)
        window.set_epoch("e2", 0)
        await until(lambda: websocket.close_code == CLOSE_RESTART, "the close")
        websocket.listener_leaves()
        await serving

    run(test)


def test_frames_older_than_memory_are_read_back_from_the_table() -> None:
    async def test() -> None:
        window = FrameWindow(capacity=3)
        window.set_epoch("e1", 10)  # memory starts after id 10
        window.publish("e1", frames(11, 13))
        pool = FakePool(FakeDatabase([record(i) for i in range(1, 11)], epoch="e1"))
        listeners = Listeners(window, pool, send_timeout=1.0, write_to_all=fake_broadcast)  # type: ignore[arg-type]
        websocket = FakeWebSocket("/notifications?after=4")
        serving = asyncio.create_task(listeners.serve(websocket))  # type: ignore[arg-type]
        await until(lambda: websocket.ids == list(range(5, 14)), "the table, then memory")
        assert pool.checkouts == 1
        websocket.listener_leaves()
        await serving

    run(test)


def test_a_read_back_waits_out_an_unavailable_database(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def quick_sleep(seconds: float) -> None:
        waits.append(seconds)
        await _sleep(0)

    monkeypatch.setattr(listeners_module.asyncio, "sleep", quick_sleep)

    async def test() -> None:
        window = FrameWindow(capacity=3)
        window.set_epoch("e1", 2)
        pool = FakePool(FakeDatabase([record(1), record(2)]))
        pool.database.failures["FROM stream"] = [DatabaseUnavailable("could not connect")]
        listeners = Listeners(window, pool, send_timeout=1.0, write_to_all=fake_broadcast)  # type: ignore[arg-type]
        websocket = FakeWebSocket()
        serving = asyncio.create_task(listeners.serve(websocket))  # type: ignore[arg-type]
        await until(lambda: websocket.ids == [1, 2], "the frames after the outage")
        assert waits == [1]
        websocket.listener_leaves()
        await serving

    run(test)


def test_a_listener_of_another_epoch_replays_from_the_start() -> None:
    async def test() -> None:
        window = FrameWindow(capacity=100)
        window.set_epoch("e2", 0)
        window.publish("e2", frames(1, 3, epoch="e2"))
        listeners = Listeners(window, FakePool(), send_timeout=1.0, write_to_all=fake_broadcast)  # type: ignore[arg-type]
        websocket = FakeWebSocket("/notifications?after=2&epoch=e1")
        serving = asyncio.create_task(listeners.serve(websocket))  # type: ignore[arg-type]
        await until(lambda: websocket.ids == [1, 2, 3], "the new stream from its start")
        websocket.listener_leaves()
        await serving

    run(test)


def test_a_replaced_stream_closes_the_listener_with_1012() -> None:
    async def test() -> None:
        window = FrameWindow(capacity=100)
        window.set_epoch("e1", 0)
        window.publish("e1", frames(1, 2))
        listeners = Listeners(window, FakePool(), send_timeout=1.0, write_to_all=fake_broadcast)  # type: ignore[arg-type]
        websocket = FakeWebSocket()
        serving = asyncio.create_task(listeners.serve(websocket))  # type: ignore[arg-type]
        await until(lambda: websocket.ids == [1, 2], "the first frames")
        window.set_epoch("e2", 0)
        await serving
        assert websocket.close_code == CLOSE_RESTART

    run(test)


def test_a_read_back_that_finds_another_stream_closes_the_listener_with_1012() -> None:
    async def test() -> None:
        window = FrameWindow(capacity=3)
        window.set_epoch("e1", 5)
        pool = FakePool(FakeDatabase([record(i) for i in range(1, 6)], epoch="e2"))
        listeners = Listeners(window, pool, send_timeout=1.0, write_to_all=fake_broadcast)  # type: ignore[arg-type]
        websocket = FakeWebSocket()
        await listeners.serve(websocket)  # type: ignore[arg-type]
        assert websocket.close_code == CLOSE_RESTART and websocket.sent == []

    run(test)


def test_a_listener_that_sends_is_closed_with_policy_violation() -> None:
    async def test() -> None:
        window = FrameWindow(capacity=100)
        window.set_epoch("e1", 0)
        listeners = Listeners(window, FakePool(), send_timeout=1.0, write_to_all=fake_broadcast)  # type: ignore[arg-type]
        websocket = FakeWebSocket()
        serving = asyncio.create_task(listeners.serve(websocket))  # type: ignore[arg-type]
        websocket.listener_sends("hola hub")
        await serving
        assert websocket.close_code == CLOSE_POLICY and listeners.connected == 0

    run(test)


def test_a_failing_sender_closes_only_its_own_listener_with_1011(caplog: pytest.LogCaptureFixture) -> None:
    async def test() -> None:
        window = FrameWindow(capacity=100)
        window.set_epoch("e1", 0)
        listeners = Listeners(window, FakePool(), send_timeout=1.0, write_to_all=fake_broadcast)  # type: ignore[arg-type]
        failing, healthy = FakeWebSocket(), FakeWebSocket()

        async def fail_on_the_second(data: str) -> None:
            if len(failing.sent) == 1:
                raise RuntimeError("encoder bug")

        failing.send_hook = fail_on_the_second
        failing_serve = asyncio.create_task(listeners.serve(failing))  # type: ignore[arg-type]
        healthy_serve = asyncio.create_task(listeners.serve(healthy))  # type: ignore[arg-type]
        window.publish("e1", frames(1, 3))
        await failing_serve
        assert failing.close_code == CLOSE_INTERNAL_ERROR and failing.ids == [1]
        window.publish("e1", frames(4, 5))
        await until(lambda: healthy.ids == [1, 2, 3, 4, 5], "every frame on the other listener")
        assert healthy.close_code is None and listeners.connected == 1
        healthy.listener_leaves()
        await healthy_serve

    run(test)
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)  # logged with its traceback


def test_a_listener_too_slow_to_take_a_frame_is_aborted() -> None:
    async def test() -> None:
        window = FrameWindow(capacity=100)
        window.set_epoch("e1", 0)
        window.publish("e1", frames(1, 3))
        listeners = Listeners(window, FakePool(), send_timeout=0.01, write_to_all=fake_broadcast)  # type: ignore[arg-type]
        stalled, fine = FakeWebSocket(), FakeWebSocket()
        never = asyncio.get_running_loop().create_future()

        async def stall(data: str) -> None:
            if stalled.sent:
                await never

        stalled.send_hook = stall
        fine_serve = asyncio.create_task(listeners.serve(fine))  # type: ignore[arg-type]
        await listeners.serve(stalled)  # type: ignore[arg-type]
        assert stalled.transport.aborted and stalled.ids == [1]
        await until(lambda: fine.ids == [1, 2, 3], "the other listener's frames")
        assert not fine.transport.aborted
        fine.listener_leaves()
        await fine_serve

    run(test)


# The follower


SETTINGS = DatabaseSettings("db", 5432, "messages", "suite", "secret", 1, "websocket-hub")


class NeverStopping:
    """follower.stopping: records the reconnect waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def is_set(self) -> bool:
        return False

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return False


class DoorbellConnection(FakeConnection):
    """A connection whose LISTEN socket always has a notification waiting."""

    def __init__(self, database: FakeDatabase) -> None:
        super().__init__(database)
        self._read, self._write = os.pipe()
        os.write(self._write, b"!")
        self.notifies: list[object] = []

    def fileno(self) -> int:
        return self._read

    def poll(self) -> None:
        self.notifies.append("messages")

    def close(self) -> None:
        if not self.closed:
            os.close(self._read)
            os.close(self._write)
        super().close()


class Connects:
    """psycopg2.connect for the follower: fails as scripted, then hands out connections to the database."""

    def __init__(self, database: FakeDatabase, failures: list[Exception]) -> None:
        self.database = database
        self.failures = failures
        self.opened: list[DoorbellConnection] = []

    def __call__(self, **kwargs: object) -> DoorbellConnection:
        if self.failures:
            raise self.failures.pop(0)
        self.opened.append(DoorbellConnection(self.database))
        return self.opened[-1]


def test_a_database_error_reconnects_but_any_other_error_escapes_the_follower(monkeypatch: pytest.MonkeyPatch) -> None:
    database = FakeDatabase([record(1), record(2)])
    database.failures["FROM messages WHERE id > "] = [None, RuntimeError("a bug in the follower")]
    connects = Connects(database, [psycopg2.OperationalError("could not connect to server")])
    monkeypatch.setattr(follower_module.psycopg2, "connect", connects)
    loop = asyncio.new_event_loop()
    try:
        window = FrameWindow(capacity=100)
        follower = Follower(SETTINGS, window, loop)
        follower.stopping = NeverStopping()  # type: ignore[assignment]
        with pytest.raises(RuntimeError, match="a bug in the follower"):
            follower.run()  # in the hub a thread: its exception ends the process (see test_crash.py)
        assert len(follower.stopping.waits) == 1  # type: ignore[attr-defined]
        assert len(connects.opened) == 1 and connects.opened[0].closed
        loop.run_until_complete(asyncio.sleep(0))  # the callbacks the follower handed to the loop
        assert window.epoch == "e1" and window.head == 2 and window.database_ok_at > 0
    finally:
        loop.close()


def test_a_frame_window_that_fails_inside_a_loop_callback_ends_the_process(
    exits: Exits, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = FakeDatabase([record(1), record(2), record(3)])
    database.failures["FROM messages WHERE id > "] = [None, RuntimeError("stop following")]
    monkeypatch.setattr(follower_module.psycopg2, "connect", Connects(database, []))
    loop = asyncio.new_event_loop()
    try:
        window = FrameWindow(capacity=100)
        window.set_epoch("e1", 7)  # memory that does not fit the table: publish refuses the hole
        follower = Follower(SETTINGS, window, loop)
        with pytest.raises(RuntimeError, match="stop following"):
            follower.run()
        assert exits.codes == []
        loop.run_until_complete(asyncio.sleep(0))
        assert exits.codes == [70]
        assert window.head == 7
    finally:
        loop.close()
