"""Scaling: the sequencer alone at growing group sizes, and 1..3 replicas of every server at one offered load.

Every message takes the one counter row, so the suite's write rate is
bounded by how fast PostgreSQL commits groups on that row, whatever the
number of replicas. The sequencer run measures that bound directly; the
replica run shows what adding server replicas on this host changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from harness.stack import Stack

from . import measure
from .listener import TimingListener
from .report import Row

CLIENT_OF = {"REST": "rest-client", "GRPC": "grpc-client", "RabbitMQ": "rabbitmq-client"}
SCALED = ("rest-server", "grpc-server", "rabbitmq-server")


def sequencer(target: measure.Target, groups: Sequence[int], messages: int) -> list[Row]:
    """The store statement alone, one transaction at a time, `group` messages per transaction."""
    rows = []
    for group in groups:
        rate = measure.ceiling(target, 1, max(messages, group * 20), group)
        rows.append(Row(f"sequencer: group of {group}", 1, group, rate, note=f"{rate / group:,.0f} transactions/s"))
    return rows


def set_replicas(stack: Stack, services: Sequence[str], replicas: int) -> None:
    """Scales the servers in place (host ports are ephemeral in bench stacks) and waits until every one is healthy."""
    scale = [arg for service in SCALED for arg in ("--scale", f"{service}={replicas}")]
    stack.compose("up", "-d", "--no-recreate", *scale, *services)
    deadline = time.monotonic() + 180
    while True:
        rows = [row for row in stack.containers() if row["Service"] in SCALED]
        healthy = [row for row in rows if row.get("Health") == "healthy"]
        if len(healthy) == len(SCALED) * replicas == len(rows):
            stack.forget_ports()
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{replicas} replicas of {SCALED} not healthy: {rows}")
        time.sleep(1)


def in_network_rate(stack: Stack, target: measure.Target, protocol: str, messages: int, concurrency: int) -> float:
    """The protocol's client run inside the compose network (so it sees every replica), timed at a listener
    from the first notification of the run to the last (container start-up is not counted)."""
    before = target.total()
    listener = TimingListener(target.hub_url, after=before)
    try:
        result = stack.run_client(
            CLIENT_OF[protocol], "--count", str(messages), "--concurrency", str(concurrency), "--retries", "20"
        )
        if result.returncode != 0:
            raise RuntimeError(f"{protocol} client failed: {result.stderr[-1000:]}")
        last = listener.wait_until(before + messages, timeout=300)
        first = listener.arrived_by_id[before + 1]
    finally:
        listener.close()
    return (messages - 1) / (last - first)


def replica_scaling(
    stack: Stack,
    target: measure.Target,
    services: Sequence[str],
    replicas: Sequence[int],
    messages: int,
    concurrency: int,
    median_of: Callable[[int, Callable[[], float]], float],
) -> list[Row]:
    rows = []
    baseline: dict[str, float] = {}
    for count in replicas:
        set_replicas(stack, services, count)
        for protocol in CLIENT_OF:
            rate = median_of(3, lambda p=protocol: in_network_rate(stack, target, p, messages, concurrency))
            baseline.setdefault(protocol, rate)
            rows.append(
                Row(
                    f"{protocol} with {count} replica{'s' if count > 1 else ''} of each server",
                    concurrency,
                    1,
                    rate,
                    baseline[protocol],
                    note="ratio: to 1 replica",
                )
            )
    set_replicas(stack, services, 1)
    return rows
