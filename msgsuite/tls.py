"""TLS=on: the settings and SSL contexts every service and client shares.

With TLS=on every server serves TLS with its own certificate (TLS_CERT_FILE,
TLS_KEY_FILE; by default /run/suite-secrets/<service>.crt and .key, made by
the secrets one-shot) and every client verifies the server's certificate and
name against the suite's private CA (TLS_CA_FILE, default
/run/suite-secrets/ca.crt). With TLS=off (compose's default) nothing here is
used and everything speaks plain text as before.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from .settings import optional, readable_file, tls_ca_file

SECRETS = "/run/suite-secrets"


@dataclass(frozen=True)
class TlsSettings:
    """ca_file is None when TLS is off; cert_file and key_file only for a server with TLS on."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @property
    def enabled(self) -> bool:
        return self.ca_file is not None

    @classmethod
    def from_env(cls, server: str | None = None) -> TlsSettings:
        """server: the service name whose certificate this process serves, None for a client only."""
        ca_file = tls_ca_file()
        if ca_file is None or server is None:
            return cls(ca_file)
        return cls(
            ca_file,
            readable_file("TLS_CERT_FILE", optional("TLS_CERT_FILE", f"{SECRETS}/{server}.crt")),
            readable_file("TLS_KEY_FILE", optional("TLS_KEY_FILE", f"{SECRETS}/{server}.key")),
        )

    def ca_pem(self) -> bytes:
        if self.ca_file is None:
            raise RuntimeError("TLS is off")
        return Path(self.ca_file).read_bytes()

    def client_context(self) -> ssl.SSLContext:
        """Verifies the server's certificate against the suite's CA, and its name."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def server_context(self) -> ssl.SSLContext:
        if self.cert_file is None or self.key_file is None:
            raise RuntimeError("no server certificate: TLS is off or this is a client")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def secure_url(url: str, tls: TlsSettings) -> str:
    """With TLS on, http:// and ws:// become https:// and wss:// (compose's URLs stay as they are)."""
    if not tls.enabled:
        return url
    for plain, secure in (("http://", "https://"), ("ws://", "wss://")):
        if url.startswith(plain):
            return secure + url[len(plain) :]
    return url
