"""How long the hub's dashboard takes to show the newest notification, in headless Chromium.

The browser is the image of the dashboard test (tests/browser/), run on the
stack's compose network; it reports the time from navigation start to the
newest notification at the top of the list (see tests/browser/dashboard_check.py).
"""

from __future__ import annotations

import json
import subprocess

from harness.stack import ROOT, Stack

IMAGE = "msgsuite/dashboard-browser:bench"


def build_browser() -> None:
    build = subprocess.run(
        ["docker", "build", "-t", IMAGE, str(ROOT / "tests" / "browser")], capture_output=True, text=True, timeout=1800
    )
    if build.returncode != 0:
        raise RuntimeError(f"building {IMAGE} failed:\n{build.stderr[-3000:]}")


def newest_shown_ms(stack: Stack, newest: int) -> float:
    """One opening of the page in a fresh browser; fails unless the newest id (`newest`) is first on screen."""
    command = ["docker", "run", "--rm", "--network", f"{stack.project}_suite", IMAGE]
    command += ["--page", "http://websocket-hub:8765/", "--rest", "http://rest-server:8000"]
    command += ["--newest", str(newest), "--opening-only"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"the browser failed ({result.returncode}):\n{result.stderr[-3000:]}")
    opened = next(json.loads(line) for line in result.stdout.splitlines() if line.startswith("{"))
    if opened["first_id"] != newest:
        raise RuntimeError(f"the page showed {opened['first_id']} first, not the newest {newest}")
    return float(opened["newest_shown_ms"])
