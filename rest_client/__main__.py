"""python -m rest_client: the shared client CLI over HTTP (REST_URL, default http://rest-server:8000)."""
from __future__ import annotations

from collections.abc import Callable

import requests

from msgsuite import cli
from msgsuite.client import Receipt, Rejected, Sender, Unreachable
from msgsuite.settings import integer, optional

RETRYABLE_STATUS = {429, 502, 503, 504}


class RestSender:
    def __init__(self, base_url: str, timeout: float) -> None:
        self._url = base_url.rstrip("/") + "/messages"
        self._session = requests.Session()
        self._timeout = timeout

    def send(self, text: str, key: str) -> Receipt:
        try:
            response = self._session.post(
                self._url, json={"message": text}, headers={"Idempotency-Key": key}, timeout=self._timeout
            )
        except requests.RequestException as error:
            raise Unreachable(f"{type(error).__name__}: {error}") from None
        if response.status_code in (200, 201):
            body = response.json()
            return Receipt(id=body["id"], repeated=body["repeated"])
        reason = f"HTTP {response.status_code}: {_detail(response)}"
        if response.status_code in RETRYABLE_STATUS or response.status_code >= 500:
            raise Unreachable(reason)
        raise Rejected(reason)

    def close(self) -> None:
        self._session.close()


def _detail(response: requests.Response) -> str:
    try:
        return str(response.json().get("detail"))
    except (ValueError, AttributeError):
        return response.text[:200] or response.reason


def sender_factory() -> Callable[[], Sender]:
    base_url = optional("REST_URL", "http://rest-server:8000")
    timeout = integer("CLIENT_TIMEOUT_SECONDS", 10)
    return lambda: RestSender(base_url, timeout)


if __name__ == "__main__":
    cli.main("rest-client", sender_factory)
