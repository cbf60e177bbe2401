"""The one place that spells the notification text."""

from __future__ import annotations

from .messages import Via

_TEMPLATE = "Se ingresó un registro mediante {via} , con el mensaje {message}, total de mensajes {total}"


def notification_text(via: Via, message: str, total: int) -> str:
    return _TEMPLATE.format(via=via.value, message=message, total=total)
