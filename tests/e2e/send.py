"""Sending a message the shortest way, for tests that need messages but do not test sending."""

from __future__ import annotations

import uuid

import requests

from harness.stack import Stack


def post_message(stack: Stack, message: str) -> int:
    """Stores one message through the REST API; returns its id."""
    response = requests.post(
        f"{stack.rest_url}/messages",
        json={"message": message},
        headers={"Idempotency-Key": str(uuid.uuid4())},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])
