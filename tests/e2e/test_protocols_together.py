"""All three protocols at once: one gap-free sequence, one ordered stream."""

from __future__ import annotations

import subprocess
import uuid

import requests

from harness.stack import CLIENTS, ROOT, Stack, receive_frames, wait_for

from .checks import assert_ids_gap_free, assert_log_complete

ODD_MESSAGES = [
    "ñandú, pingüino y acción",
    "emoji 🎉🚀 y bandera 🇨🇱",
    "comillas \"dobles\" y 'simples' y `graves`",
    "comas, puntos; y dos puntos: , , ,",
    "'); DROP TABLE messages; --",
    "<script>alert('x')</script> &amp; <b>negrita</b>",
    "   espacios al borde   ",
    "tab\tseparado y barra \\ invertida",
    "中文 العربية עברית",
    "{total} {via} %s %(x)s",
]


def test_three_clients_at_once_yield_one_gap_free_ordered_stream(healthy: Stack) -> None:
    before = healthy.total()
    with healthy.listen(after=before) as listener:
        runs = [
            subprocess.Popen(
                [
                    "docker",
                    "compose",
                    "-p",
                    healthy.project,
                    "run",
                    "--rm",
                    "--no-deps",
                    "-T",
                    client,
                    "--count",
                    "200",
                    "--concurrency",
                    "8",
                ],
                cwd=ROOT,
                env=healthy.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for client in CLIENTS
        ]
        outputs = [run.communicate(timeout=600) for run in runs]
        for client, run, (out, err) in zip(CLIENTS, runs, outputs, strict=True):
            assert run.returncode == 0, f"{client}: {err[-2000:]}"
            assert len(out.splitlines()) == 200
        wait_for(lambda: healthy.total() >= before + 600, timeout=120, what="600 messages stored")
        frames = receive_frames(listener, before + 600, timeout=120)
    assert healthy.total() == before + 600
    assert [f["id"] for f in frames] == list(range(before + 1, before + 601))
    vias = [f["via"] for f in frames]
    assert {v: vias.count(v) for v in set(vias)} == {"GRPC": 200, "REST": 200, "RabbitMQ": 200}
    assert_ids_gap_free(healthy)
    assert_log_complete(healthy, after=before)


def test_unicode_and_odd_text_round_trip_byte_for_byte_on_every_protocol(healthy: Stack) -> None:
    before = healthy.total()
    with healthy.listen(after=before) as listener:
        for message in ODD_MESSAGES:
            response = requests.post(
                f"{healthy.rest_url}/messages",
                json={"message": message},
                headers={"Idempotency-Key": str(uuid.uuid4())},
                timeout=10,
            )
            assert response.status_code == 201 and response.json()["message"] == message
        for client in ("grpc-client", "rabbitmq-client"):
            result = healthy.run_client(client, *ODD_MESSAGES)
            assert result.returncode == 0, result.stderr
        frames = receive_frames(listener, before + 3 * len(ODD_MESSAGES), timeout=60)
    by_via: dict[str, list[str]] = {}
    for frame in frames:
        by_via.setdefault(str(frame["via"]), []).append(str(frame["message"]))
        assert frame["text"] == (
            f"Se ingresó un registro mediante {frame['via']} , con el mensaje "
            f"{frame['message']}, total de mensajes {frame['id']}"
        )
    assert by_via == {"REST": ODD_MESSAGES, "GRPC": ODD_MESSAGES, "RabbitMQ": ODD_MESSAGES}
    stored = [row[0] for row in healthy.query("SELECT message FROM messages WHERE id > %s ORDER BY id", (before,))]
    assert sorted(s.encode() for s in stored) == sorted(m.encode() for m in ODD_MESSAGES * 3)
    expected = {frame["text"] for frame in frames}
    wait_for(
        lambda: expected <= set(healthy.notification_lines()),
        what="every odd message's line in the websocket-client log",
    )
