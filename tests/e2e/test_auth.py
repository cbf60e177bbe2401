"""AUTH=on, through the real containers: the suite's clients get in with their tokens, no one else does, and the
limits answer as designed. One stack of its own (AUTH=on, low limits) serves every check here.

Starting it already proves the first point: `start` runs the three demo clients as `docker compose up` does and
requires them to exit 0, and the websocket client (with its token) must be healthy before they run.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2
from suite.v1 import messages_pb2, messages_pb2_grpc
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from harness.stack import NOTIFICATION_PREFIX, Stack, receive_frames, wait_for

from .conftest import stack_of_its_own
from .test_dashboard import BROWSER_IMAGE, browser_image  # noqa: F401  (the fixture builds the image)

RATE, BURST, LISTENERS_PER_ADDRESS = 10, 20, 3
AUTH_ON = {
    "AUTH": "on",
    "RATE_LIMIT_PER_SECOND": str(RATE),
    "RATE_LIMIT_BURST": str(BURST),
    "HUB_MAX_LISTENERS_PER_ADDRESS": str(LISTENERS_PER_ADDRESS),
}
WRONG = ["", "Bearer", "Bearer wrong-token", "Basic c3VpdGU6c3VpdGU="]


@pytest.fixture(scope="module")
def locked(images: None) -> Iterator[Stack]:
    with stack_of_its_own("auth", env=AUTH_ON) as stack:
        yield stack


def test_the_suites_own_clients_get_in_with_no_token_typed(locked: Stack) -> None:
    before = locked.total()
    for client in ("rest-client", "grpc-client"):
        result = locked.run_client(client, f"con token {client}")
        assert result.returncode == 0, result.stderr
    wait_for(
        lambda: len([line for line in locked.notification_lines() if "con token" in line]) == 2,
        what="the websocket client printed them",
    )
    printed = [line for line in locked.notification_lines() if "con token" in line]
    assert len(printed) == 2 and all(line.startswith(NOTIFICATION_PREFIX) for line in printed)
    assert locked.total() == before + 2


def test_no_token_or_a_wrong_one_is_refused_everywhere_and_stores_nothing(locked: Stack) -> None:
    before = locked.total()
    rest = locked.rest_url
    answers = []
    for authorization in [None, *WRONG]:
        headers = {"Authorization": authorization} if authorization is not None else {}
        answers.append(requests.post(f"{rest}/messages", json={"message": "colado"}, headers=headers, timeout=10))
        answers.append(requests.get(f"{rest}/messages?after=0", headers=headers, timeout=10))
    assert {a.status_code for a in answers} == {401}
    assert {a.text for a in answers} == {answers[0].text}, "refusals differ: they could tell a near miss"
    assert all(a.headers["WWW-Authenticate"].startswith("Bearer") for a in answers)
    assert requests.get(f"{rest}/health", timeout=10).status_code == 200

    with grpc.insecure_channel(locked.grpc_target) as channel:
        stub = messages_pb2_grpc.MessageServiceStub(channel)
        for metadata in [None, (("authorization", "Bearer wrong-token"),)]:
            with pytest.raises(grpc.RpcError) as refused:
                stub.SendMessage(messages_pb2.SendMessageRequest(message="colado"), timeout=10, metadata=metadata)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        assert check(health_pb2.HealthCheckRequest(), timeout=10).status == health_pb2.HealthCheckResponse.SERVING

    hub = locked.hub_url
    for headers in [None, {"Authorization": "Bearer wrong-token"}]:
        with pytest.raises(InvalidStatus) as refused_listener:
            connect(f"{hub}/notifications", additional_headers=headers, open_timeout=10)
        assert refused_listener.value.response.status_code == 401
    http_hub = hub.replace("ws://", "http://")
    assert requests.get(f"{http_hub}/stats", timeout=10).status_code == 401
    assert requests.get(f"{http_hub}/health", timeout=10).status_code == 200
    assert requests.get(f"{http_hub}/", timeout=10).status_code == 200  # the page: it asks for the token
    assert locked.total() == before
    assert not locked.query("SELECT 1 FROM messages WHERE message = 'colado'")


def test_the_rate_limit_answers_429_and_retry_after_and_the_clients_wait_it_out(locked: Stack) -> None:
    token = locked.secret("rest_client_token")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    statuses = [session.get(f"{locked.rest_url}/messages?after=0&limit=1", timeout=10) for _ in range(BURST * 2)]
    limited = [answer for answer in statuses if answer.status_code == 429]
    assert limited, "a burst twice the limit was never limited"
    assert int(limited[0].headers["Retry-After"]) >= 1 and "too many requests" in limited[0].json()["detail"]

    with grpc.insecure_channel(locked.grpc_target) as channel:
        stub = messages_pb2_grpc.MessageServiceStub(channel)
        metadata = (("authorization", f"Bearer {locked.secret('grpc_client_token')}"),)
        codes = []
        for n in range(BURST * 2):
            try:
                stub.SendMessage(
                    messages_pb2.SendMessageRequest(message=f"ráfaga {n}", idempotency_key=f"burst-{n}"),
                    timeout=10,
                    metadata=metadata,
                )
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                codes.append(error.code())
                if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    keys = {item.key for item in error.trailing_metadata() or ()}
                    assert "retry-after" in keys
        assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes

    # Three times the burst at once: the clients meet the limit and wait it out, every message stored.
    count = str(BURST * 3)
    for client in ("rest-client", "grpc-client"):
        result = locked.run_client(client, "--count", count, "--concurrency", "4", "--retries", "20")
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.count("stored id=") == BURST * 3


def test_listeners_beyond_the_cap_per_address_are_refused_before_the_handshake(locked: Stack) -> None:
    headers = locked.listener_headers()
    url = f"{locked.hub_url}/notifications?tail=1"
    with ExitStack() as opened:
        first = [
            opened.enter_context(connect(url, additional_headers=headers, open_timeout=10))
            for _ in range(LISTENERS_PER_ADDRESS)
        ]
        with pytest.raises(InvalidStatus) as refused:
            opened.enter_context(connect(url, additional_headers=headers, open_timeout=10))
        assert refused.value.response.status_code == 429
        assert refused.value.response.headers["Retry-After"]
        receive_frames(first[0], until_id=1, timeout=10)  # the ones let in are served
    wait_for(lambda: _can_listen(locked), timeout=30, what="the slots given back")


def _can_listen(stack: Stack) -> bool:
    try:
        with connect(f"{stack.hub_url}/notifications?tail=1", additional_headers=stack.listener_headers()):
            return True
    except InvalidStatus:
        return False


@pytest.mark.usefixtures("browser_image")
def test_the_live_page_asks_for_its_token_once_per_browser_session(locked: Stack) -> None:
    run = subprocess.run(
        [
            *("docker", "run", "--rm", "--network", f"{locked.project}_suite", "--entrypoint", "python"),
            *(BROWSER_IMAGE, "/check/token_check.py", "--page", "http://websocket-hub:8765/"),
            f"--token={locked.secret('listener_token')}",  # one argument: a token may begin with "-"
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["asked"] and seen["sockets_before_token"] == 0, seen  # /stats said 401 first: no socket without it
    assert seen["wrong_refused"] and seen["opened_with_wrong"] == 0, seen
    assert seen["connected"] and seen["total_shown"] >= 3 and seen["stored_in_session"], seen
    assert seen["asked_after_reload"] is False, seen
    assert seen["token_in_page_text"] is False, seen
