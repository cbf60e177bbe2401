"""The end-to-end stacks, each under a compose project of the tests' own.

`stack` is shared by every test that leaves it as it found it. A test that
breaks something others rely on (recreates the database, upgrades the
schema, restores a backup, adds a constraint) takes `own_stack`: a stack of
its own, started for it and removed after it, so the suite passes in any
order and each file passes alone.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from harness.stack import CLIENTS, LONG_RUNNING, Stack, wait_for

BASE_PROJECT = os.environ.get("E2E_PROJECT") or f"msgsuite-e2e-{uuid.uuid4().hex[:8]}"
KEEP_STACK = bool(os.environ.get("E2E_KEEP_STACK"))


@pytest.fixture(scope="session")
def images() -> None:
    """Every image built once; all stacks of the run share them (one image tag)."""
    Stack(BASE_PROJECT).compose("build", timeout=1800)


def start(stack: Stack, scale: dict[str, int] | None = None) -> None:
    stack.up(scale=scale)  # everything, so the demo clients run as on `docker compose up`
    codes = stack.wait_exited(CLIENTS)
    assert codes == dict.fromkeys(CLIENTS, 0), f"demo clients exited with {codes}"
    # The RabbitMQ demo is confirmed by the broker before the consumer stores it:
    # every test starts from a settled stack, whichever runs first.
    wait_for(
        lambda: stack.query("SELECT count(*) FROM messages WHERE idempotency_key LIKE 'demo-%'")[0][0] == 3,
        what="the three demo messages stored",
    )


@pytest.fixture(scope="session")
def stack(images: None) -> Iterator[Stack]:
    shared = Stack(BASE_PROJECT)
    try:
        start(shared)
        yield shared
    finally:
        if not KEEP_STACK:
            shared.down(volumes=True)


@contextmanager
def stack_of_its_own(
    what: str, scale: dict[str, int] | None = None, env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """A whole stack, started and settled, removed (down -v) after the block even when it fails.
    Its project is named <base>-own-…, which the test command tears down after a killed run too.
    env: settings for every container of it (compose reads them), e.g. {"AUTH": "on"}."""
    own = Stack(f"{BASE_PROJECT}-own-{what}-{uuid.uuid4().hex[:6]}")
    own.env.update(env or {})
    try:
        start(own, scale)
        yield own
    finally:
        own.down(volumes=True)


@pytest.fixture
def own_stack(images: None) -> Iterator[Stack]:
    """A whole stack for this test alone."""
    with stack_of_its_own("test") as own:
        yield own


@pytest.fixture
def healthy(stack: Stack) -> Iterator[Stack]:
    """The stack, checked healthy before and after a test that pokes at it."""
    stack.wait_healthy(LONG_RUNNING)
    yield stack
    stack.wait_healthy(LONG_RUNNING)
