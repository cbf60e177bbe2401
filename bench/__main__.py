"""python -m bench: measures the suite end to end and writes results/bench-<time>.md and .png.

    python -m bench                 # full run on a stack of its own (build, up, measure, down -v)
    python -m bench --size quick    # smaller numbers, a couple of minutes
    python -m bench --project NAME  # measure a stack already running under that compose project

Run it from the repository root with the test environment (.venv-test, made by
scripts/test.sh) and the generated gRPC code on the path: see the README.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import requests

from grpc_client.sender import GrpcSender
from harness.stack import Stack
from msgsuite.client import Sender
from msgsuite.settings import BrokerSettings
from rabbitmq_client.sender import AmqpSender
from rest_client.sender import RestSender

from . import dashboard, fan_out, generators, latency, measure, metrics_cost, protocols, scaling
from .report import Results, Row

BENCH_LISTENERS_PER_ADDRESS = 5_000  # the hub's default (1,000) is just the fan-out section's count
SERVICES = ["database", "rabbitmq", "grpc-server", "rest-server", "rabbitmq-server", "websocket-hub"]


@dataclass(frozen=True)
class Size:
    single: int
    batched: int
    concurrencies: tuple[int, ...]
    rates: tuple[int, ...]
    seconds: float
    listeners: tuple[int, ...]
    fan_out: int  # notifications received per fan-out run, all listeners together
    preload: int
    scaling: int  # messages per replica-scaling run
    openings: tuple[int, ...] = (100_000, 1_000_000)  # messages stored when the dashboard's opening is timed
    node_listeners: int = 1_000  # fan-out section: listeners held by the Node process
    node_rates: tuple[int, ...] = (10, 25, 50, 75, 100, 150, 200)  # its ladder of offered rates, msg/s
    node_seconds: float = 10.0  # sending time at each rate
    node_runs: int = 5  # runs per rate (the run of median p99 is reported)
    protocols: protocols.Counts = protocols.FULL  # path against its ceilings


SIZES = {
    "tiny": Size(
        40, 400, (2,), (20,), 1.0, (1, 3), 150, 1_000, 200, (1_000,), protocols=protocols.Counts(1, 160, 40, 8)
    ),
    "quick": Size(
        600,
        6_000,
        (1, 8),
        (50, 200),
        4.0,
        (1, 10, 100),
        50_000,
        100_000,
        2_000,
        (100_000,),
        protocols=protocols.Counts(5, 2_000, 400, 120),
    ),
    "full": Size(2_000, 20_000, (1, 4, 16), (50, 200, 400), 10.0, (1, 10, 100), 200_000, 1_000_000, 6_000),
}
# The fan-out section's ladder, shorter at tiny and quick.
SIZES["tiny"] = replace(SIZES["tiny"], node_listeners=20, node_rates=(10, 20), node_seconds=2.0, node_runs=1)
SIZES["quick"] = replace(SIZES["quick"], node_seconds=5.0, node_runs=5)


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def senders(stack: Stack) -> dict[str, Callable[[], Sender]]:
    broker = BrokerSettings(
        host="127.0.0.1",
        port=stack.port("rabbitmq", 5672),
        user="suite",
        password=stack.secret("rabbitmq_password"),
        exchange="messages",
        routing_key="messages",
        queue="messages",
        dead_letter_exchange="messages.dead-letter",
    )
    rest_url, grpc_target = stack.rest_url, stack.grpc_target
    return {
        "REST": lambda: RestSender(rest_url, 30),
        "GRPC": lambda: GrpcSender(grpc_target, 30),
        "RabbitMQ": lambda: AmqpSender(broker),
    }


def median_of(runs: int, measurement: Callable[[], float]) -> float:
    """This machine is noisy: each figure is the median of a few runs."""
    return statistics.median(measurement() for _ in range(runs))


def wait_for_hub(stack: Stack, target: measure.Target) -> None:
    total = target.total()
    url = stack.hub_url.replace("ws://", "http://") + "/health"
    while int(requests.get(url, timeout=5).json().get("head") or 0) < total:
        time.sleep(1)


def database_target(stack: Stack) -> measure.Target:
    return measure.Target(
        stack.hub_url,
        {
            "host": "127.0.0.1",
            "port": stack.port("database", 5432),
            "dbname": "suite",
            "user": "suite",
            "password": stack.secret("postgres_password"),
        },
    )


def run_scaling(stack: Stack, size: Size, results: Results) -> None:
    """The sequencer alone at group sizes 1..1000, then 1, 2 and 3 replicas of every server at one load."""
    target = database_target(stack)
    progress("sequencer: the store statement alone at group sizes 1, 10, 100, 1000")
    results.rows.extend(scaling.sequencer(target, (1, 10, 100, 1000), size.single))
    progress("replica scaling: 1, 2, 3 replicas of each server, clients inside the compose network")
    results.rows.extend(scaling.replica_scaling(stack, target, SERVICES, (1, 2, 3), size.scaling, 16, median_of))


def run_metrics_cost(stack: Stack, size: Size, results: Results) -> None:
    """Metrics on against off, interleaved, 6 rounds: throughput per protocol at concurrency 8."""
    progress("metrics cost: 6 rounds of metrics on and off, throughput of each protocol")
    results.rows.extend(
        metrics_cost.compare(stack, lambda: database_target(stack), lambda: senders(stack), 6, size.single, 8)
    )


def run_dashboard(stack: Stack, size: Size, results: Results) -> None:
    """The dashboard's opening in headless Chromium, the table grown to each of size.openings (median of 3)."""
    target = database_target(stack)
    progress("dashboard: building the browser image (tests/browser)")
    dashboard.build_browser()
    for stored in size.openings:
        if stored > target.total():
            progress(f"dashboard: adding {stored - target.total():,} messages")
            measure.preload(target, stored - target.total())
            wait_for_hub(stack, target)
        newest = target.total()
        progress(f"dashboard: opening the page at {newest:,} stored")
        results.openings.append((newest, median_of(3, lambda n=newest: dashboard.newest_shown_ms(stack, n))))


