"""Every command of the README's "Run it" and "Sending messages" sections runs, as written, on a stack of its own.

A command is a line of a code block in those sections (a line ending in a
backslash continues on the next), or an inline code span there that starts
with a program a user types (`docker compose …`, `curl …`). The first comment
line right below a command in a code block is its stated output; further
comment lines are notes. The commands run in README order through bash, with
only these rewrites:

1. `docker compose` becomes `docker compose -p <the test's project>`, run with
   the test stack's environment (its own names, no fixed host ports).
2. In a command that does not go through docker compose (curl, grpcurl),
   `localhost:<port>` becomes `127.0.0.1:<the host port the stack published>`.
   Inside the containers (`docker compose exec …`) the ports are the fixed ones.
3. `--count 10000` becomes `--count 1000`: the loads are cut tenfold to keep
   the test short; what they exercise is the same.

Each command must exit 0, and what the README says it prints must appear:
the stated output; for a client sending messages, one result line per
message in the format the README gives; for curl, a JSON answer that is not an
error (`{"detail": …}`). Commands that end the stack (`down`, `down -v`) run
last, and the README's words about them are checked: `down` keeps the data's
volumes, `down -v` deletes them. EXEMPT lists what cannot run unattended, and
NEEDS_TOOL what needs a program the project does not ship (run when installed).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass

import pytest

from harness.stack import ROOT, Stack

README = ROOT / "README.md"
SECTIONS = ("Run it", "Sending messages")
PROGRAMS = ("docker compose ", "curl ", "grpcurl ", "printf ")

EXEMPT = {
    "docker compose up --build": "runs in the foreground until Ctrl-C; own_stack starts the stack this way, detached",
    "docker compose up": "named in a sentence about what `up` does; it runs in the foreground too",
    "Ctrl-C": "a key pressed in the terminal of `up`, not a command",
}
NEEDS_TOOL = {"grpcurl": "a third-party gRPC client the project does not ship"}
ENDS_THE_STACK = ("docker compose down", "docker compose down -v")
HOST_PORTS = {8000: ("rest-server", 8000), 50051: ("grpc-server", 50051), 8765: ("websocket-hub", 8765)}
LOAD_REWRITE = ("--count 10000", "--count 1000")
CLIENT_RESULT = {
    "rest-client": r"stored id=(\d+) total=\1 key=\S+( \(repeated idempotency key: nothing new stored\))?",
    "grpc-client": r"stored id=(\d+) total=\1 key=\S+( \(repeated idempotency key: nothing new stored\))?",
    "rabbitmq-client": r"queued key=\S+ \(confirmed by the broker; its total arrives with the notification\)",
}
ELLIPSIS = "…"
LOG_WAIT_SECONDS = 60


@dataclass
class Command:
    text: str
    section: str
    stated_output: str | None = None


def readme_commands() -> list[Command]:
    commands: list[Command] = []
    section = None
    in_fence = False
    code: list[str] = []

    def flush_code() -> None:
        joined: list[str] = []
        for line in code:
            if joined and joined[-1].endswith("\\"):
                joined[-1] = joined[-1][:-1].rstrip() + " " + line.strip()
            else:
                joined.append(line.strip())
        above: Command | None = None  # the command on the line right above, if any
        for line in joined:
            if line.startswith("#"):
                if above is not None:
                    above.stated_output = line.lstrip("#").strip()
                above = None
                continue
            above = Command(line, str(section))
            commands.append(above)
        code.clear()

    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            flush_code()
            section = line[3:].strip() if line[3:].strip() in SECTIONS else None
            continue
        if section is None:
            continue
        if line.startswith("```"):
            in_fence = not in_fence
            continue
        if line.startswith("    ") and not in_fence and (code or not line.strip().startswith(("-", "*"))):
            code.append(line)
            continue
        flush_code()
        for span in re.findall(r"`([^`]+)`", line):
            if span.startswith(PROGRAMS) or span in EXEMPT:
                commands.append(Command(span, section))
    flush_code()
    return commands


def rewrite(command: str, stack: Stack) -> str:
    command = command.replace(*LOAD_REWRITE)
    if "docker compose" in command:
        return command.replace("docker compose ", f"docker compose -p {stack.project} ")
    for port, (service, container_port) in HOST_PORTS.items():
        command = command.replace(f"localhost:{port}", f"127.0.0.1:{stack.port(service, container_port)}")
    return command


def run(command: str, stack: Stack) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=ROOT,
        env=stack.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )


def check_client_output(command: str, stdout: str) -> None:
    """A client prints one result line per message it was given."""
    pipe, _, client_part = command.rpartition("|")
    words = shlex.split(client_part, comments=True)
    client = next(w for w in words if w in CLIENT_RESULT)
    args = words[words.index(client) + 1 :]
    if "--help" in args:
        assert stdout.startswith(f"usage: {client}"), stdout[:300]
        return
    if "--count" in args:
        expected = int(args[args.index("--count") + 1])
    elif pipe:
        expected = len(subprocess.run(["bash", "-c", pipe], capture_output=True, text=True).stdout.splitlines())
    else:
        options_with_values = {"--concurrency", "--batch", "--rate", "--idempotency-key", "--retries", "--demo"}
        positional = [
            a
            for i, a in enumerate(args)
            if not a.startswith("--") and (i == 0 or args[i - 1] not in options_with_values)
        ]
        expected = len(positional)
    lines = stdout.splitlines()
    assert len(lines) == expected, f"{len(lines)} result lines for {expected} messages:\n{stdout[-2000:]}"
    bad = [line for line in lines if not re.fullmatch(CLIENT_RESULT[client], line)]
    assert not bad, f"lines not in the README's format: {bad[:3]}"


def check_stated_output(stated: str, stdout: str) -> None:
    if stated.startswith("{"):
        expected, answer = json.loads(stated), json.loads(stdout)
        assert isinstance(answer, dict) and set(answer) == set(expected), f"keys differ: {stdout[:500]}"
        for key, value in expected.items():
            if value == ELLIPSIS:
                continue
            if isinstance(value, int) and not isinstance(value, bool):
                assert isinstance(answer[key], int), f"{key}: {answer[key]!r} is not a number"
            else:
                assert answer[key] == value, f"{key}: {answer[key]!r}, the README says {value!r}"
    elif stated.startswith(ELLIPSIS):
        assert stated.removeprefix(ELLIPSIS).strip() in stdout, f"{stated!r} not in:\n{stdout[-2000:]}"
    else:
        assert stdout.strip() == stated, f"printed {stdout.strip()[:500]!r}, the README says {stated!r}"


def run_and_check(command: Command, stack: Stack) -> None:
    runnable = rewrite(command.text, stack)
    result = run(runnable, stack)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-1500:]}\n{result.stderr[-1500:]}"
    if command.stated_output is not None:
        if " logs " in runnable:  # the log fills as notifications arrive: read it again for a while
            deadline = time.monotonic() + LOG_WAIT_SECONDS
            while command.stated_output.removeprefix(ELLIPSIS).strip() not in result.stdout:
                if time.monotonic() > deadline:
                    break
                time.sleep(1)
                result = run(runnable, stack)
        check_stated_output(command.stated_output, result.stdout)
    if any(f" {client}" in runnable for client in CLIENT_RESULT) and " run " in runnable:
        check_client_output(runnable, result.stdout)
    if runnable.startswith("curl "):
        answer = json.loads(result.stdout)
        assert not (isinstance(answer, dict) and set(answer) == {"detail"}), f"an error answer: {answer}"


def data_volumes(stack: Stack) -> list[str]:
    out = subprocess.run(
        ["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={stack.project}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


def test_the_readme_names_its_commands_and_every_exemption_still_applies() -> None:
    texts = [c.text for c in readme_commands()]
    assert {section for c in readme_commands() for section in [c.section]} == set(SECTIONS)
    assert any(t.startswith("docker compose run") for t in texts) and any(t.startswith("curl ") for t in texts)
    for exempt in EXEMPT:
        assert exempt in texts, f"EXEMPT lists {exempt!r}, which the README no longer has"
    for ending in ENDS_THE_STACK:
        assert ending in texts, f"{ending!r} is no longer in the README"


@pytest.mark.slow
def test_every_readme_command_runs_as_written(own_stack: Stack, subtests: pytest.Subtests) -> None:
    commands = [c for c in readme_commands() if c.text not in EXEMPT]
    last = [c for c in commands if c.text in ENDS_THE_STACK]
    for command in [c for c in commands if c.text not in ENDS_THE_STACK]:
        with subtests.test(msg=command.text.split("  #")[0].strip()):
            tool = command.text.split()[0]
            if tool in NEEDS_TOOL and shutil.which(tool) is None:
                pytest.skip(f"{tool} is not installed: {NEEDS_TOOL[tool]}")
            run_and_check(command, own_stack)
    for command in last:
        with subtests.test(msg=command.text):
            run_and_check(command, own_stack)
            if command.text == "docker compose down":
                assert f"{own_stack.project}_database-data" in data_volumes(own_stack), "down deleted the data"
            else:
                assert data_volumes(own_stack) == [], "down -v left volumes behind"
