"""What the metrics cost: the same throughput runs with METRICS=on and METRICS=off, interleaved in one run."""

from __future__ import annotations

import statistics
from collections.abc import Callable

from harness.stack import Stack
from msgsuite.client import Sender

from . import measure
from .report import Row

# Every service that updates metrics on the path of a message.
INSTRUMENTED = ("rest-server", "grpc-server", "rabbitmq-server", "websocket-hub", "websocket-client")


def restart_with_metrics(stack: Stack, mode: str) -> None:
    stack.env["METRICS"] = mode
    stack.compose("up", "-d", "--no-deps", "--force-recreate", *INSTRUMENTED)
    stack.wait_healthy(list(INSTRUMENTED))
    stack.forget_ports()


def compare(
    stack: Stack,
    make_target: Callable[[], measure.Target],
    make_senders: Callable[[], dict[str, Callable[[], Sender]]],
    rounds: int,
    messages: int,
    concurrency: int,
) -> list[Row]:
    """rounds x (on, off) throughput runs per protocol; the medians and the median paired ratio, as rows.

    The order alternates (on-off, off-on, ...) so that a machine that grows
    busier or quieter during the run weighs on both alike, and each pair of
    runs of one round gives a ratio of its own: the median of those ratios is
    the figure, less noisy than a ratio of medians on a shared machine. After
    each restart a run of a quarter of the messages warms the services up
    (connections, pools, caches) and is not counted.
    """
    rates: dict[tuple[str, str], list[float]] = {}
    for round_number in range(rounds):
        for mode in ("on", "off") if round_number % 2 == 0 else ("off", "on"):
            restart_with_metrics(stack, mode)
            target = make_target()
            for protocol, make_sender in make_senders().items():
                measure.throughput(target, make_sender, concurrency, max(messages // 4, concurrency), 1)
                rate = measure.throughput(target, make_sender, concurrency, messages, 1)
                rates.setdefault((mode, protocol), []).append(rate)
    restart_with_metrics(stack, "on")
    rows = []
    for protocol in sorted({protocol for _, protocol in rates}):
        on, off = rates["on", protocol], rates["off", protocol]
        paired = statistics.median(a / b for a, b in zip(on, off, strict=True))
        rows.append(
            Row(
                f"{protocol}, metrics on (median of {rounds})",
                concurrency,
                1,
                statistics.median(on),
                statistics.median(off),
                note=(
                    f"ratio: to metrics off (median {statistics.median(off):,.0f}); "
                    f"median of the {rounds} paired on/off ratios {paired:.0%}; "
                    f"spread on {min(on):,.0f}-{max(on):,.0f}, off {min(off):,.0f}-{max(off):,.0f}"
                ),
            )
        )
    return rows
