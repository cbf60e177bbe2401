"""The one place that spells the notification text."""

from __future__ import annotations

from .messages import Via

_TEMPLATE = "Se ingresó un registro mediante {via} , con el mensaje {message}, total de mensajes {total}"
# What every notification line starts with, for readers of the websocket client's log.
NOTIFICATION_PREFIX = _TEMPLATE.split("{via}", 1)[0]


def notification_text(via: Via, message: str, total: int) -> str:
    return _TEMPLATE.format(via=via.value, message=message, total=total)
