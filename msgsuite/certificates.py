"""The suite's private certificate authority and one certificate per TLS server (run by the secrets one-shot).

Made once and kept: a restart finds them and changes nothing. The CA
(`ca.crt`, its key `ca.key`) signs a certificate for each server of
secret_plan.TLS_SERVERS whose subject alternative names are the service's
name (how the other containers reach it), `localhost` and 127.0.0.1 (the
container's own healthcheck, and the host through the published ports).
When the CA is new (first start, or its files were deleted to rotate it),
every server certificate is issued again; a missing server certificate or
key alone is issued by the existing CA. Keys are ECDSA P-256: small, fast to
make, and accepted by PostgreSQL, Erlang/OTP, gRPC and Python's ssl.

Built on the `cryptography` package (pinned in requirements-secrets-init.txt,
installed in the secrets-init image only): no openssl binary is needed in the
image, and the tests make and check the certificates in process.

    python -m msgsuite.certificates DIR   # the same files into DIR (Swarm and Kubernetes secrets)
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .secret_plan import CA_CERTIFICATE, TLS_SERVERS, server_tls

CA_KEY = "ca.key"
CA_YEARS = 10
SERVER_YEARS = 2
LOOPBACK_NAMES = ("localhost",)
LOOPBACK_ADDRESSES = ("127.0.0.1", "::1")


def _write(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.chmod(temporary, mode)  # whatever the umask
    os.replace(temporary, path)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "msgsuite"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _now() -> datetime.datetime:
    # A minute back: a container whose clock is slightly behind still accepts a fresh certificate.
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)


def make_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name("msgsuite private CA"))
        .issuer_name(_name("msgsuite private CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def subject_names(server: str) -> list[x509.GeneralName]:
    """The names a server is reached by: its service name, and loopback for healthchecks and the host."""
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in (server, *LOOPBACK_NAMES)]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in LOOPBACK_ADDRESSES]
    return names


def make_server_certificate(
    server: str, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(server))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365 * SERVER_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(subject_names(server)), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return certificate, key


def ensure_certificates(directory: Path, servers: tuple[str, ...] | list[str]) -> list[str]:
    """Creates the CA and the server certificates that are missing; returns the file names written.

    Certificates are 0444 (public), keys 0400 (the one-shot's user alone).
    """
    written: list[str] = []
    ca_path, ca_key_path = directory / CA_CERTIFICATE, directory / CA_KEY
    new_ca = not (ca_path.exists() and ca_key_path.exists())
    if new_ca:
        ca, ca_key = make_ca()
        _write(ca_key_path, _key_pem(ca_key), 0o400)
        _write(ca_path, ca.public_bytes(serialization.Encoding.PEM), 0o444)
        written += [CA_KEY, CA_CERTIFICATE]
    else:
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{ca_key_path} is not an ECDSA key")
        ca_key = loaded
    for server in servers:
        certificate_name, key_name = server_tls(server)
        if not new_ca and (directory / certificate_name).exists() and (directory / key_name).exists():
            continue
        certificate, key = make_server_certificate(server, ca, ca_key)
        _write(directory / key_name, _key_pem(key), 0o400)
        _write(directory / certificate_name, certificate.public_bytes(serialization.Encoding.PEM), 0o444)
        written += [certificate_name, key_name]
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print(__doc__, file=sys.stderr)
        return 2
    written = ensure_certificates(Path(argv[0]), TLS_SERVERS)
    print(f"certificates: wrote {', '.join(written)}" if written else "certificates: all present, none written")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
