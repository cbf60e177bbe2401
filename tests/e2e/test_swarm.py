"""The suite on Docker Swarm (deploy/swarm/stack.yml through scripts/swarm.sh) keeps every guarantee
while replicas die and roll.

With 2 replicas of each server and 2 hubs, the three clients stream from containers on the
stack's overlay network while one replica of each server and one hub are killed (`docker kill`)
and then rest-server and grpc-server roll to a new task each (`docker service update --force`).
Afterwards every message a client reported is stored once under the id it reported, ids are
1..N with no gap, and a listener started on each hub replica (the one whose hub was killed
resumes on another) and the websocket-client service got every notification once, in order.

The test deploys a stack of its own and removes it (and swarm mode, if it initialised it) even
when it fails; `scripts/swarm.sh test --stack NAME` runs it against a stack that is already up.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.stack import CLIENTS, ROOT, wait_for

from .checks import assert_reported_stored_once
from .replicas import ContainerClient, ContainerListener, assert_each_heard_all, container_ip, containers

COUNT, RATE = 300, 15  # per client: a 20 s stream
STREAM = ["--count", str(COUNT), "--rate", str(RATE), "--concurrency", "4", "--retries", "40"]
SECONDS_BEFORE_KILLS, SECONDS_BEFORE_UPDATE = 4.0, 3.0
KILLED = ["rest-server", "grpc-server", "rabbitmq-server"]  # and the first listener's hub
ROLLED = ["rest-server", "grpc-server"]
FIELD_SEPARATOR = "\x1f"  # in no generated message
_TOTAL = re.compile(r"total de mensajes (\d+)$", re.MULTILINE)


def docker(*args: str, timeout: float = 60) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return result.stdout


class Swarm:
    def __init__(self, name: str, tag: str) -> None:
        self.name, self.tag = name, tag
        self.network = f"{name}_suite"

    def swarm_sh(self, command: str) -> None:
        env = {**os.environ, "MSGSUITE_VERSION": self.tag}
        result = subprocess.run(
            ["bash", "scripts/swarm.sh", command, "--stack", self.name],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if result.returncode != 0:
            raise RuntimeError(f"swarm.sh {command} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")

    def tasks(self, service: str) -> list[str]:
        """The running containers of a service's tasks."""
        return containers(f"label=com.docker.swarm.service.name={self.name}_{service}")

    def psql(self, sql: str) -> list[list[str]]:
        database = self.tasks("database")[0]
        script = (
            'PGPASSWORD=$(cat /run/secrets/postgres_password) psql -h 127.0.0.1 -U suite -d suite -tA -F "$1" -c "$0"'
        )
        out = docker("exec", database, "sh", "-c", script, sql, FIELD_SEPARATOR)
        return [line.split(FIELD_SEPARATOR) for line in out.splitlines() if line]

    def total(self) -> int:
        return int(self.psql("SELECT total FROM stream")[0][0])

    def token(self, name: str) -> str:
        """A client's token, as scripts/swarm.sh kept it when it created the secret (secrets cannot be read back)."""
        return (ROOT / "build" / "swarm" / f"{self.name}-tokens" / name).read_text(encoding="utf-8")

    def secret(self, name: str, service: str) -> str:
        return docker("exec", self.tasks(service)[0], "cat", f"/run/secrets/{name}").strip()

    def update_state(self, service: str) -> str:
        return docker(
            "service",
            "inspect",
            "--format",
            "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
            f"{self.name}_{service}",
        ).strip()

    def client_log_ids(self) -> list[int]:
        out = docker("service", "logs", "--raw", "--no-task-ids", f"{self.name}_websocket-client")
        return [int(n) for n in _TOTAL.findall(out)]