def run_protocols(stack: Stack, size: Size, results: Results) -> None:
    """Each protocol's path against its no-op server and the database, the same Node generator for both."""
    counts = size.protocols
    if stack.env.get("AUTH", "off") != "off":
        raise SystemExit("--only protocols measures with authentication off; the generators send no tokens")
    results.protocol_conditions = (
        f"Conditions: metrics {stack.env.get('METRICS', 'on')}, authentication off, TLS {stack.env.get('TLS', 'off')}, "
        f"REST and gRPC rate limit {stack.env.get('RATE_LIMIT_PER_SECOND', '5000')} requests/s per address, "
        f"RabbitMQ consumer prefetch {stack.env.get('RABBITMQ_PREFETCH', '500')}; {counts.runs} runs of "
        f"{counts.single:,} single messages at concurrency 16, {counts.serial:,} at concurrency 1 and "
        f"{counts.batches} batches of 100 at concurrency {protocols.BATCH_CONCURRENCY}; every service, the "
        "benchmark and the generators on this machine."
    )
    progress("protocols: starting the no-op servers and warming up")
    results.protocols.extend(protocols.compare(stack, database_target(stack), counts, progress))


def run_latency(stack: Stack, size: Size, results: Results) -> None:
    """Send-to-notification latency at 200 and 800 msg/s per protocol, Node sender and listener (bench/load)."""
    generators.check_node(generators.LOAD, "--only latency")
    runs = 1 if size is SIZES["tiny"] else 5
    rates = (20,) if size is SIZES["tiny"] else (200, 800)
    progress(f"latency: {runs} runs of {size.seconds:.0f} s at {rates} msg/s per protocol, interleaved")
    target = database_target(stack)
    results.latencies, results.latency_p99_runs = latency.compare(
        stack, target.total, rates, size.seconds, runs, progress
    )


def run_fan_out(stack: Stack, size: Size, results: Results, route: str = "container") -> None:
    """Listeners in a Node process (bench/fanout), a ladder of offered rates through REST."""
    generators.check_node(fan_out.FANOUT, "--only fan-out")
    progress("fan-out: warming up REST with 300 messages")
    target = database_target(stack)
    rest = senders(stack)["REST"]
    measure.throughput(target, rest, 4, 300, 1)
    results.fan_out_runs = size.node_runs
    results.fan_out_route = route
    results.fan_out = fan_out.ladder(
        stack, target, rest, size.node_listeners, size.node_rates, size.node_seconds, size.node_runs, route, progress
    )


