"""Drives the real stack through docker compose under the test's own project name."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import grpc
import pika
import psycopg2
import psycopg2.extensions
from websockets.sync.client import ClientConnection, connect

from msgsuite.notification import NOTIFICATION_PREFIX

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
ROOT = Path(__file__).resolve().parents[1]
LONG_RUNNING = [
    "database",
    "rabbitmq",
    "grpc-server",
    "rest-server",
    "rabbitmq-server",
    "websocket-hub",
    "websocket-client",
]
CLIENTS = ["grpc-client", "rest-client", "rabbitmq-client"]
# Empty host ports make Docker choose free ones: the tests never collide with a running suite.
EPHEMERAL_PORTS = dict.fromkeys(
    (
        "DATABASE_HOST_PORT",
        "RABBITMQ_HOST_PORT",
        "RABBITMQ_MANAGEMENT_HOST_PORT",
        "RABBITMQ_TLS_HOST_PORT",
        "GRPC_HOST_PORT",
        "REST_HOST_PORT",
        "HUB_HOST_PORT",
        "PROMETHEUS_HOST_PORT",
    ),
    "",
)


class Stack:
    def __init__(self, project: str) -> None:
        self.project = project
        # Names and passwords of the test's own, so a developer's .env cannot change them.
        self.env = {
            **os.environ,
            **EPHEMERAL_PORTS,
            "COMPOSE_PROJECT_NAME": project,
            "POSTGRES_DB": "suite",
            "POSTGRES_USER": "suite",
            "RABBITMQ_USER": "suite",
            "POSTGRES_PASSWORD": "",
            "RABBITMQ_PASSWORD": "",
            "LOG_LEVEL": "INFO",
            # Images of the tests' own tag, shared by every stack the tests start.
            "MSGSUITE_VERSION": os.environ.get("E2E_IMAGE_TAG", "e2e"),
        }
        self._ports: dict[tuple[str, int], int] = {}
        self._secrets: dict[str, str] = {}
        self._ca_file: str | None = None

    def compose(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["docker", "compose", "-p", self.project, *args],
            cwd=ROOT,
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"docker compose {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}{self._failed_one_shot_logs(result.stderr)}"
            )
        return result

    def _failed_one_shot_logs(self, output: str) -> str:
        """The last lines of a dependency that compose says did not complete (migrate, secrets)."""
        failed = sorted(set(re.findall(r'service "([\w-]+)" didn\'t complete successfully', output)))
        if not failed:
            return ""
        logs = self.compose("logs", "--no-color", "--tail", "20", *failed, check=False)
        return f"\nlast lines of {', '.join(failed)}:\n{logs.stdout[-3000:]}"

    # -- lifecycle -------------------------------------------------------------
    def up(self, *services: str, scale: dict[str, int] | None = None) -> None:
        """scale: replicas per service (`up --scale`); every replica must become healthy."""
        flags = [f"--scale={service}={n}" for service, n in (scale or {}).items()]
        self.compose("up", "-d", *flags, *services)
        self.wait_healthy([s for s in (services or LONG_RUNNING) if s in LONG_RUNNING])
        self._ports.clear()

    def wait_healthy(self, services: Sequence[str], timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            states = self.states()
            waiting = [s for s in services if states.get(s) != "healthy"]
            if not waiting:
                return
            if time.monotonic() > deadline:
                logs = self.compose("logs", "--tail", "30", *waiting, check=False).stdout
                raise TimeoutError(f"not healthy after {timeout:.0f} s: {waiting} ({states})\n{logs}")
            time.sleep(1)

    def wait_exited(self, services: Sequence[str], timeout: float = 180) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self._ps(all_containers=True)
            codes = {
                r["Service"]: r.get("ExitCode", 0) for r in rows if r["Service"] in services and r["State"] == "exited"
            }
            if len(codes) == len(services):
                return codes
            time.sleep(1)
        raise TimeoutError(f"{services} did not exit within {timeout:.0f} s")

    def states(self) -> dict[str, str]:
        """Per service its state, or with several replicas the first that is not healthy."""
        states: dict[str, str] = {}
        for r in self._ps(all_containers=False):
            service = str(r["Service"])
            if states.get(service, "healthy") == "healthy":
                states[service] = str(r.get("Health") or r["State"])
        return states

    def containers(self) -> list[dict[str, object]]:
        """One row per running container (several per service when scaled)."""
        return self._ps(all_containers=False)

    def _ps(self, all_containers: bool) -> list[dict[str, object]]:
        out = self.compose("ps", "--format", "json", *(["--all"] if all_containers else [])).stdout.strip()
        if not out:
            return []
        # compose prints a JSON array (older) or one object per line (newer)
        if out.startswith("["):
            return json.loads(out)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def down(self, volumes: bool) -> None:
        self.compose("down", "--remove-orphans", *(["-v"] if volumes else []), timeout=300)
        self._ports.clear()
        if volumes:
            self._secrets.clear()
            self._ca_file = None

    # -- addresses -------------------------------------------------------------
    @property
    def network(self) -> str:
        """The compose network every service is on (`docker run --network` joins it)."""
        return f"{self.project}_suite"

    def address(self, container: str) -> str:
        """A container's own address on the stack's network (a service name means its first container).

        A Linux host reaches it directly, without the userland proxy behind the published ports,
        which costs the benchmark CPU and a copy of every byte. Docker Desktop does not route it.
        """
        if not container.startswith(f"{self.project}-"):
            container = self.compose("ps", "-q", container).stdout.split()[0]
        template = f'{{{{(index .NetworkSettings.Networks "{self.network}").IPAddress}}}}'
        inspected = subprocess.run(
            ["docker", "inspect", "-f", template, container], capture_output=True, text=True, check=True, timeout=30
        )
        return inspected.stdout.strip()

    def port(self, service: str, container_port: int) -> int:
        key = (service, container_port)
        if key not in self._ports:
            out = self.compose("port", service, str(container_port)).stdout.strip()
            self._ports[key] = int(out.rsplit(":", 1)[1])
        return self._ports[key]

    def forget_ports(self) -> None:
        """A restarted container gets new ephemeral host ports."""
        self._ports.clear()

    def restart(self, *services: str) -> None:
        self.compose("restart", *services)
        self.forget_ports()

    # -- TLS (stack.env["TLS"] = "on" before start) -------------------------------
    @property
    def tls(self) -> bool:
        return self.env.get("TLS") == "on"

    @property
    def ca_file(self) -> str:
        """The stack's CA certificate (made by its secrets one-shot), in a file of the test's own."""
        if self._ca_file is None:
            with tempfile.NamedTemporaryFile("w", prefix=f"{self.project}-", suffix="-ca.crt", delete=False) as file:
                file.write(self.secret("ca.crt") + "\n")
            self._ca_file = file.name
        return self._ca_file

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts the stack's CA (and checks the name: 127.0.0.1 and localhost are in every certificate)."""
        return ssl.create_default_context(cafile=self.ca_file)

    @property
    def verify(self) -> str | bool:
        """For requests' verify=: the stack's CA with TLS on."""
        return self.ca_file if self.tls else True

    def grpc_channel(self) -> grpc.Channel:
        if not self.tls:
            return grpc.insecure_channel(self.grpc_target)
        with open(self.ca_file, "rb") as ca:
            return grpc.secure_channel(self.grpc_target, grpc.ssl_channel_credentials(root_certificates=ca.read()))

    @property
    def rest_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port('rest-server', 8000)}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.port('grpc-server', 50051)}"

    @property
    def hub_url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port('websocket-hub', 8765)}"

    def secret(self, name: str) -> str:
        """A secret as the `secrets` one-shot made it (from its volume, which holds them all)."""
        if name not in self._secrets:
            read = self.compose(
                "run", "--rm", "--no-deps", "-T", "--entrypoint", "cat", "secrets", f"/run/suite-secrets/{name}"
            )
            self._secrets[name] = read.stdout.strip()
        return self._secrets[name]

    def forget_secret(self, name: str) -> None:
        """After a secret was rotated: the next secret(name) reads it again."""
        self._secrets.pop(name, None)

    # -- clients and observations ---------------------------------------------
    def run_client(
        self, service: str, *args: str, input: str | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        return self.compose("run", "--rm", "--no-deps", "-T", service, *args, check=False, input=input, timeout=timeout)

    def client_log(self) -> str:
        """The websocket-client's output across its restarts, without terminal escapes."""
        out = self.compose("logs", "--no-log-prefix", "--no-color", "websocket-client").stdout
        return _ANSI_ESCAPE.sub("", out)

    def notification_lines(self) -> list[str]:
        return [line for line in self.client_log().splitlines() if line.startswith(NOTIFICATION_PREFIX)]

    @contextmanager
    def database(
        self, user: str = "suite", password_secret: str = "postgres_password"
    ) -> Iterator[psycopg2.extensions.connection]:
        """A connection from the host, as the bootstrap superuser unless another role and its secret are named."""
        conn = psycopg2.connect(
            host="127.0.0.1",
            port=self.port("database", 5432),
            dbname="suite",
            user=user,
            password=self.secret(password_secret),
            connect_timeout=5,
            **({"sslmode": "verify-full", "sslrootcert": self.ca_file} if self.tls else {}),
        )
        conn.autocommit = True
        try:
            yield conn
        finally:
            conn.close()

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:  # type: ignore[type-arg]
        with self.database() as conn, conn.cursor() as cursor:
            cursor.execute(sql, params or None)
            return cursor.fetchall() if cursor.description else []

    def total(self) -> int:
        return int(self.query("SELECT total FROM stream")[0][0])

    @contextmanager
    def amqp_channel(self) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
        params = pika.ConnectionParameters(
            host="127.0.0.1",
            port=self.port("rabbitmq", 5671 if self.tls else 5672),
            credentials=pika.PlainCredentials("suite", self.secret("rabbitmq_password")),
            ssl_options=pika.SSLOptions(self.ssl_context(), "127.0.0.1") if self.tls else None,
        )
        connection = pika.BlockingConnection(params)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            yield channel
        finally:
            connection.close()

    def listen(self, after: int = 0, epoch: str | None = None) -> ClientConnection:
        query = f"after={after}" + (f"&epoch={epoch}" if epoch else "")
        return connect(
            f"{self.hub_url}/notifications?{query}",
            compression=None,
            open_timeout=10,
            ssl=self.ssl_context() if self.tls else None,
            additional_headers=self.listener_headers(),
        )

    def listener_headers(self) -> dict[str, str] | None:
        """What a listener presents to this stack's hub: the listeners' token when AUTH=on."""
        return {"Authorization": f"Bearer {self.secret('listener_token')}"} if self.env.get("AUTH") == "on" else None


def receive_frames(listener: ClientConnection, until_id: int, timeout: float = 60) -> list[dict[str, object]]:
    """Frames until one with id >= until_id arrives (or the timeout passes)."""
    frames: list[dict[str, object]] = []
    deadline = time.monotonic() + timeout
    while not frames or int(frames[-1]["id"]) < until_id:  # type: ignore[call-overload]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(
                f"got {len(frames)} frames, last {frames[-1]['id'] if frames else None}, waiting for {until_id}"
            )
        frames.append(json.loads(listener.recv(timeout=remaining)))
    return frames


def wait_for(predicate, timeout: float = 60, interval: float = 0.5, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout:.0f} s")
        time.sleep(interval)
