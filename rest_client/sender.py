"""RestSender: messages over HTTP to the REST server."""
from __future__ import annotations

from typing import Any

import requests

from msgsuite.client import Receipt, Rejected, Unreachable

RETRYABLE_STATUS = {429, 502, 503, 504}


class RestSender:
    def __init__(self, base_url: str, timeout: float) -> None:
        self._url = base_url.rstrip("/") + "/messages"
        self._session = requests.Session()
        self._timeout = timeout

    def send(self, text: str, key: str) -> Receipt:
        body = self._post(self._url, {"message": text}, {"Idempotency-Key": key})
        return Receipt(id=body["id"], repeated=body["repeated"])

    def send_batch(self, texts: list[str], keys: list[str]) -> list[Receipt]:
        items = [{"message": text, "idempotency_key": key} for text, key in zip(texts, keys)]
        body = self._post(self._url + "/batch", {"messages": items}, {})
        return [Receipt(id=record["id"], repeated=record["repeated"]) for record in body["messages"]]

    def _post(self, url: str, payload: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        try:
            response = self._session.post(url, json=payload, headers=headers, timeout=self._timeout)
        except requests.RequestException as error:
            raise Unreachable(f"{type(error).__name__}: {error}") from None
        if response.status_code in (200, 201):
            return response.json()  # type: ignore[no-any-return]
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
