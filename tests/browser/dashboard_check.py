"""Drives the hub's dashboard in headless Chromium from inside the compose network.

Run by tests/e2e/test_dashboard.py in the msgsuite/dashboard-browser image:

    dashboard_check.py --page http://websocket-hub:8765/ --rest http://rest-server:8000 --newest N

It reports what the browser saw, one JSON object per line on stdout, and
asserts nothing itself (the test does):

1. {"phase": "opened", ...} once the newest notification (id N) is shown: the
   WebSocket URLs the page opened, frames received, the first item's id, and
   when it was shown (ms after navigation started).
2. {"phase": "checked", ...} after sending through REST a plain message, a
   message made of HTML, and a message while the display is paused: their
   ids and items, whether the HTML ran, the filter's effect, the counts shown.
   Then it reads lines on stdin while the test sends more load: "screenshot"
   saves dashboard-live.png ({"phase": "screenshot"}), a number is the total
   to wait for.
3. {"phase": "final", ...}: the counts shown once the page shows that total,
   frames received, the browser console's errors; a screenshot is saved.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

VIAS = ("GRPC", "REST", "RabbitMQ")
HTML_MESSAGE = '<img src=x onerror="window.__pwned=1"><b>negrita</b>'

# Before any script of the page: record every WebSocket it opens and every
# frame it receives, and when the newest expected notification is first shown.
WATCH = """
(() => {
  const Native = window.WebSocket;
  const dash = { urls: [], frames: 0, newest: %d, newestShownAt: null, openedAt: null, firstFrameAt: null };
  window.__dash = dash;
  function Watched(url, protocols) {
    const socket = protocols === undefined ? new Native(url) : new Native(url, protocols);
    dash.urls.push(String(url));
    socket.addEventListener("open", () => { dash.openedAt ??= performance.now(); });
    socket.addEventListener("message", () => {
      dash.firstFrameAt ??= performance.now();
      dash.frames += 1;
    });
    return socket;
  }
  Watched.prototype = Native.prototype;
  for (const name of ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]) Watched[name] = Native[name];
  window.WebSocket = Watched;
  document.addEventListener("DOMContentLoaded", () => {
    const log = document.getElementById("log");
    new MutationObserver(() => {
      const first = log.firstElementChild;
      if (dash.newestShownAt === null && first && Number(first.dataset.id) >= dash.newest) {
        dash.newestShownAt = performance.now();
      }
    }).observe(log, { childList: true });
  });
})();
"""


def emit(phase: str, **report: Any) -> None:
    print(json.dumps({"phase": phase, **report}), flush=True)


def wait_until(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.05)


def post(rest: str, message: str) -> int:
    request = urllib.request.Request(
        f"{rest}/messages",
        data=json.dumps({"message": message}).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(json.load(response)["id"])


def browser(newest: int) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1150",
        "--lang=es-ES",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH % newest})
    return driver


def items(driver: webdriver.Chrome) -> list[dict[str, str]]:
    script = """return [...document.querySelectorAll('#log li')].map((li) => ({
        id: li.dataset.id, via: li.dataset.via, text: li.querySelector('.text').textContent,
        time: li.querySelector('time').textContent}));"""
    return list(driver.execute_script(script))


def shown_counts(driver: webdriver.Chrome) -> dict[str, int] | None:
    values = driver.execute_script(
        "return ['total', 'count-GRPC', 'count-REST', 'count-RabbitMQ']"
        ".map((id) => document.getElementById(id).dataset.value ?? null);"
    )
    if any(value is None for value in values):
        return None
    return dict(zip(("total", *VIAS), (int(value) for value in values), strict=True))


def item_with_id(driver: webdriver.Chrome, message_id: int) -> dict[str, str] | None:
    return next((item for item in items(driver) if item["id"] == str(message_id)), None)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--page", required=True)
    parser.add_argument("--rest", required=True)
    parser.add_argument("--newest", type=int, required=True, help="the newest id stored before the page opens")
    parser.add_argument("--artifacts", type=Path, default=Path("/artifacts"))
    parser.add_argument("--opening-only", action="store_true", help="report the opening, then quit (the benchmark)")
    args = parser.parse_args()

    driver = browser(args.newest)
    try:
        started = time.monotonic()
        driver.get(args.page)
        wait_until("the newest notification at the top", lambda: driver.execute_script("return __dash.newestShownAt"))
        waited_ms = (time.monotonic() - started) * 1000
        watched = driver.execute_script("return __dash")
        listed = items(driver)
        emit(
            "opened",
            urls=watched["urls"],
            frames=watched["frames"],
            newest_shown_ms=watched["newestShownAt"],
            socket_open_ms=watched["openedAt"],
            first_frame_ms=watched["firstFrameAt"],
            waited_ms=waited_ms,
            first_id=int(listed[0]["id"]),
            listed=len(listed),
        )
        if args.opening_only:
            return 0

        plain = f"prueba del tablero {uuid.uuid4().hex[:8]}"
        plain_id = post(args.rest, plain)
        html_id = post(args.rest, HTML_MESSAGE)
        wait_until("both messages listed", lambda: item_with_id(driver, html_id) and item_with_id(driver, plain_id))

        driver.find_element(By.ID, "pause").click()
        paused_id = post(args.rest, "enviado durante la pausa")
        wait_until(
            "the count to take the paused message", lambda: (shown_counts(driver) or {}).get("total") == paused_id
        )
        listed_while_paused = item_with_id(driver, paused_id) is not None
        driver.find_element(By.ID, "pause").click()
        wait_until("the paused message after resuming", lambda: item_with_id(driver, paused_id))

        protocol = Select(driver.find_element(By.ID, "filter"))
        protocol.select_by_value("REST")
        time.sleep(0.5)
        vias_filtered = sorted({item["via"] for item in items(driver)})
        protocol.select_by_value("")
        time.sleep(0.5)

        emit(
            "checked",
            plain={"id": plain_id, "message": plain, "item": item_with_id(driver, plain_id)},
            html={"id": html_id, "item": item_with_id(driver, html_id)},
            pwned=driver.execute_script("return window.__pwned ?? null"),
            markup_in_list=driver.execute_script("return document.querySelectorAll('#log b, #log img').length"),
            paused={"id": paused_id, "listed_while_paused": listed_while_paused},
            vias_with_rest_filter=vias_filtered,
            frames=driver.execute_script("return __dash.frames"),
            dom_items=len(items(driver)),
        )

        args.artifacts.mkdir(parents=True, exist_ok=True)
        line = sys.stdin.readline().strip()
        while line == "screenshot":  # during the live load
            driver.save_screenshot(str(args.artifacts / "dashboard-live.png"))
            emit("screenshot", counts=shown_counts(driver))
            line = sys.stdin.readline().strip()
        final_total = int(line)
        counts = wait_until(
            f"the page to show total {final_total}",
            lambda: (c := shown_counts(driver)) and c["total"] == final_total and c,
            timeout=120,
        )
        time.sleep(1.5)  # one more chart refresh and /stats poll for the screenshot
        driver.save_screenshot(str(args.artifacts / "dashboard.png"))
        console = driver.get_log("browser")
        emit(
            "final",
            counts=counts,
            counts_after_screenshot=shown_counts(driver),
            frames=driver.execute_script("return __dash.frames"),
            urls=driver.execute_script("return __dash.urls"),
            state=driver.find_element(By.ID, "state").text,
            listeners=driver.find_element(By.ID, "listeners").text,
            dom_items=len(items(driver)),
            console_errors=[entry for entry in console if entry.get("level") == "SEVERE"],
        )
    finally:
        driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
