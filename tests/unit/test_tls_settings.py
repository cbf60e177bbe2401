"""TLS=on|off: what each service and client reads, and a REST client that trusts only the suite's CA."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from msgsuite.amqp import connection_parameters
from msgsuite.certificates import ensure_certificates
from msgsuite.client import Unreachable
from msgsuite.secret_plan import TLS_SERVERS
from msgsuite.settings import BrokerSettings, DatabaseSettings, InvalidSetting
from msgsuite.tls import TlsSettings, secure_url
from rest_client.sender import RestSender


@pytest.fixture
def certificates(tmp_path: Path) -> Path:
    ensure_certificates(tmp_path, TLS_SERVERS)
    return tmp_path


@pytest.fixture
def service_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "POSTGRES_HOST": "database",
        "POSTGRES_DB": "suite",
        "POSTGRES_USER": "suite",
        "POSTGRES_PASSWORD": "pw",
        "RABBITMQ_HOST": "rabbitmq",
        "RABBITMQ_USER": "suite",
        "RABBITMQ_PASSWORD": "pw",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("TLS", "TLS_CA_FILE", "TLS_CERT_FILE", "TLS_KEY_FILE", "RABBITMQ_PORT"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("service_env")
def test_off_by_default_everything_plain_as_before() -> None:
    assert not TlsSettings.from_env("rest-server").enabled
    kwargs = DatabaseSettings.from_env("rest-server").connect_kwargs()
    assert "sslmode" not in kwargs and "sslrootcert" not in kwargs
    broker = BrokerSettings.from_env()
    assert broker.port == 5672
    assert connection_parameters(broker, "test").ssl_options is None
    assert secure_url("ws://websocket-hub:8765/notifications", TlsSettings()) == "ws://websocket-hub:8765/notifications"


@pytest.mark.usefixtures("service_env")
def test_on_every_connection_verifies_the_server_against_the_ca(
    certificates: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TLS", "on")
    ca = str(certificates / "ca.crt")
    monkeypatch.setenv("TLS_CA_FILE", ca)
    monkeypatch.setenv("TLS_CERT_FILE", str(certificates / "rest-server.crt"))
    monkeypatch.setenv("TLS_KEY_FILE", str(certificates / "rest-server.key"))
    kwargs = DatabaseSettings.from_env("rest-server").connect_kwargs()
    assert (kwargs["sslmode"], kwargs["sslrootcert"]) == ("verify-full", ca)
    broker = BrokerSettings.from_env()
    assert broker.port == 5671
    parameters = connection_parameters(broker, "test")
    assert parameters.ssl_options is not None
    assert parameters.ssl_options.server_hostname == "rabbitmq"
    assert parameters.ssl_options.context.verify_mode == ssl.CERT_REQUIRED
    assert parameters.ssl_options.context.check_hostname
    server = TlsSettings.from_env("rest-server")
    assert server.enabled and server.cert_file and server.key_file
    server.server_context()  # the certificate and key load together
    client = TlsSettings.from_env()
    assert client.cert_file is None and client.client_context().verify_mode == ssl.CERT_REQUIRED
    assert secure_url("ws://websocket-hub:8765/notifications", client) == "wss://websocket-hub:8765/notifications"
    assert secure_url("http://rest-server:8000", client) == "https://rest-server:8000"


@pytest.mark.usefixtures("service_env")
@pytest.mark.parametrize("value", ["yes", "ON", "1"])
def test_a_malformed_switch_stops_the_service(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TLS", value)
    with pytest.raises(InvalidSetting, match="TLS must be on or off"):
        DatabaseSettings.from_env("rest-server")


@pytest.mark.usefixtures("service_env")
def test_on_without_the_ca_file_stops_the_service_and_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TLS", "on")
    monkeypatch.setenv("TLS_CA_FILE", str(tmp_path / "missing.crt"))
    with pytest.raises(InvalidSetting, match="TLS_CA_FILE"):
        BrokerSettings.from_env()


@pytest.fixture
def https_server(certificates: Path) -> Iterator[int]:
    class Stored(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps({"id": 7, "repeated": False}).encode()
            self.send_response(201)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stored)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates / "rest-server.crt", certificates / "rest-server.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_the_rest_client_trusts_the_suite_ca_and_nothing_else(certificates: Path, https_server: int) -> None:
    trusting = TlsSettings(ca_file=str(certificates / "ca.crt")).client_context()
    sender = RestSender(f"https://localhost:{https_server}", 5, trusting)
    assert sender.send("hola", "k1").id == 7
    sender.close()
    stranger = RestSender(f"https://localhost:{https_server}", 5)  # the system's CAs only
    with pytest.raises(Unreachable, match="CERTIFICATE_VERIFY_FAILED"):
        stranger.send("hola", "k2")
