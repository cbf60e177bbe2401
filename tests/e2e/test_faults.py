"""Faults under load: nothing a client was told is stored may be lost or doubled.

Each fault is injected while the three clients stream at a steady rate with
their retries on; afterwards every confirmed message is in the table exactly
once (by idempotency key), ids are 1..N with no gap, and a resuming listener
and the websocket-client log hold every notification once, in id order.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from harness.stack import CLIENTS, LONG_RUNNING, Stack, wait_for

from .checks import assert_ids_gap_free, assert_log_complete, assert_reported_stored_once
from .listener import ResumingListener
from .load import Outcome, start_streams

STREAM = ["--count", "100", "--rate", "20", "--concurrency", "4", "--retries", "40"]
SECONDS_BEFORE_FAULT = 2.0


def kill_and_restart_consumer(stack: Stack) -> None:
    stack.compose("kill", "-s", "SIGKILL", "rabbitmq-server")
    time.sleep(1)
    stack.compose("up", "-d", "--no-deps", "rabbitmq-server")


FAULTS: dict[str, Callable[[Stack], None]] = {
    "kill -9 rabbitmq-server": kill_and_restart_consumer,
    "restart rest-server and grpc-server": lambda stack: stack.restart("rest-server", "grpc-server"),
    "restart database": lambda stack: stack.restart("database"),
    "restart rabbitmq broker": lambda stack: stack.restart("rabbitmq"),
    "restart websocket-hub": lambda stack: stack.restart("websocket-hub"),
    "restart websocket-client": lambda stack: stack.restart("websocket-client"),
}


def assert_confirmed_stored_once(stack: Stack, outcomes: list[Outcome]) -> None:
    keys = [key for outcome in outcomes for key in outcome.stored]
    wait_for(
        lambda: (
            stack.query("SELECT count(*) FROM messages WHERE idempotency_key = ANY(%s)", (keys,))[0][0] == len(keys)
        ),
        timeout=120,
        what=f"{len(keys)} confirmed messages stored",
    )
    assert_reported_stored_once(stack.query("SELECT id, idempotency_key, message FROM messages"), outcomes)


@pytest.mark.slow
@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
def test_fault_under_load_loses_and_doubles_nothing(healthy: Stack, fault: str) -> None:
    before = healthy.total()
    with ResumingListener(healthy, after=before) as listener:
        streams = start_streams(healthy, CLIENTS, *STREAM)
        time.sleep(SECONDS_BEFORE_FAULT)
        FAULTS[fault](healthy)
        healthy.wait_healthy(LONG_RUNNING)
        outcomes = [stream.finish() for stream in streams]
        for outcome in outcomes:
            assert outcome.returncode == 0, f"{outcome.client} failed:\n{outcome.stderr[-2000:]}"
            assert len(outcome.stored) == 100
        assert_confirmed_stored_once(healthy, outcomes)
        total = assert_ids_gap_free(healthy)
        listener.wait_until(total)
        assert listener.ids() == list(range(before + 1, total + 1))
    assert_log_complete(healthy, after=before)
