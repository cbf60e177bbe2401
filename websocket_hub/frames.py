"""The JSON frame a listener receives for each stored message."""

from __future__ import annotations

import json
from dataclasses import dataclass

from msgsuite.messages import StoredMessage
from msgsuite.notification import notification_text


@dataclass(frozen=True)
class Frame:
    id: int
    data: str
    created_at: float  # POSIX seconds: when its message was stored


def encode_frame(epoch: str, record: StoredMessage) -> Frame:
    payload = {
        "epoch": epoch,
        "id": record.id,
        "total": record.total,
        "via": record.via.value,
        "message": record.message,
        "created_at": record.created_at.isoformat(),
        "text": notification_text(record.via, record.message, record.total),
    }
    return Frame(record.id, json.dumps(payload, ensure_ascii=False), record.created_at.timestamp())
