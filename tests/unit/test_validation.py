import pytest

from msgsuite.messages import (
    MAX_BATCH,
    MAX_MESSAGE_CHARS,
    InvalidMessage,
    decode_text,
    validate_batch,
    validate_key,
    validate_text,
)


@pytest.mark.parametrize(
    "text",
    [
        "a",
        "hola",
        " leading and trailing ",
        "ñandú 🎉",
        "x" * MAX_MESSAGE_CHARS,
        "'; DROP TABLE messages; --",
        "<script>alert(1)</script>",
        "line\nbreak",
    ],
)
def test_valid_text_is_returned_unchanged(text: str) -> None:
    assert validate_text(text) is text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ", "blank"),
        ("\t\n \u3000", "blank"),
        ("x" * (MAX_MESSAGE_CHARS + 1), "limit is 4096"),
        ("a\x00b", "NUL"),
        ("bad \udc80 surrogate", "UTF-8"),
        (42, "string"),
        (None, "string"),
    ],
)
def test_invalid_text_is_refused_with_a_reason(text: object, reason: str) -> None:
    with pytest.raises(InvalidMessage, match=reason):
        validate_text(text)


def test_length_counts_characters_not_bytes() -> None:
    assert validate_text("ñ" * MAX_MESSAGE_CHARS)
    with pytest.raises(InvalidMessage):
        validate_text("ñ" * (MAX_MESSAGE_CHARS + 1))


def test_decode_rejects_invalid_utf8_and_accepts_valid() -> None:
    assert decode_text("canción".encode()) == "canción"
    with pytest.raises(InvalidMessage, match="UTF-8"):
        decode_text(b"\xff\xfe bad")
    with pytest.raises(InvalidMessage, match="empty"):
        decode_text(b"")


@pytest.mark.parametrize("key", [None, "k", "demo-rest-client", "a" * 200, "550e8400-e29b-41d4-a716-446655440000"])
def test_valid_keys(key: str | None) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("key", ["", "a" * 201, "has space", "ñ", "tab\t"])
def test_invalid_keys(key: str) -> None:
    with pytest.raises(InvalidMessage, match="idempotency key"):
        validate_key(key)


def test_a_batch_is_refused_whole_naming_the_bad_message() -> None:
    assert validate_batch(["a", "b"], [None, "k"]) == ["a", "b"]
    with pytest.raises(InvalidMessage, match="message 1 of the batch: message must not be blank"):
        validate_batch(["a", " ", "c"], [None, None, None])
    with pytest.raises(InvalidMessage, match="idempotency key"):
        validate_batch(["a"], ["bad key"])
    with pytest.raises(InvalidMessage, match="at least one"):
        validate_batch([], [])
    with pytest.raises(InvalidMessage, match="at most"):
        validate_batch(["a"] * (MAX_BATCH + 1), [None] * (MAX_BATCH + 1))
