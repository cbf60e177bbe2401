"""Client streams run in their own containers, as a user would run them."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from harness.stack import ROOT, Stack

_RESULT = re.compile(r"^(stored id=(?P<id>\d+) total=\d+|queued) key=(?P<key>\S+)", re.MULTILINE)


@dataclass
class Outcome:
    client: str
    returncode: int
    stored: dict[str, int | None]  # key -> id reported (None: queued, total unknown yet)
    stderr: str


class ClientStream:
    """`docker compose run <client> --count N ...` in the background."""

    def __init__(self, stack: Stack, client: str, *args: str) -> None:
        self.client = client
        self._process = subprocess.Popen(
            ["docker", "compose", "-p", stack.project, "run", "--rm", "--no-deps", "-T", client, *args],
            cwd=ROOT,
            env=stack.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, timeout: float = 600) -> Outcome:
        out, err = self._process.communicate(timeout=timeout)
        return parse_outcome(self.client, self._process.returncode, out, err)


def parse_outcome(client: str, returncode: int, out: str, err: str) -> Outcome:
    """A client's result lines: key -> the id it reported (None: queued)."""
    stored = {m["key"]: (int(m["id"]) if m["id"] else None) for m in _RESULT.finditer(out)}
    return Outcome(client, returncode, stored, err)


def start_streams(stack: Stack, clients: list[str], *args: str) -> list[ClientStream]:
    return [ClientStream(stack, client, *args) for client in clients]
