"""The end-to-end tests share one stack, started once under its own project name."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from .stack import CLIENTS, LONG_RUNNING, Stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    project = os.environ.get("E2E_PROJECT") or f"msgsuite-e2e-{uuid.uuid4().hex[:8]}"
    stack = Stack(project)
    owns_stack = not os.environ.get("E2E_KEEP_STACK")
    stack.compose("build", timeout=1800)
    try:
        stack.up()  # everything, so the demo clients run as on `docker compose up`
        codes = stack.wait_exited(CLIENTS)
        assert codes == dict.fromkeys(CLIENTS, 0), f"demo clients exited with {codes}"
        yield stack
    finally:
        if owns_stack:
            stack.down(volumes=True)


@pytest.fixture
def healthy(stack: Stack) -> Iterator[Stack]:
    """The stack, checked healthy before and after a test that pokes at it."""
    stack.wait_healthy(LONG_RUNNING)
    yield stack
    stack.wait_healthy(LONG_RUNNING)
