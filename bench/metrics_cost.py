"""What the metrics cost: the same throughput runs with METRICS=on and METRICS=off, interleaved in one run."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable

import prometheus_client

from harness.stack import Stack
from msgsuite.client import Sender
from msgsuite.metrics import LATENCY_BUCKETS, SIZE_BUCKETS

from . import measure
from .report import Row

# Every service that updates metrics on the path of a message.
INSTRUMENTED = ("rest-server", "grpc-server", "rabbitmq-server", "websocket-hub", "websocket-client")


def restart_with_metrics(stack: Stack, mode: str) -> None:
    stack.env["METRICS"] = mode
    stack.compose("up", "-d", "--no-deps", "--force-recreate", *INSTRUMENTED)
    stack.wait_healthy(list(INSTRUMENTED))
    stack.forget_ports()


# The container's CPU time in its cgroup: cgroup v2 (usage_usec), else v1 (nanoseconds).
_CPU_USAGE = (
    "if [ -r /sys/fs/cgroup/cpu.stat ]; then sed -n 's/^usage_usec //p' /sys/fs/cgroup/cpu.stat;"
    " else echo $(($(cat /sys/fs/cgroup/cpuacct/cpuacct.usage) / 1000)); fi"
)


def cpu_seconds(stack: Stack) -> float:
    """CPU time used so far by the instrumented containers, together (read inside each with `cat`)."""
    total = 0.0
    for row in stack.containers():
        if row["Service"] in INSTRUMENTED:
            read = subprocess.run(
                ["docker", "exec", str(row["ID"]), "sh", "-c", _CPU_USAGE],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            )
            total += int(read.stdout.strip()) / 1e6
    return total


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
    cpu: dict[tuple[str, str], list[float]] = {}  # microseconds of the instrumented services per message
    for round_number in range(rounds):
        for mode in ("on", "off") if round_number % 2 == 0 else ("off", "on"):
            restart_with_metrics(stack, mode)
            target = make_target()
            for protocol, make_sender in make_senders().items():
                measure.throughput(target, make_sender, concurrency, max(messages // 4, concurrency), 1)
                used_before = cpu_seconds(stack)
                rate = measure.throughput(target, make_sender, concurrency, messages, 1)
                cpu.setdefault((mode, protocol), []).append((cpu_seconds(stack) - used_before) / messages * 1e6)
                rates.setdefault((mode, protocol), []).append(rate)
    restart_with_metrics(stack, "on")
    rows = []
    for protocol in sorted({protocol for _, protocol in rates}):
        rows.append(
            _row(f"{protocol}, msg/s with metrics on", rates["on", protocol], rates["off", protocol], concurrency)
        )
        rows.append(
            _row(
                f"{protocol}, CPU µs per message with metrics on",
                cpu["on", protocol],
                cpu["off", protocol],
                concurrency,
            )
        )
    cost = instrumentation_microseconds()
    off_cpu = statistics.median(value for (mode, _), values in cpu.items() if mode == "off" for value in values)
    rows.append(
        Row(
            "metric updates of one message, CPU µs (in-process)",
            "-",
            1,
            cost,
            off_cpu,
            note=f"ratio: to the CPU per message with metrics off (median {off_cpu:,.0f} µs over every protocol)",
        )
    )
    return rows


def _row(what: str, on: list[float], off: list[float], concurrency: int) -> Row:
    paired = statistics.median(a / b for a, b in zip(on, off, strict=True))
    return Row(
        f"{what} (median of {len(on)})",
        concurrency,
        1,
        statistics.median(on),
        statistics.median(off),
        note=(
            f"ratio: to metrics off (median {statistics.median(off):,.0f}); "
            f"median of the {len(on)} paired on/off ratios {paired:.0%}; "
            f"spread on {min(on):,.0f}-{max(on):,.0f}, off {min(off):,.0f}-{max(off):,.0f}"
        ),
    )


def instrumentation_microseconds(repeats: int = 20_000) -> float:
    """CPU time of the metric updates one message causes, measured in this process.

    The same kinds of metric, with the same labels and buckets, as the services
    update for one message stored alone (a group of one, the most updates per
    message): the store's two histograms and counter, the consumer's delivery
    counter, the hub's delay histogram, head gauge and frames counter, the
    client's gauge and counter. An upper bound of what metrics add to a message.
    """
    registry = prometheus_client.CollectorRegistry()
    counter = prometheus_client.Counter("c", "c", ["via"], registry=registry)
    plain = prometheus_client.Counter("p", "p", registry=registry)
    seconds = prometheus_client.Histogram("s", "s", ["via"], buckets=LATENCY_BUCKETS, registry=registry)
    sizes = prometheus_client.Histogram("g", "g", ["via"], buckets=SIZE_BUCKETS, registry=registry)
    delay = prometheus_client.Histogram("d", "d", buckets=LATENCY_BUCKETS, registry=registry)
    gauge = prometheus_client.Gauge("h", "h", registry=registry)
    started = time.process_time()
    for i in range(repeats):
        seconds.labels("REST").observe(0.002)  # store: transaction time, group size, stored
        sizes.labels("REST").observe(1)
        counter.labels("REST").inc(1)
        plain.inc()  # consumer: delivery received
        delay.observe(0.004)  # hub: delay, head, frames sent
        gauge.set(i)
        plain.inc(1)
        gauge.set(i)  # client: last id, lines printed
        plain.inc()
    return (time.process_time() - started) / repeats * 1e6
