"""Fixtures shared by the in-process tests."""

from __future__ import annotations

import threading

import pytest

from msgsuite import crash


class Exits:
    """os._exit, recorded instead of done (see msgsuite/crash.py)."""

    def __init__(self) -> None:
        self.codes: list[int] = []
        self.called = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.called.set()


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> Exits:
    """Records the process exits that crash.exit_now asks for; threading.excepthook is restored after the test."""
    recorder = Exits()
    monkeypatch.setattr(crash.os, "_exit", recorder)
    monkeypatch.setattr(crash.logging, "shutdown", lambda: None)  # keep pytest's log capture working
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    return recorder
