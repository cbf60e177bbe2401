"""Fail loudly, heal alone: faults injected from outside the services, on a stack of this module's own.

- A constraint that refuses one text, added to the running database: over
  each protocol under load that message is refused with the database's
  reason (REST 500, gRPC INTERNAL, AMQP dead-lettered), everything else is
  stored once with gap-free ids, and no service restarts.
- A row that no service can read (a `via` the code does not know): the hub
  and the consumer end loudly and are restarted until the row is fixed, then
  heal with nothing lost; REST and gRPC answer that request with a JSON 500 /
  INTERNAL and keep serving.
- A hub that sends the websocket client a frame it cannot read: the client
  exits with a non-zero status instead of staying up and printing nothing.
- A frozen database (docker pause): REST answers 503 and gRPC UNAVAILABLE
  within the statement timeout instead of hanging, gRPC health turns
  NOT_SERVING, and after the thaw a retry with the same key stores once.
- A database alive but stuck (the counter row locked by another session):
  PostgreSQL cancels each store at the statement timeout, nothing of it is
  stored, and the same keys store once afterwards.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator

import grpc
import pika
import pytest
import requests
from grpc_health.v1 import health_pb2
from suite.v1 import messages_pb2, messages_pb2_grpc

from grpc_server.__main__ import MESSAGE_SERVICE
from harness.stack import CLIENTS, LONG_RUNNING, Stack, wait_for

from .checks import assert_ids_gap_free
from .conftest import stack_of_its_own
from .listener import ResumingListener
from .load import start_streams

SERVERS = ["rest-server", "grpc-server", "rabbitmq-server", "websocket-hub"]
DEAD_LETTER_QUEUE = "messages.dead-letter"
POISON = "veneno"
STREAM = ["--count", "60", "--rate", "30", "--concurrency", "4", "--retries", "40"]


@pytest.fixture(scope="module")
def faults_stack(images: None) -> Iterator[Stack]:
    with stack_of_its_own("healing") as stack:
        yield stack


def restarts(stack: Stack, service: str) -> int:
    container = stack.compose("ps", "-q", service).stdout.strip()
    inspected = subprocess.run(
        ["docker", "inspect", "-f", "{{.RestartCount}}", container], capture_output=True, text=True, check=True
    )
    return int(inspected.stdout.strip())


def publish(stack: Stack, text: str, message_id: str) -> None:
    with stack.amqp_channel() as channel:
        channel.basic_publish(
            "messages",
            "messages",
            text.encode(),
            pika.BasicProperties(message_id=message_id, delivery_mode=2),
            mandatory=True,
        )


def dead_letters(stack: Stack) -> dict[str, str]:
    """message_id -> x-rejection-reason of everything in the dead-letter queue (taken out of it)."""
    found: dict[str, str] = {}
    with stack.amqp_channel() as channel:
        while True:
            method, properties, _ = channel.basic_get(DEAD_LETTER_QUEUE, auto_ack=True)
            if method is None:
                return found
            found[str(properties.message_id)] = str((properties.headers or {}).get("x-rejection-reason"))


def test_a_message_the_database_refuses_is_refused_alone_under_load(faults_stack: Stack) -> None:
    stack = faults_stack
    stack.wait_healthy(LONG_RUNNING)
    restarts_before = {service: restarts(stack, service) for service in SERVERS}
    before = stack.total()
    stack.query(f"ALTER TABLE messages ADD CONSTRAINT no_veneno CHECK (message <> '{POISON}') NOT VALID")
    try:
        with ResumingListener(stack, after=before) as listener:
            streams = start_streams(stack, CLIENTS, *STREAM)
            time.sleep(1)
            rest = stack.run_client("rest-client", "antes", POISON, "después")
            grpc = stack.run_client("grpc-client", POISON)
            batch = requests.post(
                f"{stack.rest_url}/messages/batch",
                json={"messages": [{"message": "lote bueno"}, {"message": POISON}]},
                timeout=30,
            )
            amqp_key = f"veneno-{uuid.uuid4()}"
            publish(stack, POISON, amqp_key)
            outcomes = [s.finish() for s in streams]

            # REST and gRPC: the client names the message and the database's reason, and exits 1.
            assert rest.returncode == 1, rest.stderr
            assert "message 2 (key=" in rest.stderr and "no_veneno" in rest.stderr, rest.stderr
            assert "HTTP 500: the database refused the message" in rest.stderr
            assert len(rest.stdout.splitlines()) == 2  # "antes" and "después" were stored
            assert grpc.returncode == 1 and "INTERNAL: the database refused the message" in grpc.stderr, grpc.stderr
            assert "no_veneno" in grpc.stderr and "INSERT" not in grpc.stderr
            assert batch.status_code == 500 and "no_veneno" in batch.json()["detail"], batch.text
            # AMQP: dead-lettered with the database's reason; the others stored.
            reasons = wait_for(lambda: dead_letters(stack), timeout=60, what="the refused delivery dead-lettered")
            assert list(reasons) == [amqp_key] and "no_veneno" in reasons[amqp_key], reasons
            for outcome in outcomes:
                assert outcome.returncode == 0 and len(outcome.stored) == 60, outcome.stderr[-2000:]
            keys = [key for outcome in outcomes for key in outcome.stored]
            wait_for(
                lambda: (
                    stack.query("SELECT count(*) FROM messages WHERE idempotency_key = ANY(%s)", (keys,))[0][0]
                    == len(keys)
                ),
                timeout=60,
                what="every load message stored",
            )
            assert stack.query("SELECT count(*) FROM messages WHERE message = %s", (POISON,)) == [(0,)]
            assert stack.query("SELECT count(*) FROM messages WHERE message = 'lote bueno'") == [(0,)]  # all or none
            total = assert_ids_gap_free(stack)
            assert total == before + 180 + 2
            listener.wait_until(total)
            assert listener.ids() == list(range(before + 1, total + 1))
        assert {service: restarts(stack, service) for service in SERVERS} == restarts_before
        assert set(stack.states().values()) == {"healthy"}
    finally:
        stack.query("ALTER TABLE messages DROP CONSTRAINT IF EXISTS no_veneno")


def test_a_row_no_service_can_read_ends_the_hub_and_consumer_until_it_is_fixed(faults_stack: Stack) -> None:
    stack = faults_stack
    stack.wait_healthy(LONG_RUNNING)
    hub_restarts, consumer_restarts = restarts(stack, "websocket-hub"), restarts(stack, "rabbitmq-server")
    server_restarts = {s: restarts(stack, s) for s in ("rest-server", "grpc-server")}
    key = f"corrupto-{uuid.uuid4()}"
    before = stack.total()
    with ResumingListener(stack, after=before) as listener:
        stack.query("ALTER TABLE messages DROP CONSTRAINT messages_via_check")
        try:
            stack.query(
                "WITH t AS (UPDATE stream SET total = total + 1 RETURNING total) "
                "INSERT INTO messages (id, via, message, idempotency_key) SELECT total, 'SMTP', 'fila rara', %s FROM t "
                "RETURNING pg_notify('messages', id::text)",
                (key,),
            )
            wait_for(lambda: restarts(stack, "websocket-hub") > hub_restarts, timeout=90, what="the hub restarted")
            assert "failed; exiting so that the service is restarted" in stack.compose("logs", "websocket-hub").stdout

            # The servers answer the request that meets the row, and go on serving.
            response = requests.post(
                f"{stack.rest_url}/messages", json={"message": "otra"}, headers={"Idempotency-Key": key}, timeout=30
            )
            assert response.status_code == 500, response.text
            assert response.json() == {"detail": "internal error; see the rest-server log"}
            grpc = stack.run_client("grpc-client", "--idempotency-key", key, "otra")
            assert grpc.returncode == 1 and "INTERNAL" in grpc.stderr and "Traceback" not in grpc.stderr
            publish(stack, "otra", key)
            wait_for(
                lambda: restarts(stack, "rabbitmq-server") > consumer_restarts, timeout=90, what="consumer restarted"
            )
            assert {s: restarts(stack, s) for s in server_restarts} == server_restarts
        finally:
            stack.query("UPDATE messages SET via = 'REST' WHERE idempotency_key = %s", (key,))
            stack.query(
                "ALTER TABLE messages ADD CONSTRAINT messages_via_check CHECK (via IN ('GRPC', 'REST', 'RabbitMQ'))"
            )
        stack.wait_healthy(LONG_RUNNING, timeout=240)
        # Healed: the consumer acknowledged the redelivered message (a repeated key stores nothing).
        wait_for(lambda: queue_depth(stack, "messages") == 0, timeout=60, what="the messages queue drained")
        after = stack.run_client("rest-client", "ya sano")
        assert after.returncode == 0, after.stderr
        total = assert_ids_gap_free(stack)
        assert total == before + 2
        listener.wait_until(total)
        assert listener.ids() == list(range(before + 1, total + 1))
        assert [f["message"] for f in listener.frames] == ["fila rara", "ya sano"]


def grpc_health(stack: Stack) -> int:
    with stack.grpc_channel() as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        status: int = check(health_pb2.HealthCheckRequest(service=MESSAGE_SERVICE), timeout=10).status
        return status


def send_grpc(stack: Stack, text: str, key: str) -> messages_pb2.SendMessageResponse:
    with stack.grpc_channel() as channel:
        stub = messages_pb2_grpc.MessageServiceStub(channel)
        request = messages_pb2.SendMessageRequest(message=text, idempotency_key=key)
        response: messages_pb2.SendMessageResponse = stub.SendMessage(request, timeout=30)
        return response


def post_rest(stack: Stack, text: str, key: str) -> requests.Response:
    return requests.post(
        f"{stack.rest_url}/messages", json={"message": text}, headers={"Idempotency-Key": key}, timeout=30
    )


def assert_refused_as_unavailable(stack: Stack, text: str, rest_key: str, grpc_key: str) -> None:
    """REST answers 503 and gRPC UNAVAILABLE (which clients retry), inside the 30 s these calls allow."""
    response = post_rest(stack, text, rest_key)
    assert response.status_code == 503, response.text
    with pytest.raises(grpc.RpcError) as refused:
        send_grpc(stack, text, grpc_key)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()


def test_a_frozen_database_gets_clear_refusals_not_hung_requests_and_a_retry_stores_once(faults_stack: Stack) -> None:
    """docker pause: the database's sockets stay open and nothing answers (as with a disk that stalls).

    Each store waits DATABASE_STATEMENT_TIMEOUT_SECONDS (5 s) and one more at most, and gRPC health
    turns NOT_SERVING. A statement the servers gave up on may still commit when the database thaws;
    the same key then stores nothing.
    """
    stack = faults_stack
    stack.wait_healthy(LONG_RUNNING)
    rest_key, grpc_key = f"helado-rest-{uuid.uuid4()}", f"helado-grpc-{uuid.uuid4()}"
    before = stack.total()
    stack.compose("pause", "database")
    try:
        assert_refused_as_unavailable(stack, "helado", rest_key, grpc_key)
        wait_for(
            lambda: grpc_health(stack) == health_pb2.HealthCheckResponse.NOT_SERVING, timeout=30, what="NOT_SERVING"
        )
    finally:
        stack.compose("unpause", "database")
    wait_for(lambda: grpc_health(stack) == health_pb2.HealthCheckResponse.SERVING, timeout=60, what="SERVING again")
    retried = post_rest(stack, "helado", rest_key)
    assert retried.status_code in (200, 201), retried.text
    assert send_grpc(stack, "helado", grpc_key).via == "GRPC"
    stored = stack.query(
        "SELECT idempotency_key, count(*) FROM messages WHERE idempotency_key = ANY(%s) GROUP BY 1",
        ([rest_key, grpc_key],),
    )
    assert dict(stored) == {rest_key: 1, grpc_key: 1}
    assert assert_ids_gap_free(stack) == before + 2


def test_a_store_held_past_the_bound_is_cancelled_by_the_database_and_stores_nothing(faults_stack: Stack) -> None:
    """The counter row locked by another session (a database alive but stuck): each store is cancelled by
    PostgreSQL after DATABASE_STATEMENT_TIMEOUT_SECONDS and stores nothing when the lock goes; the same
    keys then store once."""
    stack = faults_stack
    stack.wait_healthy(LONG_RUNNING)
    rest_key, grpc_key = f"retenido-rest-{uuid.uuid4()}", f"retenido-grpc-{uuid.uuid4()}"
    before = stack.total()
    with stack.database() as holder:
        holder.autocommit = False
        with holder.cursor() as cursor:
            cursor.execute("SELECT total FROM stream FOR UPDATE")
        assert_refused_as_unavailable(stack, "retenido", rest_key, grpc_key)
        holder.rollback()
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%store_messages%'"
    assert stack.query(waiting)[0][0] == 0  # cancelled, not left queued behind the lock
    stored = stack.query("SELECT count(*) FROM messages WHERE idempotency_key = ANY(%s)", ([rest_key, grpc_key],))
    assert stored == [(0,)] and stack.total() == before
    again = post_rest(stack, "retenido", rest_key)
    assert again.status_code == 201, again.text  # stored now, not the answer of an earlier store
    assert not send_grpc(stack, "retenido", grpc_key).repeated
    assert assert_ids_gap_free(stack) == before + 2


def queue_depth(stack: Stack, queue: str) -> int:
    with stack.amqp_channel() as channel:
        return int(channel.queue_declare(queue, passive=True).method.message_count)


FAKE_HUB = """
import asyncio, websockets.asyncio.server as s
async def hello(ws):
    await ws.send('{"nonsense": true}')
    await asyncio.sleep(30)
async def main():
    async with s.serve(hello, "0.0.0.0", 9000):
        await asyncio.sleep(120)
asyncio.run(main())
"""


def test_the_websocket_client_exits_on_a_frame_it_cannot_read(faults_stack: Stack) -> None:
    stack = faults_stack
    name = f"{stack.project}-fakehub"
    stack.compose(
        "run", "-d", "--rm", "--no-deps", "--name", name, "--entrypoint", "python", "websocket-client", "-c", FAKE_HUB
    )
    try:
        time.sleep(2)
        result = stack.compose(
            "run",
            "--rm",
            "--no-deps",
            "-T",
            "-e",
            f"HUB_URL=ws://{name}:9000/notifications",
            "-e",
            "CURSOR_FILE=/tmp/cursor.json",
            "websocket-client",
            check=False,
            timeout=120,
        )
        assert result.returncode == 70, (result.returncode, result.stderr[-2000:])
        assert "listening to the hub failed; exiting" in result.stderr
        assert "Se ingresó" not in result.stdout
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
