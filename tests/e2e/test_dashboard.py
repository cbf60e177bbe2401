"""The hub's dashboard in a real headless Chromium, on a stack of its own with 100,000 messages stored.

The browser runs in an image of its own (tests/browser/: Debian's chromium and
chromium-driver, selenium) on the stack's compose network, so it opens the
page as http://websocket-hub:8765/ and sends through http://rest-server:8000.
What it sees comes back as JSON lines (see tests/browser/dashboard_check.py);
the assertions are here. They check the mechanism, not a time: the page asks
for the newest 200 frames and gets no more than that plus what was sent after
it opened. The time to the newest message is printed, and saved with the
screenshot under tests/artifacts/.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from harness.stack import ROOT, Stack, wait_for

from .load import ClientStream

BROWSER_IMAGE = f"msgsuite/dashboard-browser:{os.environ.get('E2E_IMAGE_TAG', 'e2e')}"
ARTIFACTS = ROOT / "tests" / "artifacts"
TAIL = 200
HTML_MESSAGE = '<img src=x onerror="window.__pwned=1"><b>negrita</b>'
# Through the batch paths, 1000 messages per request, the three protocols at once.
PRELOAD = {"rest-client": 50_000, "grpc-client": 35_000, "rabbitmq-client": 15_000}
# Live load while the page is open: 3 x 100 messages a second for about 20 s.
LIVE = dict.fromkeys(PRELOAD, 2_000)


def notification(via: str, message: str, total: int) -> str:
    return f"Se ingresó un registro mediante {via} , con el mensaje {message}, total de mensajes {total}"


@pytest.fixture(scope="session")
def browser_image() -> str:
    """Built once per run (cached by Docker afterwards)."""
    build = subprocess.run(
        ["docker", "build", "-t", BROWSER_IMAGE, str(ROOT / "tests" / "browser")],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert build.returncode == 0, f"building {BROWSER_IMAGE} failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
    return BROWSER_IMAGE


def start_clients(stack: Stack, counts: dict[str, int], *args: str) -> list[ClientStream]:
    return [ClientStream(stack, client, "--count", str(count), *args) for client, count in counts.items()]


def finish_clients(streams: list[ClientStream]) -> None:
    for stream in streams:
        outcome = stream.finish(timeout=900)
        assert outcome.returncode == 0, f"{outcome.client} exited {outcome.returncode}: {outcome.stderr[-2000:]}"


class Browser:
    """The browser container; its JSON report lines are read on a thread, so a hung browser fails the test."""

    def __init__(self, stack: Stack, image: str, newest: int) -> None:
        self.name = f"{stack.project}-browser-{uuid.uuid4().hex[:6]}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        command = ["docker", "run", "--rm", "-i", "--name", self.name, "--network", f"{stack.project}_suite"]
        command += ["-v", f"{ARTIFACTS}:/artifacts", image, "--page", "http://websocket-hub:8765/"]
        command += ["--rest", "http://rest-server:8000", "--newest", str(newest)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.errors: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_errors, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _read_errors(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.errors.append(line)

    def report(self, phase: str, timeout: float = 180) -> dict[str, Any]:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"no {phase!r} report from the browser in {timeout:.0f} s{self._log()}") from None
            if line is None:
                raise AssertionError(f"the browser exited before its {phase!r} report{self._log()}")
            if line.startswith("{"):
                report: dict[str, Any] = json.loads(line)
                assert report["phase"] == phase, report
                return report

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def _log(self) -> str:
        return ":\n" + "".join(self.errors)[-4000:]

    def close(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True, check=False)
        self.process.wait(timeout=60)


def counts_in_database(stack: Stack) -> dict[str, int]:
    counts = dict.fromkeys(("GRPC", "REST", "RabbitMQ"), 0)
    counts.update({via: int(n) for via, n in stack.query("SELECT via, count(*) FROM messages GROUP BY via")})
    return {"total": stack.total(), **counts}


def test_the_dashboard_opens_at_the_newest_then_follows_live_with_exact_counts(
    own_stack: Stack, browser_image: str
) -> None:
    stack = own_stack
    finish_clients(start_clients(stack, PRELOAD, "--batch", "1000", "--concurrency", "2"))
    # The broker confirmed the AMQP batches; the consumer may still be storing the last of them.
    wait_for(lambda: stack.total() >= sum(PRELOAD.values()), timeout=120, what="the preloaded messages stored")
    newest = stack.total()

    browser = Browser(stack, browser_image, newest)
    try:
        opened = browser.report("opened")
        print(
            f"\ndashboard: newest of {newest:,} messages shown {opened['newest_shown_ms']:.0f} ms after navigation "
            f"started (WebSocket open at {opened['socket_open_ms']:.0f} ms, first frame at "
            f"{opened['first_frame_ms']:.0f} ms; {opened['waited_ms']:.0f} ms from the test's point of view)"
        )
        first_url = urlsplit(opened["urls"][0])
        assert first_url.path == "/notifications" and parse_qs(first_url.query) == {"tail": [str(TAIL)]}
        assert opened["frames"] <= TAIL, "nothing was sent after opening: at most the tail"
        assert opened["first_id"] == newest, "the first item shown is the newest message"
        assert opened["listed"] <= TAIL

        checked = browser.report("checked")
        sent_after_opening = 3
        plain, html = checked["plain"], checked["html"]
        assert plain["item"]["text"] == notification("REST", plain["message"], plain["id"])
        assert html["item"]["text"] == notification("REST", HTML_MESSAGE, html["id"]), "HTML is shown literally"
        assert checked["pwned"] is None, "the HTML of a message ran"
        assert checked["markup_in_list"] == 0, "a message's HTML became elements"
        assert checked["paused"]["listed_while_paused"] is False, "pause holds the list (and resume shows it)"
        assert checked["vias_with_rest_filter"] == ["REST"]
        assert checked["frames"] <= TAIL + sent_after_opening
        assert checked["dom_items"] <= TAIL

        # Live load through every protocol while the page is open, then its counts against the table's.
        live = start_clients(stack, LIVE, "--rate", "100", "--concurrency", "4")
        time.sleep(12)
        browser.send("screenshot")
        during = browser.report("screenshot")
        assert during["counts"] is not None and during["counts"]["total"] > checked["paused"]["id"]
        finish_clients(live)
        sent_after_opening += sum(LIVE.values())
        expected = counts_in_database(stack)
        browser.send(str(expected["total"]))
        final = browser.report("final")
        assert final["counts"] == expected, "the counts shown are the database's"
        assert final["console_errors"] == []
        assert final["frames"] <= TAIL + sent_after_opening
        assert final["dom_items"] <= TAIL
        for url in final["urls"][1:]:  # a reconnect resumes after its last id, never with the tail again
            assert set(parse_qs(urlsplit(url).query)) == {"after", "epoch"}, url
        (ARTIFACTS / "dashboard-timing.json").write_text(
            json.dumps(
                {"stored": newest, "newest_shown_ms": opened["newest_shown_ms"], "waited_ms": opened["waited_ms"]}
            )
        )
    finally:
        browser.close()
