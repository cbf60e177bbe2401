"""Bearer tokens (AUTH=on) and request-rate limits: shared by the REST server, the gRPC server and the hub.

A server holds only the SHA-256 digest of the token its clients present
(`<token>.sha256`, written by the `secrets` one-shot), never the token: a
copy of a server's secrets lets no one in anywhere. A token is 24 random
bytes, so a plain hash is as good as a slow one here (there is no dictionary
to try). The check compares digests with hmac.compare_digest: the time it
takes tells nothing about the token, not even its length.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .settings import InvalidSetting, integer, number, optional, secret

DIGEST_SUFFIX = ".sha256"
# Said to every refused caller alike: whether a token was missing or wrong is not told apart.
REFUSAL = "a valid bearer token is required (Authorization: Bearer <token>)"


def token_digest(token: str) -> str:
    """The hex SHA-256 of a token: what the servers hold."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def auth_enabled() -> bool:
    """AUTH=on|off (default off)."""
    value = optional("AUTH", "off").lower()
    if value not in ("on", "off"):
        raise InvalidSetting(f"environment variable AUTH must be on or off, not {value!r}")
    return value == "on"


class TokenCheck:
    """Accepts the one token whose digest it holds; with no digest (AUTH=off) accepts every caller."""

    def __init__(self, digest_hex: str | None) -> None:
        self._digest: bytes | None = None
        if digest_hex is not None:
            try:
                self._digest = bytes.fromhex(digest_hex.strip())
            except ValueError:
                raise InvalidSetting("the token digest is not a hex SHA-256") from None
            if len(self._digest) != hashlib.sha256().digest_size:
                raise InvalidSetting("the token digest is not a hex SHA-256")

    @property
    def required(self) -> bool:
        return self._digest is not None

    def accepts(self, token: str | None) -> bool:
        if self._digest is None:
            return True
        # A missing token is hashed too, so it takes the same time as a wrong one.
        given = hashlib.sha256((token or "").encode("utf-8", "surrogateescape")).digest()
        return hmac.compare_digest(given, self._digest) and token is not None


def client_token(name: str) -> str | None:
    """A client's token: NAME, or the file NAME_FILE; None when neither is set (sent without a token).

    The clients send their token whenever they have one; a server with AUTH=off ignores it.
    """
    if not os.environ.get(name) and not os.environ.get(f"{name}_FILE"):
        return None
    return secret(name)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


@dataclass(frozen=True)
class RateLimit:
    """Requests per second and burst, per caller (token, or address with AUTH=off), per replica."""

    per_second: float
    burst: int

    @classmethod
    def from_env(cls) -> RateLimit:
        return cls(number("RATE_LIMIT_PER_SECOND", 5000), integer("RATE_LIMIT_BURST", 10000))


class RateLimiter:
    """A token bucket per caller: `burst` requests at once, refilled at `per_second`.

    take() answers 0 when the request may go on, else the seconds until it
    could. Thread-safe. Buckets of callers
    that went quiet are dropped once there are many, so a flood of addresses
    cannot grow it without bound.
    """

    MAX_CALLERS = 10_000

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = limit.per_second
        self._burst = float(max(1, limit.burst))
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # caller: (tokens, at)
        self._lock = threading.Lock()

    def take(self, caller: str) -> float:
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(caller, (self._burst, now))
            tokens = min(self._burst, tokens + (now - at) * self._rate)
            if tokens >= 1 - 1e-9:  # a refill of exactly one request may land a hair short in floats
                self._buckets[caller] = (tokens - 1, now)
                if len(self._buckets) > self.MAX_CALLERS:
                    self._forget_full(now)
                return 0.0
            self._buckets[caller] = (tokens, now)
            return (1 - tokens) / self._rate

    def _forget_full(self, now: float) -> None:
        refill_seconds = self._burst / self._rate
        for caller, (_, at) in list(self._buckets.items()):
            if now - at >= refill_seconds:  # full again: forgetting it changes nothing
                del self._buckets[caller]


def retry_after_header(seconds: float) -> str:
    """Whole seconds for a Retry-After header or metadata value (at least 1)."""
    return str(max(1, math.ceil(seconds)))
