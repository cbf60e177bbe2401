"""They replace containers and the database: each runs on a stack of its own."""

from __future__ import annotations

import subprocess

from harness.stack import LONG_RUNNING, Stack, wait_for

from .checks import assert_ids_gap_free, assert_log_complete, log_ids
from .listener import ResumingListener
from .send import post_message


def test_messages_survive_down_and_up_and_the_total_continues(own_stack: Stack) -> None:
    stack = own_stack
    last = post_message(stack, "antes de down")
    epoch = stack.query("SELECT epoch::text FROM stream")[0][0]
    assert_log_complete(stack)
    logged_before = log_ids(stack)
    stack.down(volumes=False)
    stack.up(*LONG_RUNNING)
    assert stack.query("SELECT message FROM messages WHERE id = %s", (last,)) == [("antes de down",)]
    assert stack.query("SELECT epoch::text FROM stream")[0][0] == epoch
    assert post_message(stack, "después de up") == last + 1
    assert_ids_gap_free(stack)
    assert_log_complete(stack, earlier=logged_before)


def test_recreated_database_starts_a_new_stream_that_the_client_prints_from_the_start(own_stack: Stack) -> None:
    healthy = own_stack
    last_old = post_message(healthy, "último del flujo viejo")
    old_epoch = healthy.query("SELECT epoch::text FROM stream")[0][0]
    wait_for(
        lambda: any(line.endswith(f"total de mensajes {last_old}") for line in healthy.notification_lines()),
        what="the old stream's last line",
    )
    lines_before = len(healthy.notification_lines())
    with ResumingListener(healthy, after=last_old, epoch=old_epoch) as listener:
        healthy.compose("stop", "database")
        healthy.compose("rm", "-f", "database")
        subprocess.run(["docker", "volume", "rm", f"{healthy.project}_database-data"], check=True, capture_output=True)
        # The schema is the migrate service's work, as on `docker compose up`.
        healthy.compose("up", "-d", "--no-deps", "database", "migrate")
        healthy.forget_ports()
        healthy.wait_healthy(LONG_RUNNING)
        new_epoch = healthy.query("SELECT epoch::text FROM stream")[0][0]
        assert new_epoch != old_epoch and healthy.total() == 0
        for i in range(5):
            result = healthy.run_client("rest-client", f"flujo nuevo {i}")
            assert result.returncode == 0, result.stderr
        wait_for(
            lambda: len(healthy.notification_lines()) >= lines_before + 5,
            timeout=60,
            what="the new stream in the websocket-client log",
        )
        new_lines = healthy.notification_lines()[lines_before:]
        assert new_lines == [
            f"Se ingresó un registro mediante REST , con el mensaje flujo nuevo {i}, total de mensajes {i + 1}"
            for i in range(5)
        ]
        assert "new stream" in healthy.client_log()
        wait_for(lambda: len(listener.frames) >= 5, what="the new stream at the resuming listener")
    assert [(f["epoch"], f["id"]) for f in listener.frames] == [(new_epoch, i) for i in range(1, 6)]
