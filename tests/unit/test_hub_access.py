"""Trying to listen without the token, too many at once, and without answering pings: a real hub server in process."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import urllib.request
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from msgsuite.auth import REFUSAL, TokenCheck, token_digest
from websocket_hub.access import HubAccess, ListenerLimits, ListenerSlots
from websocket_hub.frame_window import FrameWindow
from websocket_hub.http_routes import Routes
from websocket_hub.listeners import Listeners
from websocket_hub.server import Keepalive, serve_hub
from websocket_hub.stats import StreamCountsCache

from .test_hub_tail_and_stats import EPOCH, StreamRow, published

TOKEN = "listener-Token_123"
GENEROUS = ListenerLimits(total=100, per_address=100)


DEFAULT_KEEPALIVE = Keepalive(20, 20)


def run_hub(
    body: Any, limits: ListenerLimits = GENEROUS, keepalive: Keepalive = DEFAULT_KEEPALIVE, host: str = "127.0.0.1"
) -> None:
    """Runs body(window, listeners, slots, address) against a hub that requires TOKEN, on a free port of host."""

    async def main() -> None:
        window = FrameWindow(capacity=1000)
        window.set_epoch(EPOCH, head=0)
        row = StreamRow((EPOCH, 0, 0, 0, 0))
        listeners = Listeners(window, row, send_timeout=5)  # type: ignore[arg-type]
        slots = ListenerSlots(limits)
        routes = Routes(window, listeners, StreamCountsCache(row), HubAccess(TokenCheck(token_digest(TOKEN)), slots))  # type: ignore[arg-type]
        async with serve_hub(listeners, routes, keepalive, host, 0) as server:
            port = server.sockets[0].getsockname()[1]
            await asyncio.wait_for(body(window, listeners, slots, f"127.0.0.1:{port}"), 20)

    asyncio.run(main())


def http_get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any]]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.load(error)


async def refused(url: str, **options: Any) -> Any:
    with pytest.raises(InvalidStatus) as error:
        await connect(url, **options)
    return error.value.response


def test_no_token_or_a_wrong_one_is_401_before_the_handshake_and_says_nothing_more() -> None:
    async def body(window: FrameWindow, listeners: Listeners, slots: ListenerSlots, address: str) -> None:
        url = f"ws://{address}/notifications"
        answers = [
            await refused(url),
            await refused(url, additional_headers={"Authorization": "Bearer wrong"}),
            await refused(url, subprotocols=[Subprotocol("msgsuite"), Subprotocol("bearer.wrong")]),
            await refused(url, additional_headers={"Authorization": f"Bearer {token_digest(TOKEN)}"}),
        ]
        for response in answers:
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert json.loads(response.body) == {"detail": REFUSAL}
        assert listeners.connected == 0 and slots.taken == 0
        status, _, _ = await asyncio.to_thread(http_get, f"http://{address}/stats", {})
        assert status == 401
        for open_path in ("/", "/health", "/metrics"):
            request = urllib.request.Request(f"http://{address}{open_path}")
            try:
                code = (await asyncio.to_thread(urllib.request.urlopen, request, None, 5)).status
            except urllib.error.HTTPError as error:
                code = error.code
            assert code != 401, open_path

    run_hub(body)


def test_the_token_in_a_header_or_as_a_subprotocol_lets_a_listener_in() -> None:
    async def body(window: FrameWindow, listeners: Listeners, slots: ListenerSlots, address: str) -> None:
        published(window, 1, 2)
        url = f"ws://{address}/notifications"
        async with connect(url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as websocket:
            assert json.loads(await websocket.recv())["id"] == 1
            assert websocket.subprotocol is None
        # A browser: new WebSocket(url, ["msgsuite", "bearer." + token]); the hub selects msgsuite, never the token.
        offered = [Subprotocol("msgsuite"), Subprotocol(f"bearer.{TOKEN}")]
        async with connect(url, subprotocols=offered) as websocket:
            assert json.loads(await websocket.recv())["id"] == 1
            assert websocket.subprotocol == "msgsuite"
        status, _, stats = await asyncio.to_thread(
            http_get, f"http://{address}/stats", {"Authorization": f"Bearer {TOKEN}"}
        )
        assert status == 200 and stats["epoch"] == EPOCH

    run_hub(body)


def test_listeners_beyond_the_caps_are_refused_before_the_handshake_and_slots_come_back() -> None:
    # two per address, three in all: a second address may add one, then the total refuses it
    async def by_address(window: FrameWindow, listeners: Listeners, slots: ListenerSlots, address: str) -> None:
        port = address.rsplit(":", 1)[1]
        auth = {"Authorization": f"Bearer {TOKEN}"}
        here = [await connect(f"ws://127.0.0.1:{port}/notifications", additional_headers=auth) for _ in range(2)]
        too_many_here = await refused(f"ws://127.0.0.1:{port}/notifications", additional_headers=auth)
        assert too_many_here.status_code == 429
        assert "too many listeners from your address" in json.loads(too_many_here.body)["detail"]
        other = f"ws://127.0.0.2:{port}/notifications"
        # From another address: the kernel would pick 127.0.0.1 as the source unless told.
        there = await connect(other, additional_headers=auth, local_addr=("127.0.0.2", 0))
        full = await refused(other, additional_headers=auth, local_addr=("127.0.0.2", 0))
        assert full.status_code == 503 and "as many listeners as it takes" in json.loads(full.body)["detail"]
        assert slots.taken == 3 and slots.by_address == {"127.0.0.1": 2, "127.0.0.2": 1}
        for websocket in [*here, there]:
            await websocket.close()
        deadline = time.monotonic() + 5
        while slots.taken and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert slots.taken == 0 and not slots.by_address
        async with connect(other, additional_headers=auth, local_addr=("127.0.0.2", 0)):
            pass

    run_hub(by_address, ListenerLimits(total=3, per_address=2), host="0.0.0.0")  # 127.0.0.2 reaches it too


def test_a_listener_that_stops_answering_pings_is_cut_while_one_that_answers_stays() -> None:
    keepalive = Keepalive(interval=0.2, timeout=0.3)

    async def body(window: FrameWindow, listeners: Listeners, slots: ListenerSlots, address: str) -> None:
        url = f"ws://{address}/notifications"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            connect(url, additional_headers=auth, ping_interval=None) as answering,
            connect(url, additional_headers=auth, ping_interval=None) as silent,
        ):
            while listeners.connected < 2:
                await asyncio.sleep(0.01)
            silent.transport.pause_reading()  # it reads nothing more, so it answers no ping
            started = time.monotonic()
            while listeners.connected > 1:
                assert time.monotonic() - started < keepalive.longest_silence + 1.0, "the silent one was not cut"
                await asyncio.sleep(0.02)
            assert time.monotonic() - started >= keepalive.interval
            await asyncio.sleep(keepalive.longest_silence)
            assert listeners.connected == 1 and slots.taken == 1  # the answering one stays
            published(window, 1, 1)
            assert json.loads(await asyncio.wait_for(answering.recv(), 5))["id"] == 1

    run_hub(body, keepalive=keepalive)


def test_the_keepalive_defaults_are_the_websockets_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_PING_INTERVAL_SECONDS", raising=False)
    monkeypatch.delenv("HUB_PING_TIMEOUT_SECONDS", raising=False)
    defaults = inspect.signature(serve).parameters
    assert Keepalive.from_env() == Keepalive(defaults["ping_interval"].default, defaults["ping_timeout"].default)
    assert Keepalive.from_env().longest_silence == 60
