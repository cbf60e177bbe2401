"""The hub under load and abuse: many listeners, a stalled one, bad requests."""

from __future__ import annotations

import json
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from harness.stack import CLIENTS, ROOT, Stack, receive_frames, wait_for

from .checks import assert_ids_gap_free
from .load import start_streams

LISTENERS = 50
PER_CLIENT = 1000


def hub_health(stack: Stack) -> dict[str, object]:
    url = stack.hub_url.replace("ws://", "http://")
    return requests.get(f"{url}/health", timeout=5).json()


class StalledListener:
    """A listener in the compose network that reads nothing until told to.

    It runs in a container: through the host's published port, docker-proxy
    would read on its behalf and hide the stall in its socket buffers.
    """

    def __init__(self, stack: Stack, after: int) -> None:
        self._process = subprocess.Popen(
            [
                "docker",
                "compose",
                "-p",
                stack.project,
                "run",
                "--rm",
                "--no-deps",
                "-T",
                "-v",
                f"{ROOT / 'tests/e2e/tools'}:/tools:ro",
                "--entrypoint",
                "python",
                "websocket-client",
                "/tools/stalled_listener.py",
                "ws://websocket-hub:8765/notifications",
                str(after),
            ],
            cwd=ROOT,
            env=stack.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        first = self._process.stdout.readline()
        assert first.strip() == "connected", first + self._process.stderr.read()  # type: ignore[union-attr]

    def drain(self) -> tuple[list[int], str | None]:
        """Reads what it still gets; returns the ids and how the connection ended."""
        out, _ = self._process.communicate("go\n", timeout=120)
        result = json.loads(out.strip().splitlines()[-1])
        return result["ids"], result["closed"]


@pytest.mark.slow
def hub_log(stack: Stack) -> str:
    return stack.compose("logs", "websocket-hub").stdout


def test_fifty_listeners_get_everything_in_order_and_a_stalled_one_is_cut_off(healthy: Stack) -> None:
    before = healthy.total()
    cut_off_before = hub_log(healthy).count("too slow")  # listeners other tests had cut off
    expected = list(range(before + 1, before + 1 + len(CLIENTS) * PER_CLIENT))
    received: list[list[int]] = [[] for _ in range(LISTENERS)]
    ready = threading.Barrier(LISTENERS + 1)

    stalled = StalledListener(healthy, before)

    def listen(slot: int) -> None:
        with healthy.listen(after=before) as websocket:
            ready.wait()
            while not received[slot] or received[slot][-1] < expected[-1]:
                received[slot].append(int(json.loads(websocket.recv(timeout=180))["id"]))

    with ThreadPoolExecutor(max_workers=LISTENERS) as pool:
        futures = [pool.submit(listen, slot) for slot in range(LISTENERS)]
        ready.wait()
        streams = start_streams(healthy, CLIENTS, "--count", str(PER_CLIENT), "--concurrency", "8")
        for stream in streams:
            outcome = stream.finish()
            assert outcome.returncode == 0, outcome.stderr[-2000:]
        for future in futures:
            future.result(timeout=300)
    for slot in range(LISTENERS):
        assert received[slot] == expected, f"listener {slot}: {len(received[slot])} frames, not in order"
    assert_ids_gap_free(healthy)

    # The stalled listener was disconnected; what it had buffered is in order,
    # and reconnecting with after=<its last id> delivers the rest exactly once.
    wait_for(
        lambda: hub_log(healthy).count("too slow") > cut_off_before,
        timeout=60,
        what="the hub disconnecting the stalled listener",
    )
    got, closed = stalled.drain()
    assert closed is not None, "the stalled listener was never disconnected"
    assert got == expected[: len(got)] and len(got) < len(expected)
    with healthy.listen(after=got[-1] if got else before) as resumed:
        rest = [int(f["id"]) for f in receive_frames(resumed, expected[-1])]  # type: ignore[call-overload]
    assert got + rest == expected


def test_a_listener_that_sends_is_closed_with_policy_violation(healthy: Stack) -> None:
    with healthy.listen(after=healthy.total()) as websocket:
        websocket.send("hola hub")
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                websocket.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


@pytest.mark.parametrize("query", ["after=-1", "after=abc", "after=", "after=1&after=2", "since=3", "epoch=%3Cx%3E"])
def test_a_bad_query_is_refused_before_the_handshake(healthy: Stack, query: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{healthy.hub_url}/notifications?{query}", open_timeout=10)
    assert refused.value.response.status_code == 400
    assert "detail" in json.loads(refused.value.response.body)


def test_many_listeners_connecting_and_leaving_at_once_leave_the_hub_healthy(healthy: Stack) -> None:
    # Listeners other tests left behind may still be leaving: back to at most the baseline.
    baseline = int(hub_health(healthy)["listeners"])  # type: ignore[call-overload]

    def come_and_go(i: int) -> None:
        with healthy.listen(after=max(0, healthy_total - 3)) as websocket:
            if i % 2:
                websocket.recv(timeout=10)

    healthy_total = healthy.total()
    with ThreadPoolExecutor(max_workers=50) as pool:
        list(pool.map(come_and_go, range(200)))
    wait_for(
        lambda: int(hub_health(healthy)["listeners"]) <= baseline,
        timeout=30,  # type: ignore[call-overload]
        what="the hub forgetting the listeners that left",
    )
    assert hub_health(healthy)["status"] == "ok"
    with healthy.listen(after=healthy.total()) as websocket:
        response = requests.post(
            f"{healthy.rest_url}/messages",
            json={"message": "sigue vivo"},
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        frame = receive_frames(websocket, int(response.json()["id"]))[-1]
    assert frame["message"] == "sigue vivo"


def test_hub_serves_its_page_and_health(healthy: Stack) -> None:
    base = healthy.hub_url.replace("ws://", "http://")
    page = requests.get(f"{base}/", timeout=5)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert "/notifications" in page.text and "Se ingresó" not in page.text  # the text comes from the frames
    assert hub_health(healthy)["status"] == "ok"
    assert requests.get(f"{base}/nope", timeout=5).status_code == 404
