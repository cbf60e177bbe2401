"""Restarts: the websocket client resumes without repeating, data survives down/up."""

from __future__ import annotations

import uuid

import requests

from .checks import assert_log_complete
from .stack import Stack


def post(stack: Stack, message: str) -> int:
    response = requests.post(
        f"{stack.rest_url}/messages",
        json={"message": message},
        headers={"Idempotency-Key": str(uuid.uuid4())},
        timeout=30,
    )
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
