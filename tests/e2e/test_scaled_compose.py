"""The README's scaling command on one host keeps every guarantee:

    docker compose up --scale rabbitmq-server=3 --scale websocket-hub=2 --scale rest-server=2

with empty host ports. The three clients stream while every replica takes part;
afterwards ids are 1..N with no gap, each confirmed message is stored once, and a
listener on each hub replica (and the websocket-client) got every notification
once, in order.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest

from harness.stack import CLIENTS, Stack, wait_for

from .checks import assert_ids_gap_free, assert_log_complete, assert_reported_stored_once
from .conftest import stack_of_its_own
from .load import start_streams
from .replicas import ContainerListener, assert_each_heard_all, container_ip, containers

SCALE = {"rabbitmq-server": 3, "websocket-hub": 2, "rest-server": 2}
COUNT = 150
STREAM = ["--count", str(COUNT), "--rate", "25", "--concurrency", "4", "--retries", "40"]


@pytest.fixture
def scaled(images: None) -> Iterator[Stack]:
    """A whole stack of its own, started scaled (as a user would), removed after the test."""
    with stack_of_its_own("scaled", SCALE) as stack:
        yield stack


def replicas(stack: Stack, service: str) -> list[str]:
    return containers(
        f"label=com.docker.compose.project={stack.project}", f"label=com.docker.compose.service={service}"
    )


def stored_by(container: str, port: int, via: str) -> float:
    """msgsuite_messages_stored_total{via} of one replica, read inside its container."""
    script = f"import urllib.request; print(urllib.request.urlopen('http://localhost:{port}/metrics').read().decode())"
    text = subprocess.run(
        ["docker", "exec", container, "python", "-c", script], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(rf'^msgsuite_messages_stored_total\{{via="{via}"\}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@pytest.mark.slow
def test_scaled_replicas_keep_every_guarantee(scaled: Stack) -> None:
    for service, count in SCALE.items():
        assert len(replicas(scaled, service)) == count, f"{service}: not {count} replicas"
    tag = scaled.env["MSGSUITE_VERSION"]
    hub_ips = [container_ip(hub, scaled.network) for hub in replicas(scaled, "websocket-hub")]
    before = scaled.total()
    listeners = [ContainerListener(scaled.network, tag, ip, "websocket-hub", after=before) for ip in hub_ips]
    try:
        outcomes = [stream.finish() for stream in start_streams(scaled, CLIENTS, *STREAM)]
        for outcome in outcomes:
            assert outcome.returncode == 0, f"{outcome.client} failed:\n{outcome.stderr[-2000:]}"
            assert len(outcome.stored) == COUNT
        expected = before + len(CLIENTS) * COUNT
        wait_for(lambda: scaled.total() >= expected, timeout=120, what=f"{expected} messages stored")
        rows = scaled.query("SELECT id, idempotency_key, message FROM messages ORDER BY id")
        assert_reported_stored_once(rows, outcomes)
        total = assert_ids_gap_free(scaled)
        assert total == expected
        heard = [listener.finish(total) for listener in listeners]
    finally:
        for listener in listeners:
            listener.stop()
    assert_each_heard_all(hub_ips, heard, before, total)
    assert_log_complete(scaled)
    # Every replica took part: the REST connections alternate between both
    # servers, and the broker hands deliveries to every consumer in turn.
    rest = [stored_by(c, 8000, "REST") for c in replicas(scaled, "rest-server")]
    assert all(n > 0 for n in rest), f"REST messages per replica: {rest}"
    amqp = [stored_by(c, 9464, "RabbitMQ") for c in replicas(scaled, "rabbitmq-server")]
    assert sum(n > 0 for n in amqp) >= 2, f"AMQP messages per consumer: {amqp}"
