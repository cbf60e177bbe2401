import asyncio
import json
from datetime import UTC, datetime

import pytest

from msgsuite.messages import StoredMessage, Via
from websocket_hub.frame_window import FrameWindow
from websocket_hub.frames import Frame, encode_frame
from websocket_hub.listeners import BadRequest, parse_subscription


def frames(first: int, last: int) -> list[Frame]:
    return [Frame(i, f"frame {i}", 0.0) for i in range(first, last + 1)]


def make_window(capacity: int = 10) -> FrameWindow:
    async def build() -> FrameWindow:
        return FrameWindow(capacity)

    return asyncio.run(build())


def test_frames_after_a_cursor_come_in_id_order_and_limited() -> None:
    window = make_window()
    window.set_epoch("e1")
    window.publish("e1", frames(1, 5))
    assert [f.id for f in window.after(2, 10)] == [3, 4, 5]
    assert [f.id for f in window.after(0, 2)] == [1, 2]
    assert window.after(5, 10) == []


def test_memory_is_bounded_and_older_cursors_are_sent_to_the_table() -> None:
    window = make_window(capacity=10)
    window.set_epoch("e1")
    for start in range(1, 100, 5):
        window.publish("e1", frames(start, start + 4))
    assert window.head == 100
    assert window.after(10, 5) is None
    assert [f.id for f in window.after(95, 10)] == [96, 97, 98, 99, 100]


def test_a_hole_is_refused() -> None:
    window = make_window()
    window.set_epoch("e1")
    window.publish("e1", frames(1, 2))
    with pytest.raises(ValueError):
        window.publish("e1", frames(4, 5))


def test_a_new_epoch_starts_over_and_frames_of_the_old_one_are_dropped() -> None:
    window = make_window()
    window.set_epoch("e1")
    window.publish("e1", frames(1, 3))
    window.set_epoch("e2")
    assert window.head == 0 and window.after(0, 10) == []
    window.publish("e1", frames(4, 4))
    assert window.head == 0
    window.publish("e2", frames(1, 1))
    assert [f.id for f in window.after(0, 10)] == [1]


def test_publishing_wakes_whoever_waits() -> None:
    async def scenario() -> bool:
        window = FrameWindow(10)
        window.set_epoch("e")
        changed = window.changed
        window.publish("e", frames(1, 1))
        return changed.is_set() and not window.changed.is_set()

    assert asyncio.run(scenario())


@pytest.mark.parametrize(
    ("target", "after", "epoch"),
    [
        ("/notifications", 0, None),
        ("/notifications?after=12", 12, None),
        (
            "/notifications?after=3&epoch=83f3c040-9a0f-46db-bc14-8f284cb258b2",
            3,
            "83f3c040-9a0f-46db-bc14-8f284cb258b2",
        ),
    ],
)
def test_subscription_is_read_from_the_query(target: str, after: int, epoch: str | None) -> None:
    subscription = parse_subscription(target)
    assert (subscription.after, subscription.epoch) == (after, epoch)


@pytest.mark.parametrize(
    "target",
    [
        "/notifications?after=-1",
        "/notifications?after=abc",
        "/notifications?after=",
        "/notifications?after=1&after=2",
        "/notifications?epoch=<x>",
        "/notifications?since=4",
        "/notifications?after=" + "9" * 30,
    ],
)
def test_bad_subscriptions_are_refused(target: str) -> None:
    with pytest.raises(BadRequest):
        parse_subscription(target)


def test_frame_carries_the_contract_fields_and_text() -> None:
    record = StoredMessage(
        id=12, via=Via.REST, message='hola "ñ"', created_at=datetime(2026, 11, 28, 2, 30, tzinfo=UTC)
    )
    frame = encode_frame("epoch-1", record)
    data = json.loads(frame.data)
    assert frame.id == 12
    assert data == {
        "epoch": "epoch-1",
        "id": 12,
        "total": 12,
        "via": "REST",
        "message": 'hola "ñ"',
        "created_at": "2026-11-28T02:30:00+00:00",
        "text": 'Se ingresó un registro mediante REST , con el mensaje hola "ñ", total de mensajes 12',
    }
    assert "ñ" in frame.data  # sent as UTF-8, not \u escapes


def test_memory_may_start_mid_stream_and_older_cursors_go_to_the_table() -> None:
    window = make_window(capacity=10)
    window.set_epoch("e1", head=1000)
    assert window.after(1000, 10) == [] and window.after(5, 10) is None
    window.publish("e1", frames(1001, 1003))
    assert [f.id for f in window.after(1000, 10)] == [1001, 1002, 1003]
    assert window.after(999, 10) is None


def test_skipping_ahead_forgets_memory_and_sends_older_cursors_to_the_table() -> None:
    window = make_window(capacity=10)
    window.set_epoch("e1")
    window.publish("e1", frames(1, 5))
    window.skip_to("e1", 500)
    assert window.head == 500 and window.after(5, 10) is None and window.after(500, 10) == []
    window.publish("e1", frames(501, 502))
    assert [f.id for f in window.after(500, 10)] == [501, 502]
    window.skip_to("e2", 900)  # another window's skip changes nothing
    assert window.head == 502
