"""Restarts: the websocket client resumes without repeating or skipping."""

from __future__ import annotations

from harness.stack import Stack

from .checks import assert_log_complete
from .send import post_message


def test_websocket_client_restart_neither_repeats_nor_skips(healthy: Stack) -> None:
    before = healthy.total()
    for i in range(20):
        post_message(healthy, f"antes del reinicio {i}")
    healthy.compose("stop", "websocket-client")
    for i in range(20):
        post_message(healthy, f"mientras está detenido {i}")
    healthy.compose("start", "websocket-client")
    healthy.wait_healthy(["websocket-client"])
    for i in range(20):
        post_message(healthy, f"después del reinicio {i}")
    assert_log_complete(healthy, after=before)
