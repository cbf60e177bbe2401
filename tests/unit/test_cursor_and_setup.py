import logging
import os
import stat
from pathlib import Path

import pytest

from msgsuite import probe, settings
from msgsuite.secrets_init import ensure_secrets
from websocket_client.cursor import Cursor, CursorFile


def test_cursor_accepts_only_new_ids_of_its_epoch_and_anything_of_a_new_one() -> None:
    cursor = Cursor("e1", 5)
    assert not cursor.accepts("e1", 5) and not cursor.accepts("e1", 3)
    assert cursor.accepts("e1", 6)
    assert cursor.accepts("e2", 1)
    assert Cursor().accepts("e1", 1)


def test_cursor_query_resumes_after_the_last_id_of_its_epoch() -> None:
    assert Cursor().query() == "after=0"
    assert Cursor("e1", 7).query() == "after=7&epoch=e1"


def test_cursor_file_round_trips_and_survives_a_torn_file(tmp_path: Path) -> None:
    file = CursorFile(tmp_path / "cursor.json")
    assert file.load() == Cursor()
    file.save(Cursor("e1", 42))
    assert file.load() == Cursor("e1", 42)
    (tmp_path / "cursor.json").write_text('{"epoch": "e1", "last_')
    assert file.load() == Cursor()


def test_secrets_are_created_once_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DB_PASSWORD", raising=False)
    monkeypatch.setenv("BROKER_PASSWORD", "from-env")
    assert ensure_secrets(tmp_path, ["db_password", "broker_password"]) == ["db_password", "broker_password"]
    first = (tmp_path / "db_password").read_text()
    assert len(first) >= 24 and (tmp_path / "broker_password").read_text() == "from-env"
    assert not stat.S_IMODE(os.stat(tmp_path / "db_password").st_mode) & 0o222
    assert ensure_secrets(tmp_path, ["db_password", "broker_password"]) == []
    assert (tmp_path / "db_password").read_text() == first


def test_a_missing_setting_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("POSTGRES_HOST", "POSTGRES_PASSWORD", "POSTGRES_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(settings.InvalidSetting, match="POSTGRES_HOST"):
        settings.DatabaseSettings.from_env("test")


@pytest.mark.parametrize("raw", ["0", "-1", "nan", "inf", "cinco"])
def test_a_number_setting_must_be_a_finite_positive_number(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("DATABASE_STATEMENT_TIMEOUT_SECONDS", raw)
    with pytest.raises(settings.InvalidSetting, match=f"DATABASE_STATEMENT_TIMEOUT_SECONDS must be a number.*{raw}"):
        settings.number("DATABASE_STATEMENT_TIMEOUT_SECONDS", 5.0)
    monkeypatch.setenv("DATABASE_STATEMENT_TIMEOUT_SECONDS", "2.5")
    assert settings.number("DATABASE_STATEMENT_TIMEOUT_SECONDS", 5.0) == 2.5


def test_a_secret_is_read_from_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    monkeypatch.delenv("SOME_PASSWORD", raising=False)
    monkeypatch.setenv("SOME_PASSWORD_FILE", str(tmp_path / "pw"))
    assert settings.secret("SOME_PASSWORD") == "s3cret"
    monkeypatch.setenv("SOME_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(settings.InvalidSetting, match="cannot be read"):
        settings.secret("SOME_PASSWORD")


def test_liveness_probe_tells_fresh_from_stale(tmp_path: Path) -> None:
    marker = tmp_path / "alive"
    assert not probe.liveness_is_fresh(marker, 15)
    probe.touch(marker)
    assert probe.liveness_is_fresh(marker, 15)
    os.utime(marker, (0, 0))
    assert not probe.liveness_is_fresh(marker, 15)


def test_a_service_without_its_settings_exits_2_naming_the_missing_one(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("POSTGRES_HOST", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        settings.load_or_exit(logging.getLogger("test"), lambda: settings.DatabaseSettings.from_env("test"))
    assert exit_info.value.code == 2
    assert "cannot start: environment variable POSTGRES_HOST is required" in caplog.text
