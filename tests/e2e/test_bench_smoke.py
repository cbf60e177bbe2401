"""The benchmark cannot rot: it runs with tiny sizes against the test stack."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.stack import ROOT, Stack

from .checks import assert_ids_gap_free


def run_bench(stack: Stack, results: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """python -m bench --size tiny against the test stack; asserts it succeeded."""
    env = {**stack.env, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "build" / "generated")])}
    command = [sys.executable, "-m", "bench", "--size", "tiny", *arguments, "--project", stack.project]
    result = subprocess.run(
        [*command, "--results", str(results)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_benchmark_runs_and_writes_its_report_and_plot(healthy: Stack, tmp_path: Path) -> None:
    result = run_bench(healthy, tmp_path)
    assert "| ceiling (PostgreSQL direct) | 2 | 1 |" in result.stdout
    for protocol in ("REST", "GRPC", "RabbitMQ"):
        assert f"| {protocol} | 2 | 100 |" in result.stdout
    reports = list(tmp_path.glob("bench-*.md"))
    plots = list(tmp_path.glob("bench-*.png"))
    assert len(reports) == 1 and len(plots) == 1
    assert plots[0].read_bytes().startswith(b"\x89PNG")
    assert "Send-to-notification latency" in reports[0].read_text(encoding="utf-8")
    assert_ids_gap_free(healthy)


NODE_PACKAGES = [ROOT / "bench" / "load" / "node_modules" / "ws", ROOT / "bench" / "fanout" / "node_modules" / "ws"]


@pytest.mark.skipif(
    shutil.which("node") is None or not all(path.is_dir() for path in NODE_PACKAGES),
    reason="needs node and the benchmark's Node packages (scripts/prepare.sh runs npm ci)",
)
@pytest.mark.parametrize("section", ["latency", "fan-out"])
def test_the_node_sections_run_against_the_stack(healthy: Stack, tmp_path: Path, section: str) -> None:
    result = run_bench(healthy, tmp_path, "--only", section)
    if section == "latency":
        for protocol in ("REST", "gRPC", "RabbitMQ"):
            assert f"| {protocol} | 20 | " in result.stdout  # every notification arrived, or it fails
    else:
        rows = [line for line in result.stdout.splitlines() if line.startswith(("| 10 |", "| 20 |"))]
        assert len(rows) == 2 and all("| 20/20 " in row for row in rows), result.stdout
    assert_ids_gap_free(healthy)
