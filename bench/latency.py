"""Send-to-notification latency at fixed offered rates, sender and listener in one Node process
(bench/load/latency.js): open loop, each message timed from its scheduled send to its notification."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
from collections.abc import Callable

from harness.stack import Stack

from .generators import LOAD
from .measure import Latency
from .report import Spread

PROTOCOLS = {
    "REST": ("rest", "rest-server", 8000),
    "gRPC": ("grpc", "grpc-server", 50051),
    "RabbitMQ": ("amqp", "rabbitmq", 5672),
}


def check_node() -> None:
    if shutil.which("node") is None or not (LOAD / "node_modules" / "ws").is_dir():
        raise RuntimeError(f"latency needs Node.js and npm ci --prefix {LOAD} (scripts/bench.sh does it)")


def one_run(stack: Stack, protocol: str, rate: int, seconds: float, after: int) -> dict[str, float]:
    """latency.js's line: p50_ms, p95_ms, p99_ms, achieved, arrived, sent, cpu_share."""
    name, service, port = PROTOCOLS[protocol]
    args = ["node", str(LOAD / "latency.js"), "--protocol", name, "--target", f"{stack.address(service)}:{port}"]
    args += ["--hub", f"ws://{stack.address('websocket-hub')}:8765/notifications", "--after", str(after)]
    args += ["--rate", str(rate), "--seconds", str(seconds)]
    env = {**os.environ, "AMQP_PASSWORD": stack.secret("amqp_publisher_password")}
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=seconds + 120, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"latency.js failed ({done.returncode}):\n{done.stderr[-2000:]}")
    line: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
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
