"""What a message is: its rules, the protocols it arrives by and its stored form."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

MAX_MESSAGE_CHARS = 4096
MAX_KEY_CHARS = 200
MAX_BATCH = 1000


class Via(str, enum.Enum):
    """The protocol a message arrived by, spelled as the notification shows it."""

    GRPC = "GRPC"
    REST = "REST"
    RABBITMQ = "RabbitMQ"


class InvalidMessage(ValueError):
    """The message breaks a rule; the text says which, for the sender."""

    @property
    def reason(self) -> str:
        return str(self)


def validate_text(text: object) -> str:
    """Returns the text unchanged when it may be stored, else raises InvalidMessage."""
    if not isinstance(text, str):
        raise InvalidMessage("message must be a string")
    if not text:
        raise InvalidMessage("message must not be empty")
    if len(text) > MAX_MESSAGE_CHARS:
        raise InvalidMessage(f"message is {len(text)} characters long; the limit is {MAX_MESSAGE_CHARS}")
    if "\x00" in text:
        raise InvalidMessage("message must not contain the NUL character")
    if text.isspace():
        raise InvalidMessage("message must not be blank")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidMessage("message is not valid UTF-8 (it contains a lone surrogate)") from None
    return text


def decode_text(body: bytes) -> str:
    """Decodes a raw UTF-8 body (AMQP) and validates it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidMessage(f"message is not valid UTF-8 (byte {error.start})") from None
    return validate_text(text)


def validate_key(key: str | None) -> str | None:
    """An idempotency key is optional: 1 to 200 printable ASCII characters."""
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_CHARS:
        raise InvalidMessage(f"idempotency key must be 1 to {MAX_KEY_CHARS} characters long")
    if not all(" " < ch <= "~" for ch in key):
        raise InvalidMessage("idempotency key must be printable ASCII without spaces")
    return key


def validate_batch(texts: list[object], keys: list[str | None]) -> list[str]:
    """Messages are stored all or none: the first bad one refuses them, naming its place in a batch."""
    if len(texts) == 1:
        validate_key(keys[0])
        return [validate_text(texts[0])]
    if not texts:
        raise InvalidMessage("a batch needs at least one message")
    if len(texts) > MAX_BATCH:
        raise InvalidMessage(f"a batch holds at most {MAX_BATCH} messages, not {len(texts)}")
    valid = []
    for index, (text, key) in enumerate(zip(texts, keys, strict=True)):
        try:
            valid.append(validate_text(text))
            validate_key(key)
        except InvalidMessage as error:
            raise InvalidMessage(f"message {index} of the batch: {error}") from None
    return valid


@dataclass(frozen=True)
class StoredMessage:
    id: int
    via: Via
    message: str
    created_at: datetime
    idempotency_key: str | None = None
    repeated: bool = False

    @property
    def total(self) -> int:
        # The id is the number of messages stored once this one was stored.
        return self.id

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "total": self.total,
            "via": self.via.value,
            "message": self.message,
            "created_at": self.created_at.isoformat(),
            "idempotency_key": self.idempotency_key,
            "repeated": self.repeated,
        }
