"""scripts/backup.sh and scripts/restore.sh on a running suite of the test's own."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.stack import LONG_RUNNING, ROOT, Stack, wait_for

from .checks import assert_ids_gap_free, assert_log_complete
from .listener import ResumingListener
from .send import post_message as post

ROWS = "SELECT id, via, message, idempotency_key, created_at FROM messages ORDER BY id"


def script(stack: Stack, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / name), *args],
        env=env or stack.env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def without_progress(output: str) -> str:
    """The script's own lines and errors, without docker compose's per-container progress."""
    return "\n".join(line for line in output.splitlines() if not line.lstrip().startswith("Container "))


def notification(via: str, message: str, total: int) -> str:
    return f"Se ingresó un registro mediante {via} , con el mensaje {message}, total de mensajes {total}"


def stream(stack: Stack) -> tuple[str, int]:
    epoch, total = stack.query("SELECT epoch::text, total FROM stream")[0]
    return epoch, int(total)


def refuses_bad_input_and_stops_nothing(stack: Stack, tmp_path: Path) -> None:
    total = stack.total()
    not_a_backup = tmp_path / "notes.txt"
    not_a_backup.write_text("hola\n", encoding="utf-8")
    refused = script(stack, "restore.sh", str(not_a_backup))
    assert (refused.returncode, "not a pg_dump archive" in refused.stderr) == (2, True), refused.stderr
    missing = script(stack, "restore.sh", str(tmp_path / "missing.dump"))
    assert (missing.returncode, "cannot read" in missing.stderr) == (2, True), missing.stderr
    assert script(stack, "backup.sh").returncode == 2, "no file: usage"
    assert all(stack.states().get(s) == "healthy" for s in LONG_RUNNING), stack.states()
    assert stack.total() == total


def test_restore_brings_the_backup_back_under_a_new_epoch_and_the_stream_continues(
    own_stack: Stack, tmp_path: Path
) -> None:
    stack = own_stack
    refuses_bad_input_and_stops_nothing(stack, tmp_path)
    for i in range(3):
        post(stack, f"respaldado {i}")
    backed_up = stack.query(ROWS)
    # -p instead of the environment, as docker compose takes it
    env_without_project = {k: v for k, v in stack.env.items() if k != "COMPOSE_PROJECT_NAME"}
    archive = tmp_path / "suite.dump"
    saved = script(stack, "backup.sh", "-p", stack.project, str(archive), env=env_without_project)
    assert saved.returncode == 0, saved.stderr
    assert archive.stat().st_size > 0 and not Path(f"{archive}.partial").exists()

    for i in range(3):
        post(stack, f"perdido con la restauración {i}")
    assert_log_complete(stack)
    old_epoch, last_before = stream(stack)
    lines_before = len(stack.notification_lines())

    with ResumingListener(stack, after=last_before, epoch=old_epoch) as listener:
        restored = script(stack, "restore.sh", str(archive))
        assert restored.returncode == 0, without_progress(restored.stdout + restored.stderr)
        stack.forget_ports()
        stack.wait_healthy(LONG_RUNNING)

        new_epoch, total = stream(stack)
        assert new_epoch != old_epoch
        assert total == len(backed_up)
        assert stack.query(ROWS) == backed_up, "exactly the rows of the backup"
        assert [post(stack, f"después de restaurar {i}") for i in range(2)] == [total + 1, total + 2]
        assert assert_ids_gap_free(stack) == total + 2
        rows = stack.query(ROWS)
        assert rows[: len(backed_up)] == backed_up

        # The client prints the restored stream from id 1 again, then the new messages.
        expected = [notification(via, message, id_) for id_, via, message, *_ in rows]
        wait_for(
            lambda: len(stack.notification_lines()) >= lines_before + len(expected),
            what="the restored stream and the new messages in the client log",
        )
        assert stack.notification_lines()[lines_before:] == expected
        assert "new stream" in stack.client_log()
        listener.wait_until(total + 2)
    replayed = [(f["epoch"], f["id"]) for f in listener.frames]
    assert replayed == [(new_epoch, i) for i in range(1, total + 3)], "a listener past the restored total replays it"