@pytest.fixture(scope="module")
def swarm(images: None) -> Iterator[Swarm]:
    tag = os.environ.get("E2E_IMAGE_TAG", "e2e")
    existing = os.environ.get("SWARM_STACK")  # set by `scripts/swarm.sh test`: that stack is up already
    if existing:
        yield Swarm(existing, tag)
        return
    # Short: Swarm names a secret <stack>_<name>, 64 characters at most (scripts/swarm.sh checks it).
    own = Swarm(os.environ.get("E2E_SWARM_STACK") or f"sw-{uuid.uuid4().hex[:8]}", tag)
    try:
        own.swarm_sh("up")
        yield own
    finally:
        own.swarm_sh("down")


@pytest.mark.slow
def test_swarm_replicas_survive_kills_and_rolling_updates(swarm: Swarm, tmp_path: Path) -> None:
    before = swarm.total()
    hubs = swarm.tasks("websocket-hub")
    assert len(hubs) == 2, f"hub tasks: {hubs}"
    hub_ips = [container_ip(hub, swarm.network) for hub in hubs]
    # The stack runs with TLS on: the clients and listeners get its CA, as a user's would.
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text(swarm.secret("ca.crt", "rest-server") + "\n", encoding="utf-8")
    ca_file.chmod(0o644)
    # AUTH=on in deploy/: every client and listener presents its token.
    listener_token = swarm.token("listener_token")
    listeners = [
        ContainerListener(
            swarm.network, swarm.tag, ip, "websocket-hub", after=before, ca_file=str(ca_file), token=listener_token
        )
        for ip in hub_ips
    ]
    amqp = {"RABBITMQ_HOST": "rabbitmq", "RABBITMQ_USER": "publisher"}  # the clients' broker user
    amqp["RABBITMQ_PASSWORD"] = swarm.secret("amqp_publisher_password", "rabbitmq")
    settings = {
        "rabbitmq-client": amqp,
        "rest-client": {"REST_TOKEN": swarm.token("rest_client_token")},
        "grpc-client": {"GRPC_TOKEN": swarm.token("grpc_client_token")},
    }
    try:
        clients = [
            ContainerClient(swarm.network, swarm.tag, client, STREAM, settings[client], str(ca_file))
            for client in CLIENTS
        ]
        time.sleep(SECONDS_BEFORE_KILLS)
        for service in KILLED:
            docker("kill", swarm.tasks(service)[0])
        docker("kill", hubs[0])  # the first listener's hub: it must resume on another
        time.sleep(SECONDS_BEFORE_UPDATE)
        for service in ROLLED:
            docker("service", "update", "--force", "--detach", f"{swarm.name}_{service}")
        outcomes = [client.finish() for client in clients]
        for outcome in outcomes:
            assert outcome.returncode == 0, f"{outcome.client} failed:\n{outcome.stderr[-2000:]}"
            assert len(outcome.stored) == COUNT
        expected = before + len(CLIENTS) * COUNT
        wait_for(lambda: swarm.total() >= expected, timeout=120, what=f"{expected} messages stored")
        rows = [
            (int(i), key or None, message)
            for i, key, message in swarm.psql("SELECT id, idempotency_key, message FROM messages ORDER BY id")
        ]
        assert_reported_stored_once(rows, outcomes)
        total = swarm.total()
        assert [row[0] for row in rows] == list(range(1, total + 1)), "ids are not 1..N"
        assert total == expected
        heard = [listener.finish(total) for listener in listeners]
    finally:
        for listener in listeners:
            listener.stop()
    assert_each_heard_all(hub_ips, heard, before, total)
    assert len(heard[0].addresses) >= 2, f"the listener on the killed hub never reconnected: {heard[0].addresses}"
    for service in ROLLED:
        wait_for(lambda: swarm.update_state(service) == "completed", timeout=180, what=f"{service} update completed")  # noqa: B023
    wait_for(lambda: len(swarm.client_log_ids()) >= total, timeout=60, what="websocket-client caught up")
    assert swarm.client_log_ids() == list(range(1, total + 1)), "websocket-client log is not 1..N once each"
