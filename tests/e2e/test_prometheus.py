"""Prometheus of the observability profile.

Its configuration and alert rules, checked by promtool (from the Prometheus
image, through Docker), and a stack of its own started with
`--profile observability --scale rest-server=2`, asked through Prometheus'
HTTP API whether it scrapes everything and evaluates its rules.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import psycopg2.extensions
import pytest
import requests

from harness.stack import CLIENTS, LONG_RUNNING, ROOT, Stack, wait_for

from .conftest import BASE_PROJECT

PROMETHEUS_IMAGE = "prom/prometheus:v2.53.3"
CONFIG = ROOT / "observability" / "prometheus"
RULES = CONFIG / "rules" / "msgsuite.yml"
JOBS = {
    "prometheus",
    "rest-server",
    "grpc-server",
    "rabbitmq-server",
    "websocket-hub",
    "websocket-client",
    "rabbitmq",
    "rabbitmq-queues",
    "postgres-exporter",
}
REST_REPLICAS = 2


def alert_names() -> set[str]:
    return set(re.findall(r"^\s*- alert: (\w+)$", RULES.read_text(encoding="utf-8"), re.MULTILINE))


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """promtool of the Prometheus image, with observability/prometheus as /etc/prometheus (as compose mounts it)."""
    mount = f"{CONFIG}:/etc/prometheus:ro"
    return subprocess.run(
        ["docker", "run", "--rm", "-v", mount, "--entrypoint", "promtool", PROMETHEUS_IMAGE, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_configuration_and_its_rules_are_valid() -> None:
    result = promtool("check", "config", "/etc/prometheus/prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in result.stdout + result.stderr


def test_every_alert_passes_its_unit_tests() -> None:
    tests = sorted((CONFIG / "tests").glob("*.yml"))
    assert tests
    text = "\n".join(path.read_text(encoding="utf-8") for path in tests)
    untested = {name for name in alert_names() if f"alertname: {name}\n" not in text}
    assert untested == set(), "alerts with no test case"
    result = promtool("test", "rules", *(f"/etc/prometheus/tests/{path.name}" for path in tests))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


# -- a stack of its own, scraped ----------------------------------------------


@pytest.fixture
def observed(images: None) -> Iterator[Stack]:
    """The whole suite plus Prometheus and postgres-exporter, two rest-server replicas; removed after the test."""
    # "-own-": the test command tears such a project down even when a killed run left it behind.
    stack = Stack(f"{BASE_PROJECT}-own-prom-{uuid.uuid4().hex[:6]}")
    stack.env["COMPOSE_PROFILES"] = "observability"
    try:
        stack.compose("up", "-d", "--scale", f"rest-server={REST_REPLICAS}")
        stack.wait_healthy([*LONG_RUNNING, "prometheus"])
        assert stack.wait_exited(CLIENTS) == dict.fromkeys(CLIENTS, 0)
        yield stack
    finally:
        stack.down(volumes=True)


class PrometheusApi:
    def __init__(self, stack: Stack) -> None:
        self.url = f"http://127.0.0.1:{stack.port('prometheus', 9090)}/api/v1"

    def get(self, path: str, **params: str) -> Any:
        answer = requests.get(f"{self.url}/{path}", params=params, timeout=10)
        answer.raise_for_status()
        body = answer.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expression: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Instant query: labels (sorted, without __name__) -> value."""
        return {
            tuple(sorted((k, v) for k, v in row["metric"].items() if k != "__name__")): float(row["value"][1])
            for row in self.get("query", query=expression)["result"]
        }

    def wait_for_value(self, expression: str, expected: float, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expression)
            if list(result.values()) == [expected]:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{expression} is {result}, not {expected}, after {timeout:.0f} s")
            time.sleep(1)


