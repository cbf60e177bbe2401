"""The Node load generators of bench/load/: one run each, its one JSON line read back.

They are not Python so that the sender is not the limit it measures (each
reports its own CPU time; below about 0.8 s per second it was not saturated).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOAD = Path(__file__).resolve().parent / "load"


@dataclass(frozen=True)
class GeneratorRun:
    completed: int  # messages answered 2xx / OK / confirmed
    errors: dict[str, int]  # by kind: "http 429", "UNAVAILABLE", "nack", ...
    elapsed: float  # seconds from the first measured send to the last answer
    rate: float  # completed / elapsed
    p50_ms: float | None  # per request (a batch is one request)
    p99_ms: float | None
    cpu_seconds: float  # the generator's own, user and system, over the measured part
    started_at: float  # epoch seconds of the first measured send

    @property
    def cpu_share(self) -> float:
        """Of one core: near 1 the generator itself would be the limit."""
        return self.cpu_seconds / self.elapsed if self.elapsed else 0.0

    @property
    def finished_at(self) -> float:
        return self.started_at + self.elapsed


def start(script: str, options: dict[str, object], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """node bench/load/<script> --name value ...; env adds to this process's environment (secrets go there)."""
    args = ["node", str(LOAD / script)]
    for name, value in options.items():
        args += [f"--{name}", str(value)]
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )


def check_node(project: Path, what: str) -> None:
    """Node and the project's packages (scripts/prepare.sh runs npm ci), or a clear error."""
    if shutil.which("node") is None:
        raise RuntimeError(f"{what} needs Node.js (Debian: apt-get install nodejs npm)")
    if not (project / "node_modules" / "ws").is_dir():  # both projects' listener package
        raise RuntimeError(f"{what} needs its Node packages: npm ci --prefix {project} (scripts/prepare.sh does it)")


def json_line(process: subprocess.Popen[str], timeout: float = 300) -> dict[str, Any]:
    """The one JSON line a started script printed last; raises with its stderr if it failed."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    if process.returncode != 0 or not out.strip():
        raise RuntimeError(f"{' '.join(map(str, process.args))} failed ({process.returncode}):\n{err[-2000:]}")  # type: ignore[arg-type]
    line: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return line


def result(process: subprocess.Popen[str], timeout: float = 300) -> GeneratorRun:
    line = json_line(process, timeout)
    return GeneratorRun(
        completed=int(line["completed"]),
        errors={str(kind): int(count) for kind, count in line["errors"].items()},
        elapsed=float(line["elapsed_seconds"]),
        rate=float(line["messages_per_second"]),
        p50_ms=line["p50_ms"],
        p99_ms=line["p99_ms"],
        cpu_seconds=float(line["cpu_seconds"]),
        started_at=float(line["started_at_ms"]) / 1000,
    )


def run(script: str, options: dict[str, object], env: dict[str, str] | None = None) -> GeneratorRun:
    return result(start(script, options, env))


def run_until(
    script: str,
    options: dict[str, object],
    done: Callable[[], bool],
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> tuple[GeneratorRun, float]:
    """Runs the generator while polling done() every 5 ms; answers its result and the epoch time at which
    done() was first seen to hold after the generator's last answer (AMQP: what the broker confirmed may be
    consumed later)."""
    process = start(script, options, env)
    deadline = time.monotonic() + timeout
    held: list[float] = []  # the times done() was seen to hold
    exited_at: float | None = None
    while exited_at is None or not held or held[-1] < exited_at:
        if exited_at is None and process.poll() is not None:
            exited_at = time.time()
        if done():
            held.append(time.time())
        if time.monotonic() > deadline:
            process.kill()
            raise TimeoutError(f"{script}: not done {timeout:.0f} s after it started")
        time.sleep(0.005)
    generated = result(process)
    return generated, next((t for t in held if t >= generated.finished_at), held[-1])