def run(stack: Stack, size: Size, results: Results) -> None:
    """Latency and the flat-cost baseline first, while the table is small; then throughput, fan-out,
    and last the flat cost again once size.preload more messages are stored."""
    target = database_target(stack)
    protocols = senders(stack)
    flat_concurrency = size.concurrencies[-1]

    def flat_cost() -> tuple[int, float, float]:
        stored = target.total()
        progress(f"flat cost: measuring at {stored:,} stored")
        return (
            stored,
            median_of(3, lambda: measure.ceiling(target, flat_concurrency, size.single, 1)),
            median_of(3, lambda: measure.throughput(target, protocols["REST"], flat_concurrency, size.single, 1)),
        )

    progress("warming up: 300 messages through each protocol, then 10 s for the stack to settle")
    for make_sender in protocols.values():
        measure.throughput(target, make_sender, 4, 300, 1)
    time.sleep(10)

    baseline = flat_cost()

    for name, make_sender in protocols.items():
        results.latencies[name] = []
        for rate in size.rates:
            progress(f"{name}: latency at {rate} msg/s offered")
            results.latencies[name].append(measure.latency(target, make_sender, rate, size.seconds))

    for batch, n in ((1, size.single), (100, size.batched)):
        for concurrency in size.concurrencies:
            progress(f"ceiling: store transaction, concurrency {concurrency}, batch {batch}")
            ceiling = median_of(3, lambda c=concurrency, n=n, b=batch: measure.ceiling(target, c, n, b))
            results.rows.append(Row("ceiling (PostgreSQL direct)", concurrency, batch, ceiling))
            for name, make_sender in protocols.items():
                progress(f"{name}: throughput, concurrency {concurrency}, batch {batch}")
                rate = median_of(
                    3, lambda s=make_sender, c=concurrency, n=n, b=batch: measure.throughput(target, s, c, n, b)
                )
                results.rows.append(Row(name, concurrency, batch, rate, ceiling))

    for listeners in size.listeners:
        progress(f"fan-out to {listeners} listeners")
        # The frames all arrive in this one Python process: a fixed total keeps
        # it from being the slow listener that the hub rightly cuts off.
        per_listener = min(10_000, size.fan_out // listeners)
        rate = median_of(3, lambda n=listeners, each=per_listener: measure.fan_out(target, n, each))
        results.rows.append(
            Row(
                f"fan-out to {listeners} listeners",
                2,
                100,
                rate,
                note="notifications delivered per second, all listeners together",
            )
        )

    progress(f"flat cost: adding {size.preload:,} messages")
    measure.preload(target, size.preload)
    wait_for_hub(stack, target)
    loaded = flat_cost()
    for index, label in ((1, "ceiling"), (2, "REST")):
        results.rows.append(Row(f"flat cost: {label} at {baseline[0]:,} stored", flat_concurrency, 1, baseline[index]))
        results.rows.append(
            Row(
                f"flat cost: {label} at {loaded[0]:,} stored",
                flat_concurrency,
                1,
                loaded[index],
                baseline[index],
                note="ratio: to the same at the start",
            )
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--project", help="measure the stack running under this compose project (no up/down)")
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument(
        "--only",
        choices=["scaling", "metrics-cost", "dashboard", "fan-out", "protocols", "latency"],
        help="scaling: the sequencer and replica-scaling runs (README, Scaling); "
        "metrics-cost: throughput with metrics on and off (README, Performance); "
        "dashboard: the dashboard's opening time in headless Chromium at each size of the table; "
        "fan-out: 1,000 listeners in a Node process (bench/fanout) at a ladder of offered rates; "
        "protocols: each protocol against a no-op server and the database, driven by Node generators (bench/load)",
    )
    parser.add_argument(
        "--hub-route",
        choices=["container", "published"],
        default="container",
        help="fan-out: Node reaches the hub at its container address (default) or at the published host port, "
        "through Docker's userland proxy",
    )
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    # The listener thread shares this process with the sending threads; a short
    # switch interval keeps it from waiting 5 ms for the GIL and adding that to
    # every latency it measures.
    sys.setswitchinterval(0.0005)
    stack = Stack(args.project or f"msgsuite-bench-{uuid.uuid4().hex[:6]}")
    # Every listener of the benchmark connects from one address (the host, through Docker's port mapping).
    stack.env["HUB_MAX_LISTENERS_PER_ADDRESS"] = str(BENCH_LISTENERS_PER_ADDRESS)
    results = Results()
    try:
        if not args.project:
            progress(f"building and starting compose project {stack.project}")
            stack.compose("build", timeout=1800)
            stack.up(*SERVICES)
        sections = {
            "scaling": run_scaling,
            "metrics-cost": run_metrics_cost,
            "dashboard": run_dashboard,
            "fan-out": functools.partial(run_fan_out, route=args.hub_route),
            "protocols": run_protocols,
            "latency": run_latency,
        }
        sections.get(args.only or "", run)(stack, size, results)
    except BaseException:
        progress("failed; the figures measured so far:")
        print(
            results.table(),
            results.latency_table(),
            results.fan_out_table(),
            results.protocols_table(),
            sep="\n\n",
            file=sys.stderr,
        )
        raise
    finally:
        if not args.project:
            progress(f"tearing down {stack.project}")
            stack.down(volumes=True)
    print(results.table())
    print()
    print(results.latency_table())
    if results.openings:
        print()
        print(results.openings_table())
    if results.fan_out:
        print()
        print(results.fan_out_table())
    if results.protocols:
        print()
        print(results.protocol_conditions)
        print(results.protocols_table())
    report, plot = results.write(args.results, args.size)
    print(f"\nreport: {report}\nplot:   {plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
