"""Container healthchecks that need no curl in the image.

python -m msgsuite.probe http URL              healthy when URL answers 2xx
python -m msgsuite.probe liveness PATH SECONDS  healthy when PATH was touched lately (the service made progress)

With TLS=on the http probe speaks https and verifies the server with TLS_CA_FILE.
"""

from __future__ import annotations

import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .settings import InvalidSetting
from .tls import TlsSettings, secure_url


def touch(path: str | Path) -> None:
    """Marks the caller as alive now (see `liveness` below)."""
    Path(path).touch()


def liveness_is_fresh(path: str | Path, max_age: float) -> bool:
    try:
        return time.time() - Path(path).stat().st_mtime <= max_age
    except FileNotFoundError:
        return False


def http_is_healthy(url: str, timeout: float = 3.0, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            status: int = response.status
            return 200 <= status < 300
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "http":
        try:
            tls = TlsSettings.from_env()
        except InvalidSetting as error:
            print(f"unhealthy: {error}", file=sys.stderr)
            return 1
        context = tls.client_context() if tls.enabled else None
        return 0 if http_is_healthy(secure_url(argv[1], tls), context=context) else 1
    if len(argv) == 3 and argv[0] == "liveness":
        return 0 if liveness_is_fresh(argv[1], float(argv[2])) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
