"""Security basics: ports, users, credentials, text shown as text."""

from __future__ import annotations

import json
import subprocess

import requests

from harness.stack import CLIENTS, LONG_RUNNING, ROOT, Stack
from msgsuite.secret_plan import DATABASE_ROLE_SECRETS, SECRETS_FOR

PUBLISHED = {
    "database": {5432},
    "rabbitmq": {5671, 5672, 15672},  # 5671: AMQPS, listening with TLS=on only
    "grpc-server": {50051},
    "rest-server": {8000},
    "websocket-hub": {8765},
}
PYTHON_SERVICES = ["grpc-server", "rest-server", "rabbitmq-server", "websocket-hub", "websocket-client"]


def compose_config(stack: Stack) -> dict[str, dict[str, dict[str, object]]]:
    return json.loads(stack.compose("config", "--format", "json").stdout)


def test_only_the_designed_ports_are_published_and_only_on_loopback(stack: Stack) -> None:
    services = compose_config(stack)["services"]
    published = {}
    for name, service in services.items():
        for port in service.get("ports", []):  # type: ignore[union-attr]
            assert port["host_ip"] == "127.0.0.1", f"{name} publishes {port} beyond loopback"
            published.setdefault(name, set()).add(int(port["target"]))
    assert published == PUBLISHED
    for row in stack._ps(all_containers=False):
        for publisher in row.get("Publishers") or []:  # type: ignore[union-attr]
            if publisher.get("PublishedPort"):
                assert publisher["URL"] in ("127.0.0.1", ""), f"{row['Service']} listens on {publisher['URL']}"


def test_python_containers_run_as_a_non_root_user(healthy: Stack) -> None:
    for service in PYTHON_SERVICES:
        uid = healthy.compose("exec", "-T", service, "id", "-u").stdout.strip()
        assert uid not in ("", "0"), f"{service} runs as uid {uid!r}"


def test_credentials_come_from_the_environment_not_the_code(healthy: Stack) -> None:
    services = compose_config(healthy)["services"]
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():  # type: ignore[union-attr]
            if "PASSWORD" in key and not key.endswith("_FILE"):
                assert not value, f"{name} gets {key} as a literal value"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for secret_name in ("postgres_password", "rabbitmq_password", *DATABASE_ROLE_SECRETS):
        secret = healthy.secret(secret_name)
        assert len(secret) >= 20
        for path in tracked.splitlines():
            file = ROOT / path
            if file.is_file():
                assert secret not in file.read_text(encoding="utf-8", errors="replace"), f"{secret_name} in {path}"


def test_sql_and_html_looking_messages_are_stored_and_shown_as_plain_text(healthy: Stack) -> None:
    tables_before = healthy.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    for message in ["'; DROP TABLE messages; --", "<img src=x onerror=alert(1)>"]:
        response = requests.post(f"{healthy.rest_url}/messages", json={"message": message}, timeout=10)
        assert response.status_code == 201
        stored = healthy.query("SELECT message FROM messages WHERE id = %s", (response.json()["id"],))
        assert stored == [(message,)]
    assert healthy.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == tables_before
    healthy.wait_healthy(LONG_RUNNING)


def test_each_container_holds_only_its_own_secrets(healthy: Stack) -> None:
    """Read from inside every container: a file it should not have fails the test, whatever the plan says."""
    held = {}
    for service in LONG_RUNNING:
        held[service] = healthy.compose("exec", "-T", service, "ls", "-A", "/run/suite-secrets").stdout.split()
    for service in ["migrate", *CLIENTS]:
        listing = healthy.compose(
            "run", "--rm", "--no-deps", "-T", "--entrypoint", "ls", service, "-A", "/run/suite-secrets"
        )
        held[service] = listing.stdout.split()
    assert held == {service: sorted(SECRETS_FOR[service]) for service in held}
    for client in [*CLIENTS, "websocket-client"]:
        assert "postgres_password" not in held[client]


# Capabilities a container may add back: none (README, "Hardened containers"). PostgreSQL and RabbitMQ run as
# their own users from the start, so their entrypoints need none.
CAPABILITIES_ADDED: dict[str, set[str]] = {}


def test_every_container_is_hardened(stack: Stack) -> None:
    """docker inspect of every container of the stack, the one-shots and clients that ran included: a read-only
    root, no-new-privileges, every capability dropped, and a non-root user from the start."""
    rows = stack._ps(all_containers=True)
    seen = set()
    for row in rows:
        service = str(row["Service"])
        (inspected,) = json.loads(
            subprocess.run(["docker", "inspect", str(row["ID"])], capture_output=True, text=True, check=True).stdout
        )
        host = inspected["HostConfig"]
        assert host["ReadonlyRootfs"] is True, f"{service}: writable root filesystem"
        assert "no-new-privileges:true" in (host["SecurityOpt"] or []), f"{service}: {host['SecurityOpt']}"
        assert host["CapDrop"] == ["ALL"], f"{service} drops {host['CapDrop']}"
        added = {cap.removeprefix("CAP_") for cap in host["CapAdd"] or []}
        assert added == CAPABILITIES_ADDED.get(service, set()), f"{service} adds {added}"
        assert not host["Privileged"], service
        assert inspected["Config"]["User"] not in ("", "0", "root", "0:0"), f"{service} starts as root"
        seen.add(service)
    assert {*LONG_RUNNING, *CLIENTS, "secrets", "migrate"} <= seen
