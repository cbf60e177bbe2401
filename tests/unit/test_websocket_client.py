"""The websocket client in process: printing, its cursor, liveness, and the crash when listening dies."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from msgsuite.tls import TlsSettings
from websocket_client import __main__ as client
from websocket_client.__main__ import Liveness, print_frame
from websocket_client.cursor import Cursor, CursorFile

from .conftest import Exits

TEXT = "Se ingresó un registro mediante REST , con el mensaje {message}, total de mensajes {id}"


def frame(frame_id: int, epoch: str = "e1", message: str = "hola") -> dict[str, object]:
    return {"epoch": epoch, "id": frame_id, "total": frame_id, "text": TEXT.format(message=message, id=frame_id)}


@pytest.fixture
def cursor_file(tmp_path: Path) -> CursorFile:
    return CursorFile(tmp_path / "cursor.json")


def test_a_frame_prints_its_text_exactly_and_saves_the_cursor(
    cursor_file: CursorFile, capsys: pytest.CaptureFixture[str]
) -> None:
    message = "  ñandú 🎉 <b>x</b>; DROP TABLE messages; --  "
    cursor = print_frame(frame(1, message=message), Cursor(), cursor_file)
    assert capsys.readouterr().out == TEXT.format(message=message, id=1) + "\n"
    assert cursor == Cursor("e1", 1) and cursor_file.load() == Cursor("e1", 1)
    cursor = print_frame(frame(2), cursor, cursor_file)
    assert capsys.readouterr().out.endswith("total de mensajes 2\n") and cursor_file.load() == Cursor("e1", 2)


def test_a_frame_already_printed_is_skipped(cursor_file: CursorFile, capsys: pytest.CaptureFixture[str]) -> None:
    cursor_file.save(Cursor("e1", 5))
    for seen in (3, 5):
        assert print_frame(frame(seen), Cursor("e1", 5), cursor_file) == Cursor("e1", 5)
    assert capsys.readouterr().out == "" and cursor_file.load() == Cursor("e1", 5)
    assert print_frame(frame(6), Cursor("e1", 5), cursor_file) == Cursor("e1", 6)
    assert capsys.readouterr().out.endswith("total de mensajes 6\n")


def test_a_new_epoch_is_printed_from_its_start(
    cursor_file: CursorFile, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    cursor = Cursor("e1", 50)
    for frame_id in (1, 2):
        cursor = print_frame(frame(frame_id, epoch="e2"), cursor, cursor_file)
    assert capsys.readouterr().out.splitlines() == [TEXT.format(message="hola", id=i) for i in (1, 2)]
    assert cursor_file.load() == Cursor("e2", 2)
    assert any("new stream (epoch e2)" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({"id": 1, "text": "x"}, KeyError),
        ({"epoch": "e1", "text": "x"}, KeyError),
        ({"epoch": "e1", "id": 1}, KeyError),
        ({"epoch": "e1", "id": "1", "text": "x"}, ValueError),
        ({"epoch": 1, "id": 1, "text": "x"}, ValueError),
        ({"epoch": "e1", "id": 1, "text": None}, ValueError),
    ],
    ids=["no epoch", "no id", "no text", "id as text", "epoch as number", "text null"],
)
def test_a_frame_it_cannot_read_raises(
    cursor_file: CursorFile, capsys: pytest.CaptureFixture[str], bad: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        print_frame(bad, Cursor("e1", 0), cursor_file)
    assert capsys.readouterr().out == "" and cursor_file.load() == Cursor()


def test_liveness_touches_the_file_at_most_once_a_second(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    now = [100.0]
    touched: list[float] = []
    monkeypatch.setattr(client, "time", SimpleNamespace(monotonic=lambda: now[0]))
    monkeypatch.setattr(client, "touch", lambda path: touched.append(now[0]))
    liveness = Liveness(str(tmp_path / "alive"))
    for moment in (100.0, 100.2, 100.99, 101.0, 101.5, 101.9, 102.2, 250.0):
        now[0] = moment
        liveness.proven()
    assert touched == [100.0, 101.0, 102.2, 250.0]


def test_liveness_writes_the_file_the_healthcheck_reads(tmp_path: Path) -> None:
    Liveness(str(tmp_path / "alive")).proven()
    assert (tmp_path / "alive").exists()


class FakeHub:
    """A connection to the hub that delivers `raw` frames, answers pings, then stays open."""

    def __init__(self, raw: list[str]) -> None:
        self.raw = raw
        self.close_code = 1000
        self.close_reason = ""
        self.pings = 0

    async def ping(self) -> asyncio.Future[float]:
        self.pings += 1
        pong: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        pong.set_result(0.001)
        return pong

    def __aiter__(self) -> AsyncIterator[str]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[str]:
        for raw in self.raw:
            await asyncio.sleep(0)
            yield raw
        await asyncio.Event().wait()


def test_listening_prints_frames_and_raises_on_one_it_cannot_read(
    monkeypatch: pytest.MonkeyPatch, cursor_file: CursorFile, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    hub = FakeHub([json.dumps(frame(1)), json.dumps(frame(2)), "not JSON at all", json.dumps(frame(3))])
    urls: list[str] = []
    headers: list[object] = []

    @asynccontextmanager
    async def connect(url: str, **options: Any) -> AsyncIterator[FakeHub]:
        urls.append(url)
        headers.append(options.get("additional_headers"))
        yield hub

    monkeypatch.setattr(client, "connect", connect)
    cursor_file.save(Cursor("e1", 0))
    liveness_file = tmp_path / "alive"
    with pytest.raises(json.JSONDecodeError):
        asyncio.run(client.listen("ws://hub/notifications", cursor_file, Liveness(str(liveness_file)), token="t0ken"))
    assert urls == ["ws://hub/notifications?after=0&epoch=e1"]
    assert headers == [{"Authorization": "Bearer t0ken"}]
    assert capsys.readouterr().out.splitlines() == [TEXT.format(message="hola", id=i) for i in (1, 2)]
    assert cursor_file.load() == Cursor("e1", 2) and liveness_file.exists()


@pytest.mark.parametrize(
    "ending", [ValueError("not a notification frame"), None], ids=["listener raised", "listener returned"]
)
def test_the_client_exits_when_listening_dies(
    monkeypatch: pytest.MonkeyPatch,
    exits: Exits,
    cursor_file: CursorFile,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    ending: Exception | None,
) -> None:
    async def listen(
        hub_url: str,
        cursor_file: CursorFile,
        liveness: Liveness,
        tls: TlsSettings | None = None,
        token: str | None = None,
    ) -> None:
        await asyncio.sleep(0)
        if ending is not None:
            raise ending

    monkeypatch.setattr(client, "listen", listen)
    asyncio.run(client.run("ws://hub/notifications", cursor_file, str(tmp_path / "alive")))
    assert exits.codes == [70]
    [entry] = [r for r in caplog.records if r.name == "msgsuite.crash"]
    assert "listening to the hub failed" in entry.getMessage()
    assert entry.exc_info is not None and isinstance(entry.exc_info[1], ValueError if ending else RuntimeError)
