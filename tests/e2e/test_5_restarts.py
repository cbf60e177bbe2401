"""Restarts: the websocket client resumes without repeating, data survives down/up."""
from __future__ import annotations

import uuid

import requests

from .checks import assert_ids_gap_free, assert_log_complete, log_ids
from .stack import LONG_RUNNING, Stack


def post(stack: Stack, message: str) -> int:
    response = requests.post(f"{stack.rest_url}/messages", json={"message": message},
                             headers={"Idempotency-Key": str(uuid.uuid4())}, timeout=30)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_websocket_client_restart_neither_repeats_nor_skips(healthy: Stack) -> None:
    for i in range(20):
        post(healthy, f"antes del reinicio {i}")
    healthy.compose("stop", "websocket-client")
    for i in range(20):
        post(healthy, f"mientras está detenido {i}")
    healthy.compose("start", "websocket-client")
    healthy.wait_healthy(["websocket-client"])
    for i in range(20):
        post(healthy, f"después del reinicio {i}")
    assert_log_complete(healthy)


def test_messages_survive_down_and_up_and_the_total_continues(stack: Stack) -> None:
    last = post(stack, "antes de down")
    epoch = stack.query("SELECT epoch::text FROM stream")[0][0]
    assert_log_complete(stack)
    logged_before = log_ids(stack)
    stack.down(volumes=False)
    stack.up(*LONG_RUNNING)
    assert stack.query("SELECT message FROM messages WHERE id = %s", (last,)) == [("antes de down",)]
    assert stack.query("SELECT epoch::text FROM stream")[0][0] == epoch
    assert post(stack, "después de up") == last + 1
    assert_ids_gap_free(stack)
    assert_log_complete(stack, earlier=logged_before)
