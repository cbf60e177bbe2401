"""Drives the hub's page in headless Chromium against a hub that requires a token (AUTH=on).

Run by tests/e2e/test_auth.py in the msgsuite/dashboard-browser image:

    python /check/token_check.py --page http://websocket-hub:8765/ --token=TOKEN

Prints one JSON object on stdout with what the browser saw (it asserts nothing itself):
whether the page asked for a token before opening any WebSocket, whether a wrong token
was refused and asked again, whether the right one connected and showed the counts,
and whether a reload in the same session connected without asking again.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

# Before any script of the page: count the WebSockets it opens and whether any opened.
WATCH = """
(() => {
  const Native = window.WebSocket;
  const seen = { sockets: 0, opened: 0 };
  window.__seen = seen;
  function Watched(url, protocols) {
    const socket = protocols === undefined ? new Native(url) : new Native(url, protocols);
    seen.sockets += 1;
    socket.addEventListener("open", () => { seen.opened += 1; });
    return socket;
  }
  Watched.prototype = Native.prototype;
  for (const name of ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]) Watched[name] = Native[name];
  window.WebSocket = Watched;
})();
"""


def wait_until(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--page", required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--lang=es-ES"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH})
    report: dict[str, Any] = {}
    try:
        driver.get(args.page)
        form = driver.find_element(By.ID, "token-form")
        wait_until("the token form", form.is_displayed, 30)
        report["asked"] = True
        report["sockets_before_token"] = driver.execute_script("return window.__seen.sockets")

        def submit(token: str) -> None:
            field = driver.find_element(By.ID, "token")
            field.send_keys(token)
            driver.find_element(By.ID, "token-submit").click()

        submit("wrong-token")
        wait_until(
            "asked again after a wrong token",
            lambda: form.is_displayed() and driver.find_element(By.ID, "token-error").text,
            30,
        )
        report["wrong_refused"] = driver.find_element(By.ID, "token-error").text
        report["opened_with_wrong"] = driver.execute_script("return window.__seen.opened")

        submit(args.token)
        state = driver.find_element(By.ID, "state")
        wait_until("connected", lambda: state.get_attribute("data-state") == "conectado", 30)
        wait_until("the counts", lambda: driver.find_element(By.ID, "total").get_attribute("data-value"), 30)
        report["connected"] = True
        report["total_shown"] = int(driver.find_element(By.ID, "total").get_attribute("data-value") or -1)
        report["stored_in_session"] = driver.execute_script(
            "return sessionStorage.getItem('msgsuite-hub-token') !== null"
        )

        driver.refresh()
        state = driver.find_element(By.ID, "state")
        wait_until("connected after a reload", lambda: state.get_attribute("data-state") == "conectado", 30)
        report["asked_after_reload"] = driver.find_element(By.ID, "token-form").is_displayed()
    finally:
        report["token_in_page_text"] = args.token in (driver.page_source or "")
        driver.quit()
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
