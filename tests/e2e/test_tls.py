"""TLS=on, on one stack of its own: every protocol works with the suite's CA and refuses whoever lacks it.

The stack starts as `docker compose up` does (the demo clients must succeed,
so every healthcheck and every server-to-database and consumer-to-broker
connection works under TLS); then each protocol is tried from the host with
the CA (works), with another CA (refused) and in plain text (refused).
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pika
import pika.exceptions
import psycopg2
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from suite.v1 import messages_pb2, messages_pb2_grpc
from websockets.exceptions import InvalidMessage
from websockets.sync.client import connect

from harness.stack import CLIENTS, Stack, receive_frames, wait_for
from msgsuite.certificates import make_ca

from .conftest import stack_of_its_own

SERVERS = ("rest-server", "grpc-server", "rabbitmq-server", "websocket-hub")


@pytest.fixture(scope="module")
def tls_stack(images: None) -> Iterator[Stack]:
    with stack_of_its_own("tls", env={"TLS": "on"}) as own:
        yield own


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A CA that is not the suite's: a server it cannot vouch for must be refused."""
    certificate, _key = make_ca()
    path: Path = tmp_path_factory.mktemp("other-ca") / "ca.crt"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return str(path)


def test_rest_is_https_with_the_ca_and_refused_without_it(tls_stack: Stack, other_ca: str) -> None:
    url = tls_stack.rest_url
    assert url.startswith("https://")
    response = requests.post(f"{url}/messages", json={"message": "tls rest"}, verify=tls_stack.ca_file, timeout=10)
    assert response.status_code == 201, response.text
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{url}/health", verify=other_ca, timeout=10)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url.replace("https://", "http://") + "/health", timeout=10)


def test_grpc_uses_tls_credentials_and_refuses_plain_text_and_strangers(tls_stack: Stack, other_ca: str) -> None:
    request = messages_pb2.SendMessageRequest(message="tls grpc", idempotency_key=str(uuid.uuid4()))
    with tls_stack.grpc_channel() as channel:
        response = messages_pb2_grpc.MessageServiceStub(channel).SendMessage(request, timeout=10)
        assert response.id > 0
    with grpc.insecure_channel(tls_stack.grpc_target) as channel, pytest.raises(grpc.RpcError) as plain:
        messages_pb2_grpc.MessageServiceStub(channel).SendMessage(request, timeout=5)
    assert plain.value.code() == grpc.StatusCode.UNAVAILABLE
    stranger = grpc.ssl_channel_credentials(root_certificates=Path(other_ca).read_bytes())
    with grpc.secure_channel(tls_stack.grpc_target, stranger) as channel, pytest.raises(grpc.RpcError) as refused:
        messages_pb2_grpc.MessageServiceStub(channel).SendMessage(request, timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_the_hub_serves_wss_with_the_ca_and_refuses_ws_and_strangers(tls_stack: Stack, other_ca: str) -> None:
    before = tls_stack.total()
    with tls_stack.listen(after=before) as listener:
        response = requests.post(
            f"{tls_stack.rest_url}/messages", json={"message": "tls wss"}, verify=tls_stack.ca_file, timeout=10
        )
        assert response.status_code == 201
        (frame,) = receive_frames(listener, until_id=before + 1)
        assert frame["message"] == "tls wss"
    assert requests.get(tls_stack.hub_url.replace("wss://", "https://") + "/health", verify=tls_stack.ca_file).ok
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(f"{tls_stack.hub_url}/notifications", open_timeout=10, ssl=ssl.create_default_context(cafile=other_ca))
    with pytest.raises((InvalidMessage, OSError, EOFError)):
        connect(tls_stack.hub_url.replace("wss://", "ws://") + "/notifications", open_timeout=10)


def test_postgresql_takes_tls_only_and_every_server_uses_it(tls_stack: Stack, other_ca: str) -> None:
    # The harness connects with sslmode=verify-full and the suite's CA.
    application_names = {row[0] for row in tls_stack.query("SELECT application_name FROM pg_stat_activity")}
    assert set(SERVERS) <= application_names
    plain = tls_stack.query(
        "SELECT a.application_name FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)"
        " WHERE a.backend_type = 'client backend' AND NOT s.ssl"
    )
    assert plain == [], f"connections without TLS: {plain}"
    address = {
        "host": "127.0.0.1",
        "port": tls_stack.port("database", 5432),
        "dbname": "suite",
        "user": "suite",
        "password": tls_stack.secret("postgres_password"),
        "connect_timeout": 5,
    }
    with pytest.raises(psycopg2.OperationalError, match=r"no encryption|SSL off"):
        psycopg2.connect(**address, sslmode="disable")
    with pytest.raises(psycopg2.OperationalError, match="certificate verify failed"):
        psycopg2.connect(**address, sslmode="verify-full", sslrootcert=other_ca)


def test_rabbitmq_takes_amqps_only_and_the_consumer_uses_it(tls_stack: Stack, other_ca: str) -> None:
    with tls_stack.amqp_channel() as channel:
        channel.basic_publish(
            "messages",
            "messages",
            b"tls amqp",
            pika.BasicProperties(message_id=str(uuid.uuid4()), delivery_mode=2),
            mandatory=True,
        )
    wait_for(lambda: tls_stack.query("SELECT 1 FROM messages WHERE message = 'tls amqp'"), what="stored")
    connections = tls_stack.compose(
        "exec", "-T", "rabbitmq", "rabbitmqctl", "-q", "list_connections", "client_properties", "ssl"
    ).stdout
    assert "rabbitmq-server" in connections
    assert "false" not in connections.split(), connections
    credentials = pika.PlainCredentials("suite", tls_stack.secret("rabbitmq_password"))
    plain = pika.ConnectionParameters(
        "127.0.0.1", tls_stack.port("rabbitmq", 5672), credentials=credentials, connection_attempts=1, socket_timeout=5
    )
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(plain).close()
    stranger = pika.ConnectionParameters(
        "127.0.0.1",
        tls_stack.port("rabbitmq", 5671),
        credentials=credentials,
        connection_attempts=1,
        socket_timeout=5,
        ssl_options=pika.SSLOptions(ssl.create_default_context(cafile=other_ca), "127.0.0.1"),
    )
    with pytest.raises(ssl.SSLCertVerificationError):  # pika lets the handshake's own error through
        pika.BlockingConnection(stranger).close()


def test_the_clients_and_the_websocket_client_work_unchanged(tls_stack: Stack) -> None:
    """The demo clients already ran on `up` (the fixture checks it); the README's commands, as typed, work too."""
    texts = {client: f"hola por TLS desde {client}" for client in CLIENTS}
    for client, text in texts.items():
        result = tls_stack.run_client(client, text)
        assert result.returncode == 0, f"{client}: {result.stderr[-2000:]}"
    for client, text in texts.items():
        via = {"grpc-client": "GRPC", "rest-client": "REST", "rabbitmq-client": "RabbitMQ"}[client]
        expected = f"mediante {via} , con el mensaje {text}, total de mensajes "
        wait_for(
            lambda expected=expected: any(expected in line for line in tls_stack.notification_lines()),
            what=f"the websocket client printing {client}'s message",
        )
