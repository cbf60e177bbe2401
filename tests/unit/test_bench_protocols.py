"""The protocols section's arithmetic and its generators' one JSON line (bench/report.py, bench/generators.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench import generators
from bench.report import ProtocolRow, Results, Spread


def row(concurrency: int, batch: int, path: float, noop: float, database: float) -> ProtocolRow:
    return ProtocolRow(
        "REST", concurrency, batch, 100, Spread((path,)), Spread((noop,)), Spread((database,)), Spread((0.1,)), {}
    )


def test_spread_is_the_median_with_the_lowest_and_highest() -> None:
    spread = Spread((900.0, 1_200.0, 1_000.0, 1_100.0, 950.0))
    assert spread.median == 1_000
    assert str(spread) == "1,000 (900–1,200)"


def test_the_serial_bound_is_the_sum_of_both_round_trips_at_concurrency_1_only() -> None:
    serial = row(1, 1, path=400, noop=1_000, database=1_500)
    assert serial.serial_bound == pytest.approx(600)  # 1 / (1/1500 + 1/1000)
    assert serial.ratios() == ("40%", "27%", "67%")
    assert row(16, 1, 400, 1_000, 1_500).serial_bound is None
    assert row(1, 100, 400, 1_000, 1_500).serial_bound is None
    amqp = ProtocolRow(
        "RabbitMQ", 1, 1, 100, Spread((1.0,)), Spread((1.0,)), Spread((1.0,)), Spread((0.1,)), {}, waits_for_store=False
    )
    assert amqp.serial_bound is None  # the broker's confirm comes before the store: not serial


def test_the_table_names_the_errors_by_kind() -> None:
    results = Results()
    results.protocols.append(
        ProtocolRow(
            "gRPC",
            16,
            1,
            100,
            Spread((1.0,)),
            Spread((2.0,)),
            Spread((4.0,)),
            Spread((0.5, 0.7)),
            {"noop: UNAVAILABLE": 3},
        )
    )
    line = results.protocols_table().splitlines()[-1]
    assert (
        "| gRPC | 16 | 1 |" in line
        and "| 50% | 25% |" in line
        and "60% (max 70%)" in line
        and "noop: UNAVAILABLE 3" in line
    )


def test_a_generator_run_is_read_from_its_last_line(monkeypatch: pytest.MonkeyPatch) -> None:
    line = {
        "completed": 200,
        "requests": 2,
        "batch": 100,
        "errors": {"http 429": 1},
        "elapsed_seconds": 0.5,
        "messages_per_second": 400.0,
        "p50_ms": 1.5,
        "p99_ms": 9.0,
        "cpu_seconds": 0.2,
        "started_at_ms": 1_000_000.0,
    }
    script = f"print('noise'); print({json.dumps(json.dumps(line))})"
    monkeypatch.setattr(
        generators,
        "start",
        lambda *_args, **_kw: subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ),
    )
    run = generators.run("rest.js", {})
    assert (run.completed, run.errors, run.rate) == (200, {"http 429": 1}, 400.0)
    assert run.cpu_share == pytest.approx(0.4)
    assert run.started_at == 1_000 and run.finished_at == 1_000.5


def test_a_generator_that_fails_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        generators,
        "start",
        lambda *_args, **_kw: subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.exit('connect ECONNREFUSED')"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
    )
    with pytest.raises(RuntimeError, match="ECONNREFUSED"):
        generators.run("grpc.js", {})


def test_done_counts_from_the_generators_last_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A condition that held before the last answer (an AMQP queue empty between publishes) does not end it."""
    line = {
        "completed": 1,
        "requests": 1,
        "batch": 1,
        "errors": {},
        "elapsed_seconds": 0.2,
        "messages_per_second": 5.0,
        "p50_ms": 1.0,
        "p99_ms": 1.0,
        "cpu_seconds": 0.01,
    }
    script = (
        "import json, sys, time; started = time.time(); time.sleep(0.2); "
        f"line = json.loads({json.dumps(json.dumps(line))}); line['started_at_ms'] = started * 1000; "
        "print(json.dumps(line))"
    )
    monkeypatch.setattr(
        generators,
        "start",
        lambda *_args, **_kw: subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ),
    )
    run, done_at = generators.run_until("amqp.js", {}, lambda: True)
    assert done_at >= run.finished_at
