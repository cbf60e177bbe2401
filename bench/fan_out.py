"""Fan-out to many listeners held by a separate Node process (bench/fanout/listeners.js, the `ws` package).

At each offered rate of a ladder: Node opens the listeners at the current
total, REST senders store messages open loop (paced by schedule) for a fixed
time, and Node reports whether every listener got every notification once and
in order, the created_at-to-receipt delay percentiles over all frames of all
listeners, the listeners the hub closed, and its own CPU.
"""

from __future__ import annotations

import dataclasses
import json
import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.stack import Stack
from msgsuite.client import Sender, close_sender
from msgsuite.per_thread import PerThread

from .measure import Target

FANOUT = Path(__file__).resolve().parent / "fanout"
LISTENERS_JS = FANOUT / "listeners.js"
KEEPS_UP_P99_MS = 100.0
SENDER_THREADS = 4


@dataclass(frozen=True)
class FanOutRun:
    offered: int  # messages per second, scheduled
    sent_rate: float  # messages per second the senders achieved
    listeners: int
    frames: int  # notifications each listener should receive
    complete: int  # listeners that received every one once and in order
    closed_early: int  # listeners the hub closed before the last (1013 or an abort: too slow)
    closes: dict[str, int]  # close code to count
    out_of_order: int
    duplicates: int
    p50: float
    p95: float
    p99: float
    max: float
    node_cpu: float  # the Node process's CPU seconds over elapsed seconds (1.0 = one core)
    hub_cpu: float | None  # the hub container's, same window; None where its cgroup is not readable
    machine_busy: float  # share of all the machine's cores busy in that window (everything: other work too)
    event_loop_p99: float  # ms: how late the Node process ran its callbacks
    p99_runs: tuple[float, ...] = ()  # every run's p99 at this rate, when this row is the run of median p99

    @property
    def keeps_up(self) -> bool:
        return (
            self.complete == self.listeners
            and self.out_of_order == self.duplicates == 0
            and self.p99 < KEEPS_UP_P99_MS
            and self.sent_rate >= 0.95 * self.offered
        )

    def summary(self) -> str:
        return (
            f"{self.complete}/{self.listeners} complete, {self.closed_early} closed early {self.closes}, "
            f"p50/p99 {self.p50:.1f}/{self.p99:.1f} ms, sent {self.sent_rate:.1f} msg/s, Node CPU {self.node_cpu:.0%} "
            f"(event loop p99 {self.event_loop_p99:.1f} ms), hub CPU "
            + (f"{self.hub_cpu:.0%}" if self.hub_cpu is not None else "unknown")
            + f", machine {self.machine_busy:.0%} busy"
        )


class NodeListeners:
    """listeners.js as a child process: ready once every listener is open, then one JSON summary."""

    def __init__(self, hub_url: str, after: int, listeners: int, timeout: float, token: str | None) -> None:
        command = ["node", str(LISTENERS_JS), "--url", f"{hub_url}/notifications", "--after", str(after)]
        command += ["--listeners", str(listeners), "--timeout", str(timeout)]
        if token:
            command += ["--token", token]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line.strip())
        self._lines.put(None)

    def _line(self, timeout: float) -> str:
        line = self._lines.get(timeout=timeout)
        if line is None:
            raise RuntimeError(f"listeners.js exited ({self._process.wait()}); its stderr is above")
        return line

    def wait_ready(self, timeout: float = 120) -> None:
        line = self._line(timeout)
        if not line.startswith("ready"):
            raise RuntimeError(f"listeners.js said {line!r} instead of ready")

    def finish(self, last: int, timeout: float) -> dict[str, Any]:
        """Tells the last id; returns the summary once every listener has it or was closed."""
        assert self._process.stdin is not None
        self._process.stdin.write(f"{last}\n")
        self._process.stdin.flush()
        summary: dict[str, Any] = json.loads(self._line(timeout))
        self._process.wait(timeout=30)
        return summary

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()


def hub_url(stack: Stack, route: str) -> str:
    """The hub as the Node listeners reach it: "published" is the host port (through Docker's userland proxy,
    which copies every frame once more); "container" is the hub container's own address on the stack's network."""
    if route == "published":
        return stack.hub_url
    if stack.tls:
        raise RuntimeError("fan-out listeners speak plain ws only; run it on a stack without TLS")
    return f"ws://{stack.address('websocket-hub')}:8765"


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return sum(values) - idle, sum(values)


