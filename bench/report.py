"""The results: a table on stdout, a Markdown report and a PNG plot."""

from __future__ import annotations

import platform
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .fan_out import KEEPS_UP_P99_MS, FanOutRun
from .measure import Latency


@dataclass
class Row:
    what: str
    concurrency: int | str
    batch: int | str
    rate: float
    ceiling: float | None = None
    note: str = ""

    @property
    def ratio(self) -> str:
        return f"{self.rate / self.ceiling:.0%}" if self.ceiling else ""


@dataclass(frozen=True)
class Spread:
    """The runs of one figure: shown as the median and, in brackets, the lowest and highest."""

    runs: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def __str__(self) -> str:
        return f"{self.median:,.0f} ({min(self.runs):,.0f}–{max(self.runs):,.0f})"


@dataclass(frozen=True)
class ProtocolRow:
    """One protocol at one load: its path and the two ceilings (python -m bench --only protocols)."""

    protocol: str
    concurrency: int
    batch: int
    messages: int  # per run
    path: Spread
    noop: Spread
    database: Spread
    generator_cpu: Spread  # the load generator's share of one core, every run of path and no-op
    errors: dict[str, int]
    waits_for_store: bool = True  # the sender's answer comes after the store (not AMQP: the broker confirms)

    @property
    def serial_bound(self) -> float | None:
        """At concurrency 1 every message pays the database's round trip and the server's in turn."""
        if self.concurrency != 1 or self.batch != 1 or not self.waits_for_store:
            return None
        return 1 / (1 / self.database.median + 1 / self.noop.median)

    def ratios(self) -> tuple[str, str, str]:
        path = self.path.median
        bound = self.serial_bound
        return (
            f"{path / self.noop.median:.0%}",
            f"{path / self.database.median:.0%}",
            f"{path / bound:.0%}" if bound else "",
        )


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    latencies: dict[str, list[Latency]] = field(default_factory=dict)
    latency_p99_runs: dict[tuple[str, int], Spread] = field(default_factory=dict)  # --only latency: every run's p99
    openings: list[tuple[int, float]] = field(default_factory=list)  # (messages stored, ms to the newest shown)
    protocols: list[ProtocolRow] = field(default_factory=list)
    protocol_conditions: str = ""  # the stack's settings that weigh on those figures
    fan_out: list[FanOutRun] = field(default_factory=list)
    fan_out_runs: int = 1  # runs per rate; each row is the run of median p99
    fan_out_route: str = "container"  # how the Node listeners reached the hub (bench.fan_out.hub_url)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    def table(self) -> str:
        lines = [
            "| measurement | concurrency | batch | msg/s | ratio to ceiling | note |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for row in self.rows:
            lines.append(
                f"| {row.what} | {row.concurrency} | {row.batch} | {row.rate:,.0f} | {row.ratio} | {row.note} |"
            )
        return "\n".join(lines)

    def latency_table(self) -> str:
        lines = [
            "| protocol | offered msg/s | achieved msg/s | p50 ms | p95 ms | p99 ms | p99 of each run |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for protocol, points in self.latencies.items():
            for p in points:
                runs = self.latency_p99_runs.get((protocol, p.offered))
                spread = f"{min(runs.runs):.1f}–{max(runs.runs):.1f} ({len(runs.runs)} runs)" if runs else ""
                lines.append(
                    f"| {protocol} | {p.offered} | {p.achieved:,.0f} | {p.p50:.1f} | {p.p95:.1f} | {p.p99:.1f} "
                    f"| {spread} |"
                )
        return "\n".join(lines)

    def protocols_table(self) -> str:
        lines = [
            "| protocol | concurrency | batch | path msg/s | no-op msg/s | database msg/s | serial bound msg/s "
            "| path / no-op | path / database | path / serial bound | generator CPU | errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for row in self.protocols:
            to_noop, to_database, to_bound = row.ratios()
            cpu = row.generator_cpu
            bound = f"{row.serial_bound:,.0f}" if row.serial_bound else ""
            errors = ", ".join(f"{kind} {count}" for kind, count in row.errors.items()) or "none"
            lines.append(
                f"| {row.protocol} | {row.concurrency} | {row.batch} | {row.path} | {row.noop} | {row.database} "
                f"| {bound} | {to_noop} | {to_database} | {to_bound} "
                f"| {cpu.median:.0%} (max {max(cpu.runs):.0%}) | {errors} |"
            )
        return "\n".join(lines)

    def openings_table(self) -> str:
        lines = [
            "| messages stored | dashboard: newest notification shown (ms after navigation start) |",
            "|---:|---:|",
        ]
        lines += [f"| {stored:,} | {ms:,.0f} |" for stored, ms in self.openings]
        return "\n".join(lines)

    def fan_out_table(self) -> str:
        lines = [
            "| offered msg/s | sent msg/s | listeners complete | closed early (codes) | p50 ms | p95 ms | p99 ms "
            "| max ms | Node CPU (loop p99) | hub CPU | machine busy | keeps up |",
            "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in self.fan_out:
            codes = ", ".join(f"{code}: {n}" for code, n in sorted(r.closes.items()))
            order = (
                f"; {r.out_of_order} out of order, {r.duplicates} duplicates" if r.out_of_order or r.duplicates else ""
            )
            hub = f"{r.hub_cpu:.0%}" if r.hub_cpu is not None else "?"
            node = f"{r.node_cpu:.0%} ({r.event_loop_p99:.0f} ms)"
            verdict = "yes" if r.keeps_up else "no"
            p99_runs = f" ({min(r.p99_runs):,.0f}–{max(r.p99_runs):,.0f})" if len(r.p99_runs) > 1 else ""
            lines.append(
                f"| {r.offered} | {r.sent_rate:,.0f} | {r.complete:,}/{r.listeners:,} ({r.frames:,} each) "
                f"| {r.closed_early}{f' ({codes})' if codes else ''}{order} | {r.p50:,.1f} | {r.p95:,.1f} "
                f"| {r.p99:,.1f}{p99_runs} | {r.max:,.1f} | {node} | {hub} | {r.machine_busy:.0%} | {verdict} |"
            )
        if not self.fan_out:
            return "\n".join(lines)
        kept = [r.offered for r in self.fan_out if r.keeps_up]
        lines.append(
            f"\nLargest rate at which {self.fan_out[0].listeners:,} listeners keep up: "
            f"{f'{max(kept)} msg/s' if kept else 'none of the rates measured'} (keeps up: every listener got every "
            f"notification once and in order, p99 created_at to receipt under {KEEPS_UP_P99_MS:.0f} ms, the senders "
            f"within 5% of the offered rate). Each row is the run of median p99 of {self.fan_out_runs}; CPU is the "
            "share of one core from all listeners open to the last frame (loop p99: how late Node ran its callbacks), "
            f"machine busy the share of all {_cpus()} cores in that window, whatever used them; "
            "the ladder stops after two rates in a row that do not keep up. The listeners reached the hub at "
            + (
                "its container address (no Docker proxy between)."
                if self.fan_out_route == "container"
                else "its published host port (through Docker's userland proxy)."
            )
        )
        return "\n".join(lines)

    def write(self, folder: Path, size: str) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        stamp = self.started.strftime("%Y%m%d-%H%M%S")
        plot = folder / f"bench-{stamp}.png"
        report = folder / f"bench-{stamp}.md"
        self._plot(plot)
        report.write_text(
            f"# Benchmark, {self.started:%Y-%m-%d %H:%M} UTC ({size})\n\n"
            f"Machine: {platform.machine()}, {_cpus()} CPUs, Python {platform.python_version()} (benchmark "
            "process); every service ran on the same machine.\n"
            + (
                "\nThroughput counts a message once its notification reached a WebSocket listener. The ceiling "
                "is the same store transaction issued straight at PostgreSQL by the benchmark, at the same "
                f"concurrency and batch size.\n\n{self.table()}\n"
                if self.rows
                else ""
            )
            + (
                f"\n## Send-to-notification latency\n\n{self.latency_table()}\n\n"
                f"![latency against offered rate]({plot.name})\n"
                if self.latencies
                else ""
            )
            + (f"\n## Dashboard opening\n\n{self.openings_table()}\n" if self.openings else "")
            + (f"\n## Fan-out to listeners in a Node process\n\n{self.fan_out_table()}\n" if self.fan_out else "")
            + (
                f"\n## Each protocol against its ceilings\n\n{PROTOCOLS_METHOD}\n\n"
                f"{self.protocol_conditions}\n\n{self.protocols_table()}\n"
                if self.protocols
                else ""
            ),
            encoding="utf-8",
        )
        return report, plot

    def _plot(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(8, 5))
        for index, (protocol, points) in enumerate(self.latencies.items()):
            rates = [p.offered for p in points]
            color = f"C{index}"
            axis.plot(rates, [p.p50 for p in points], marker="o", color=color, label=f"{protocol} p50")
            axis.plot(rates, [p.p99 for p in points], marker="^", linestyle="--", color=color, label=f"{protocol} p99")
        axis.set_xlabel("offered rate (messages per second)")
        axis.set_ylabel("send to notification (ms)")
        axis.set_title("Latency against offered rate")
        axis.grid(True, alpha=0.3)
        axis.legend()
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)


PROTOCOLS_METHOD = (
    "Each figure is the median of the runs, the lowest and highest in brackets; every round measured each"
    " figure once, the path and the no-op server in alternating order. The same Node load generator "
    "(bench/load/: autocannon for REST, a gRPC client on node:http2, amqplib with publisher confirms) "
    "drove each path and its no-op ceiling: the same image, settings and middleware answering without "
    "storing (the `.noop` module of each server). The database ceiling is the store statement issued "
    "straight at PostgreSQL with the same concurrency and batch size. Serial bound, at concurrency 1: 1 /"
    " (1/database + 1/no-op), for REST and gRPC only (an AMQP publisher waits for the broker's confirm, "
    "not for the store, so its path is not serial). REST and gRPC count a message when its answer "
    "arrives; RabbitMQ counts from the first publish until the messages are stored (path) or the queue's "
    "last message was delivered to the no-op consumer (at most its prefetch then awaits an "
    "acknowledgement). Generator CPU: its share of one core over its runs, median and highest (below "
    "about 80% it was not the limit)."
)


def _cpus() -> int:
    import os

    return os.cpu_count() or 0
