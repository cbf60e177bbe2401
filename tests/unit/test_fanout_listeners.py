"""The fan-out benchmark's Node listeners (bench/fanout/listeners.js) against a fake hub, and its verdict."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from websockets.asyncio.server import ServerConnection, serve

from bench.fan_out import FANOUT, LISTENERS_JS, FanOutRun
from bench.report import Results

AFTER = 10
LAST = 15

needs_node = pytest.mark.skipif(
    shutil.which("node") is None or not (FANOUT / "node_modules" / "ws").is_dir(),
    reason="needs node and `npm ci --prefix bench/fanout` (scripts/bench.sh runs it)",
)


def frame(id: int) -> str:
    created_at = datetime.now(UTC).isoformat()  # microseconds and +00:00, as PostgreSQL's
    return json.dumps(
        {"epoch": "e", "id": id, "total": id, "via": "REST", "message": f"m{id}", "created_at": created_at}
    )


@pytest.fixture
def fake_hub() -> Iterator[int]:
    """Three listeners: the first gets 11..15, the second 12 twice, the third is cut (1013) after 12."""
    connected: list[ServerConnection] = []
    all_in = asyncio.Event()
    port: list[int] = []
    started = threading.Event()
    stop: list[asyncio.Future[None]] = []

    async def handler(websocket: ServerConnection) -> None:
        assert websocket.request is not None and websocket.request.path.endswith(f"?after={AFTER}")
        connected.append(websocket)
        if len(connected) == 3:
            all_in.set()
        await all_in.wait()
        index = connected.index(websocket)
        for id in range(AFTER + 1, LAST + 1):
            await websocket.send(frame(id))
            if index == 1 and id == 12:
                await websocket.send(frame(id))
            if index == 2 and id == 12:
                await websocket.close(1013, "too slow")
                return
        await websocket.wait_closed()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            port.append(server.sockets[0].getsockname()[1])
            stop.append(asyncio.get_running_loop().create_future())
            started.set()
            await stop[0]

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(10)
    yield port[0]
    loop.call_soon_threadsafe(stop[0].set_result, None)
    thread.join(10)


@needs_node
def test_listeners_report_complete_duplicate_and_cut_listeners(fake_hub: int) -> None:
    command = ["node", str(LISTENERS_JS), "--url", f"ws://127.0.0.1:{fake_hub}/notifications"]
    command += ["--after", str(AFTER), "--listeners", "3", "--timeout", "5"]
    node = subprocess.run(command, input=f"{LAST}\n", capture_output=True, text=True, timeout=30)
    assert node.returncode == 0, node.stderr
    ready, summary_line = node.stdout.splitlines()
    assert ready == "ready 3"
    summary = json.loads(summary_line)
    assert summary["frames_per_listener"] == LAST - AFTER
    assert summary["listeners_complete"] == 1
    assert summary["listeners_closed_early"] == 1
    assert summary["closes"] == {"1013": 1}
    assert (summary["duplicates"], summary["out_of_order"]) == (1, 0)
    assert summary["frames_received"] == 5 + 6 + 2
    assert summary["elapsed_seconds"] < 4  # done once every listener had the last id or was closed
    assert 0 <= summary["delay_ms"]["p50"] <= summary["delay_ms"]["p99"] <= summary["delay_ms"]["max"] < 5000


def test_keeping_up_needs_every_listener_complete_and_a_short_p99() -> None:
    run = FanOutRun(50, 50.0, 1000, 250, 1000, 0, {}, 0, 0, 5.0, 20.0, 60.0, 90.0, 0.3, 0.5, 0.8, 4.0)
    assert run.keeps_up
    assert not replace(run, complete=999, closed_early=1, closes={"1013": 1}).keeps_up
    assert not replace(run, p99=150.0).keeps_up
    assert not replace(run, sent_rate=40.0).keeps_up
    table = Results(fan_out=[run, replace(run, offered=100, p99=150.0)]).fan_out_table()
    assert "| 50 | 50 | 1,000/1,000 (250 each) | 0 |" in table
    assert "keep up: 50 msg/s" in table