def container_cpu_seconds(stack: Stack, service: str) -> float | None:
    """CPU seconds the service's (first) container used so far, from its cgroup on the host (v1 or v2)."""
    container = stack.compose("ps", "-q", service).stdout.split()
    if not container:
        return None
    cid = container[0]
    for path, scale in (
        (f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage", 1e-9),
        (f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat", 1e-6),
        (f"/sys/fs/cgroup/docker/{cid}/cpu.stat", 1e-6),
    ):
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        if path.endswith("cpu.stat"):  # v2: "usage_usec N" among others
            text = next(line.split()[1] for line in text.splitlines() if line.startswith("usage_usec"))
        return int(text) * scale
    return None


def _send_paced(make_sender: Callable[[], Sender], rate: int, seconds: float) -> float:
    """Open loop: message i goes at start + i / rate whatever the ones before did. Returns the achieved rate."""
    count = max(1, round(rate * seconds))
    run = uuid.uuid4().hex[:8]
    senders = PerThread(make_sender, close_sender)

    def send(text: str) -> None:
        senders.get().send(text, str(uuid.uuid4()))

    try:
        with ThreadPoolExecutor(SENDER_THREADS) as pool:
            started = time.perf_counter()
            futures = []
            for i in range(count):
                delay = started + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                futures.append(pool.submit(send, f"fan-out {run} {i}"))
            for future in futures:
                future.result()
            elapsed = time.perf_counter() - started
    finally:
        senders.close_all()
    return count / elapsed if count > 1 else float(rate)


def run_rate(
    stack: Stack,
    target: Target,
    make_sender: Callable[[], Sender],
    listeners: int,
    rate: int,
    seconds: float,
    route: str,
) -> FanOutRun:
    warm = PerThread(make_sender, close_sender)  # the REST connection opened outside the measured window
    warm.get().send(f"fan-out warm-up {uuid.uuid4().hex[:8]}", str(uuid.uuid4()))
    warm.close_all()
    first = target.total()
    drain = max(30.0, 3 * seconds)
    token = stack.secret("listener_token") if stack.env.get("AUTH") == "on" else None
    node = NodeListeners(hub_url(stack, route), first, listeners, drain, token)
    try:
        node.wait_ready()
        hub_before = container_cpu_seconds(stack, "websocket-hub")
        machine_before = machine_ticks()
        sent_rate = _send_paced(make_sender, rate, seconds)
        summary = node.finish(target.total(), timeout=drain + 60)
        machine_after = machine_ticks()
        hub_after = container_cpu_seconds(stack, "websocket-hub")
    finally:
        node.close()
    delay = summary["delay_ms"]
    elapsed = float(summary["elapsed_seconds"])
    hub_cpu = None if hub_before is None or hub_after is None else (hub_after - hub_before) / elapsed
    return FanOutRun(
        offered=rate,
        sent_rate=sent_rate,
        listeners=listeners,
        frames=int(summary["frames_per_listener"]),
        complete=int(summary["listeners_complete"]),
        closed_early=int(summary["listeners_closed_early"]),
        closes=dict(summary["closes"]),
        out_of_order=int(summary["out_of_order"]),
        duplicates=int(summary["duplicates"]),
        p50=float(delay["p50"] or 0),
        p95=float(delay["p95"] or 0),
        p99=float(delay["p99"] or 0),
        max=float(delay["max"] or 0),
        node_cpu=float(summary["cpu_seconds"]) / elapsed,
        hub_cpu=hub_cpu,
        machine_busy=(machine_after[0] - machine_before[0]) / max(1, machine_after[1] - machine_before[1]),
        event_loop_p99=float(summary["event_loop_delay_p99_ms"]),
    )


def ladder(
    stack: Stack,
    target: Target,
    make_sender: Callable[[], Sender],
    listeners: int,
    rates: tuple[int, ...],
    seconds: float,
    runs: int,
    route: str,
    progress: Callable[[str], None],
) -> list[FanOutRun]:
    """Each rate `runs` times, keeping the run of median p99; stops after two rates in a row that do not keep up."""
    chosen: list[FanOutRun] = []
    for rate in rates:
        measured = []
        for run in range(runs):
            progress(
                f"fan-out: {listeners} Node listeners ({route} address), {rate} msg/s for {seconds:g} s"
                f" (run {run + 1}/{runs})"
            )
            measured.append(run_rate(stack, target, make_sender, listeners, rate, seconds, route))
            progress(f"fan-out: {measured[-1].summary()}")
            time.sleep(2)  # the hub closes the last run's sockets
        measured.sort(key=lambda r: r.p99)
        chosen.append(dataclasses.replace(measured[len(measured) // 2], p99_runs=tuple(r.p99 for r in measured)))
        if len(chosen) >= 2 and not chosen[-1].keeps_up and not chosen[-2].keeps_up:
            break
    return chosen
