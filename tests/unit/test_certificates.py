"""The private CA and the servers' certificates that the secrets one-shot makes, checked in process."""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from msgsuite import secrets_init
from msgsuite.certificates import ensure_certificates
from msgsuite.secret_plan import SECRETS_FOR, TLS_SERVERS, every_secret, is_tls_file


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_each_server_certificate_names_its_service_and_loopback_and_is_signed_by_the_ca(tmp_path: Path) -> None:
    ensure_certificates(tmp_path, TLS_SERVERS)
    ca = load(tmp_path / "ca.crt")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for server in TLS_SERVERS:
        certificate = load(tmp_path / f"{server}.crt")
        certificate.verify_directly_issued_by(ca)  # raises when the CA did not sign it
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.DNSName) == [server, "localhost"]
        assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
        assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        key = (tmp_path / f"{server}.key").read_bytes()
        assert b"PRIVATE KEY" in key
        # The key is the certificate's: the standard library loads them together only then.
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            tmp_path / f"{server}.crt", tmp_path / f"{server}.key"
        )
        assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)


def test_another_ca_does_not_vouch_for_them(tmp_path: Path) -> None:
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        ensure_certificates(tmp_path / name, TLS_SERVERS)
    with pytest.raises(InvalidSignature):
        load(tmp_path / "one" / "rest-server.crt").verify_directly_issued_by(load(tmp_path / "two" / "ca.crt"))


def test_keys_are_private_and_certificates_public(tmp_path: Path) -> None:
    ensure_certificates(tmp_path, TLS_SERVERS)
    assert mode(tmp_path / "ca.key") == 0o400
    assert mode(tmp_path / "ca.crt") == 0o444
    for server in TLS_SERVERS:
        assert mode(tmp_path / f"{server}.key") == 0o400
        assert mode(tmp_path / f"{server}.crt") == 0o444


def test_made_once_and_kept_and_a_new_ca_reissues_every_certificate(tmp_path: Path) -> None:
    written = ensure_certificates(tmp_path, TLS_SERVERS)
    assert sorted(written) == sorted(["ca.crt", "ca.key", *(f"{s}.{e}" for s in TLS_SERVERS for e in ("crt", "key"))])
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert ensure_certificates(tmp_path, TLS_SERVERS) == []
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before

    (tmp_path / "grpc-server.key").unlink()  # one lost key: that server alone, from the same CA
    assert sorted(ensure_certificates(tmp_path, TLS_SERVERS)) == ["grpc-server.crt", "grpc-server.key"]
    assert (tmp_path / "ca.crt").read_bytes() == before["ca.crt"]
    load(tmp_path / "grpc-server.crt").verify_directly_issued_by(load(tmp_path / "ca.crt"))

    (tmp_path / "ca.key").unlink()  # rotating the CA: delete it, every certificate follows
    assert len(ensure_certificates(tmp_path, TLS_SERVERS)) == 2 + 2 * len(TLS_SERVERS)
    for server in TLS_SERVERS:
        load(tmp_path / f"{server}.crt").verify_directly_issued_by(load(tmp_path / "ca.crt"))


def test_the_one_shot_hands_the_ca_to_connecting_containers_and_a_key_to_its_server_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in every_secret():
        monkeypatch.delenv(name.upper(), raising=False)
    every, holders = tmp_path / "all", tmp_path / "for"
    every.mkdir()
    for holder in SECRETS_FOR:
        (holders / holder).mkdir(parents=True)
    assert secrets_init.main([str(every), str(holders)]) == 0
    assert (every / "ca.key").exists()
    for holder, names in SECRETS_FOR.items():
        held = {path.name for path in (holders / holder).iterdir()}
        assert held == set(names)
        assert "ca.key" not in held
        keys = {name for name in held if name.endswith(".key")}
        assert keys == ({f"{holder}.key"} if holder in TLS_SERVERS else set()), holder
        for key in keys:
            # 0400 for the Python servers (the one-shot's uid is theirs); the database and the broker run as
            # another user and copy theirs to a private 0600 file at start.
            assert mode(holders / holder / key) == (0o444 if holder in ("database", "rabbitmq") else 0o400)
        if holder not in ("rabbitmq", "database", "postgres-exporter"):
            assert "ca.crt" in held, f"{holder} connects to a TLS server but cannot verify it"
    certificate = (holders / "rest-server" / "rest-server.crt").read_bytes()
    assert certificate == (every / "rest-server.crt").read_bytes()
    for name in every_secret():
        if not is_tls_file(name):
            assert b"BEGIN" not in (every / name).read_bytes(), f"{name} is a random string, not a certificate"

    assert secrets_init.main([str(every), str(holders)]) == 0  # a restart keeps every certificate
    assert (holders / "rest-server" / "rest-server.crt").read_bytes() == certificate


def test_a_tls_server_really_serves_with_its_certificate_to_a_client_holding_the_ca(tmp_path: Path) -> None:
    """A TLS handshake in process: the CA verifies the server named `localhost`; a client without it is refused."""
    ensure_certificates(tmp_path, TLS_SERVERS)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(tmp_path / "websocket-hub.crt", tmp_path / "websocket-hub.key")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        for _ in range(2):
            connection, _address = listener.accept()
            try:
                with server_context.wrap_socket(connection, server_side=True) as tls:
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    trusting = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        trusting.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.recv(2) == b"ok"
    stranger = ssl.create_default_context()  # the system's CAs only
    with pytest.raises(ssl.SSLCertVerificationError), socket.create_connection(("127.0.0.1", port)) as raw:
        stranger.wrap_socket(raw, server_hostname="localhost")
    thread.join(5)
    listener.close()
