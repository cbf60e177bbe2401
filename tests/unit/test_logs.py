import json
import logging

import pytest

from msgsuite import logs


@pytest.fixture(autouse=True)
def restore_logging() -> None:
    yield
    logging.basicConfig(force=True, level=logging.WARNING)


def test_json_format_gives_one_object_per_line_with_the_service(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    log = logs.configure("rest-server")
    log.debug("stored id=%d via=%s key=%s", 7, "REST", "k-1")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    lines = capsys.readouterr().err.strip().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["service"] == "rest-server" and first["level"] == "DEBUG" and first["logger"] == "rest-server"
    assert first["message"] == "stored id=7 via=REST key=k-1" and "timestamp" in first
    assert "ValueError: boom" in second["exc_info"]


def test_text_is_the_default_and_an_unknown_format_stops_the_service(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    logs.configure("hub").warning("plain")
    assert capsys.readouterr().err.strip().endswith("hub WARNING plain")
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(SystemExit) as stopped:
        logs.configure("hub")
    assert stopped.value.code == 2
    assert "LOG_FORMAT must be text or json" in capsys.readouterr().err