def wait_until_every_target_is_up(api: PrometheusApi, timeout: float = 90) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        targets: list[dict[str, Any]] = api.get("targets", state="active")["activeTargets"]
        jobs = Counter(target["labels"]["job"] for target in targets)
        if set(jobs) == JOBS and jobs["rest-server"] == REST_REPLICAS and all(t["health"] == "up" for t in targets):
            return targets
        if time.monotonic() > deadline:
            seen = [(t["labels"]["job"], t["labels"]["instance"], t["health"], t["lastError"]) for t in targets]
            raise AssertionError(f"not every target up after {timeout:.0f} s: {seen}")
        time.sleep(1)


def hold_counter_row(stack: Stack, waiters: int, while_held: Callable[[], None]) -> None:
    """Takes the counter row's lock, lines up `waiters` other transactions behind it, runs while_held(), releases."""
    password = stack.secret("postgres_password")
    port = stack.port("database", 5432)

    def connect() -> psycopg2.extensions.connection:
        return psycopg2.connect(host="127.0.0.1", port=port, dbname="suite", user="suite", password=password)

    def wait_in_line() -> None:
        conn = connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute("SET statement_timeout = '120s'")
                cursor.execute("SELECT total FROM stream FOR UPDATE")
            conn.rollback()
        finally:
            conn.close()

    holder = connect()
    threads = [threading.Thread(target=wait_in_line, daemon=True) for _ in range(waiters)]
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT total FROM stream FOR UPDATE")
        for thread in threads:
            thread.start()
        while_held()
    finally:
        holder.rollback()
        holder.close()
        for thread in threads:
            thread.join(timeout=30)


@pytest.mark.slow
def test_prometheus_scrapes_every_service_and_evaluates_the_alerts(observed: Stack) -> None:
    api = PrometheusApi(observed)
    targets = wait_until_every_target_is_up(api)
    assert len({t["labels"]["instance"] for t in targets if t["labels"]["job"] == "rest-server"}) == REST_REPLICAS

    # The services' own metrics, summed over the replicas, agree with the database.
    stored = dict(observed.query("SELECT via, count(*) FROM messages GROUP BY via"))
    assert stored == {"REST": 1, "GRPC": 1, "RabbitMQ": 1}  # one message per demo client
    wait_for(
        lambda: (
            api.query("sum by (via) (msgsuite_messages_stored_total)")
            == {(("via", via),): float(count) for via, count in stored.items()}
        ),
        timeout=30,
        what="msgsuite_messages_stored_total per via equal to the database's count",
    )

    # Every alert loaded and evaluated without error.
    def rules() -> dict[str, str]:
        groups = api.get("rules", type="alert")["groups"]
        return {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}

    wait_for(
        lambda: rules() == dict.fromkeys(alert_names(), "ok"),
        timeout=30,
        what=f"every alert evaluated ({alert_names()})",
    )

    # The series the alerts and an operator read, under the names the alerts use.
    api.wait_for_value('rabbitmq_detailed_queue_messages{queue="messages.dead-letter"}', 0)
    api.wait_for_value('pg_up{job="postgres-exporter"}', 1)
    assert api.query('pg_stat_database_xact_commit{datname="suite"}')
    assert api.query('pg_stat_database_numbackends{datname="suite"}')

    # Lock waits on the counter row: two transactions lined up behind a third are counted, then none.
    api.wait_for_value("pg_counter_row_lock_waits", 0)
    hold_counter_row(observed, 2, lambda: api.wait_for_value("pg_counter_row_lock_waits", 2))
    api.wait_for_value("pg_counter_row_lock_waits", 0)

    # A stopped service leaves DNS and so Prometheus' targets: TargetMissing catches it.
    observed.compose("stop", "websocket-client")
    wait_for(
        lambda: api.query('ALERTS{alertname="TargetMissing"}'),
        timeout=60,
        what="TargetMissing pending for the stopped websocket-client",
    )
    assert set(api.query('ALERTS{alertname="TargetMissing"}')) == {
        (
            ("alertname", "TargetMissing"),
            ("alertstate", "pending"),
            ("job", "websocket-client"),
            ("severity", "critical"),
        )
    }
