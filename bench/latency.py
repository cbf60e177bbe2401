"""Send-to-notification latency at fixed offered rates, sender and listener in one Node process
(bench/load/latency.js): open loop, each message timed from its scheduled send to its notification."""

from __future__ import annotations

import statistics
from collections.abc import Callable

from harness.stack import Stack

from . import generators
from .measure import Latency
from .report import Spread

PROTOCOLS = {
    "REST": ("rest", "rest-server", 8000),
    "gRPC": ("grpc", "grpc-server", 50051),
    "RabbitMQ": ("amqp", "rabbitmq", 5672),
}


def one_run(stack: Stack, protocol: str, rate: int, seconds: float, after: int) -> dict[str, float]:
    """latency.js's line: p50_ms, p95_ms, p99_ms, achieved, arrived, sent, cpu_share."""
    name, service, port = PROTOCOLS[protocol]
    options: dict[str, object] = {
        "protocol": name,
        "target": f"{stack.address(service)}:{port}",
        "hub": f"ws://{stack.address('websocket-hub')}:8765/notifications",
        "after": after,
        "rate": rate,
        "seconds": seconds,
    }
    process = generators.start("latency.js", options, {"AMQP_PASSWORD": stack.secret("amqp_publisher_password")})
    line: dict[str, float] = generators.json_line(process, timeout=seconds + 120)
    if line["arrived"] != line["sent"]:
        raise RuntimeError(f"{protocol} at {rate} msg/s: {line['arrived']} of {line['sent']} notifications arrived")
    return line


def compare(
    stack: Stack,
    total: Callable[[], int],
    rates: tuple[int, ...],
    seconds: float,
    runs: int,
    progress: Callable[[str], None],
) -> tuple[dict[str, list[Latency]], dict[tuple[str, int], Spread]]:
    """Each protocol at each rate, `runs` times in interleaved order: the median of each percentile, and the p99s."""
    found: dict[tuple[str, int], list[dict[str, float]]] = {}
    for run in range(runs):
        for rate in rates:
            for protocol in PROTOCOLS:
                line = one_run(stack, protocol, rate, seconds, total())
                found.setdefault((protocol, rate), []).append(line)
                progress(
                    f"latency run {run + 1}/{runs}: {protocol} at {rate} msg/s: p50 {line['p50_ms']:.1f} ms, "
                    f"p99 {line['p99_ms']:.1f} ms, generator CPU {line['cpu_share']:.0%}"
                )
    medians: dict[str, list[Latency]] = {}
    spreads: dict[tuple[str, int], Spread] = {}
    for (protocol, rate), lines in found.items():

        def median(key: str, lines: list[dict[str, float]] = lines) -> float:
            return statistics.median(line[key] for line in lines)

        medians.setdefault(protocol, []).append(
            Latency(rate, median("p50_ms"), median("p95_ms"), median("p99_ms"), median("achieved"))
        )
        spreads[(protocol, rate)] = Spread(tuple(line["p99_ms"] for line in lines))
    return medians, spreads
