"""python -m rabbitmq_server.dead_letters: lists the dead-letter queue and sends chosen messages again.

    list                  one line per dead letter: message_id | reason | start of the body
    resend KEY [KEY ...]  re-publishes the dead letters with these message_ids to the messages exchange
    resend --all          re-publishes every dead letter

Listing takes nothing away: messages are fetched without acknowledging them,
and go back to the queue when the channel closes. A re-sent message keeps its
message_id and properties (without the rejection headers); its dead-letter
copy is acknowledged only after the broker confirmed the re-publish. If the
command dies midway, a message is either still in the dead-letter queue or
re-sent, or both: its message_id (the idempotency key) stores it once.

Exit status: 0 done; 1 a chosen key is not in the queue, or the broker is
unreachable or refused a re-publish; 2 usage.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TextIO

import pika
import pika.exceptions
from pika.spec import BasicProperties

from msgsuite.amqp import connection_parameters
from msgsuite.settings import BrokerSettings, InvalidSetting

from .consumer import REASON_HEADER

PROG = "dead-letters"
DEAD_LETTER_QUEUE = "messages.dead-letter"  # bound to the dead-letter exchange in rabbitmq/definitions
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
PREVIEW_CHARS = 40
# What the broker itself adds when it dead-letters (a reject, an expiry): the
# story of the last refusal, not part of the message.
BROKER_DEATH_HEADERS = frozenset(
    (
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
    )
)


class Channel(Protocol):
    """The part of pika's BlockingChannel used here (with publisher confirms on)."""

    def queue_declare(self, queue: str, passive: bool = ...) -> object: ...
    def basic_get(self, queue: str, auto_ack: bool = ...) -> tuple[object, BasicProperties | None, bytes | None]: ...
    def basic_publish(
        self, exchange: str, routing_key: str, body: bytes, properties: BasicProperties, mandatory: bool = ...
    ) -> None: ...
    def basic_ack(self, delivery_tag: int = ..., multiple: bool = ...) -> None: ...


@dataclass(frozen=True)
class DeadLetter:
    delivery_tag: int
    properties: BasicProperties
    body: bytes

    @property
    def message_id(self) -> str | None:
        key: str | None = self.properties.message_id
        return key

    @property
    def reason(self) -> str:
        headers = self.properties.headers or {}
        reason = headers.get(REASON_HEADER) or headers.get("x-first-death-reason") or "no reason recorded"
        return _one_line(reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason))

    def line(self) -> str:
        try:
            whole: str | bytes = self.body.decode("utf-8")
        except UnicodeDecodeError:
            whole = self.body  # shown as bytes: b'\xff...'
        more = "…" if len(whole) > PREVIEW_CHARS else ""
        return f"{self.message_id or '-'} | {self.reason} | {whole[:PREVIEW_CHARS]!r}{more} ({len(self.body)} bytes)"

    def properties_to_resend(self) -> BasicProperties:
        properties = copy.copy(self.properties)
        headers = {
            name: value
            for name, value in (self.properties.headers or {}).items()
            if name != REASON_HEADER and name not in BROKER_DEATH_HEADERS
        }
        properties.headers = headers or None
        return properties


def take_all(channel: Channel, queue: str) -> list[DeadLetter]:
    """Every message the queue holds now, unacknowledged: the broker keeps each until it is acknowledged.

    At most the number the queue held at the start, so a message dead-lettered
    again meanwhile (re-sent and refused once more) is not taken twice.
    """
    ready = channel.queue_declare(queue, passive=True).method.message_count  # type: ignore[attr-defined]
    letters = []
    for _ in range(ready):
        method, properties, body = channel.basic_get(queue, auto_ack=False)
        if method is None:
            break
        letters.append(DeadLetter(method.delivery_tag, properties or BasicProperties(), body or b""))  # type: ignore[attr-defined]
    return letters


def choose(letters: Sequence[DeadLetter], keys: Sequence[str] | None) -> tuple[list[DeadLetter], list[str]]:
    """The letters to re-send (every one when keys is None) and the keys that match none."""
    if keys is None:
        return list(letters), []
    wanted = set(keys)
    found = {letter.message_id for letter in letters}
    return [letter for letter in letters if letter.message_id in wanted], [k for k in keys if k not in found]


def resend(channel: Channel, broker: BrokerSettings, letters: Sequence[DeadLetter], out: TextIO) -> None:
    """Re-publishes each letter, then acknowledges its dead-letter copy (publisher confirms make publish wait).

    Raises pika's UnroutableError or NackError when the broker does not take
    one: that letter and the ones after it stay in the dead-letter queue.
    """
    for letter in letters:
        channel.basic_publish(
            broker.exchange, broker.routing_key, letter.body, letter.properties_to_resend(), mandatory=True
        )
        channel.basic_ack(letter.delivery_tag)
        print(f"resent {letter.message_id or '-'}", file=out, flush=True)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m rabbitmq_server.dead_letters",
        description="List the dead-letter queue, or send dead letters to the messages exchange again.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="one line per dead letter: message_id | reason | body; removes nothing")
    again = commands.add_parser("resend", help="re-publish dead letters by message_id, or --all")
    again.add_argument("keys", nargs="*", metavar="KEY", help="message_id of a dead letter to send again")
    again.add_argument("--all", action="store_true", help="send every dead letter again")
    for command in (listing, again):
        command.add_argument("--queue", default=DEAD_LETTER_QUEUE, help=f"the dead-letter queue ({DEAD_LETTER_QUEUE})")
    args = parser.parse_args(argv)
    if args.command == "resend" and bool(args.keys) == args.all:
        again.error("name the message_ids to send again, or --all (not both)")
    return args


def run(
    args: argparse.Namespace,
    broker: BrokerSettings,
    connect: Callable[[pika.ConnectionParameters], pika.BlockingConnection] = pika.BlockingConnection,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    queue: str = args.queue
    connection = None
    try:
        connection = connect(connection_parameters(broker, "dead-letters"))
        channel = connection.channel()
        channel.confirm_delivery()
        letters = take_all(channel, queue)
        if args.command == "list":
            for letter in letters:
                print(letter.line(), file=out)
            print(f"{PROG}: {len(letters)} in {queue!r}", file=err)
            return EXIT_OK
        chosen, missing = choose(letters, None if args.all else args.keys)
        for key in missing:
            print(f"{PROG}: no dead letter with message_id {key!r}", file=err)
        resend(channel, broker, chosen, out)
        print(f"{PROG}: resent {len(chosen)} of {len(letters)} in {queue!r}", file=err)
        return EXIT_FAILED if missing else EXIT_OK
    except (pika.exceptions.AMQPError, OSError) as error:
        kept = f"; what was not re-sent stays in {queue!r}" if args.command == "resend" else ""
        print(f"{PROG}: {_broker_failure(error, broker)}{kept}", file=err)
        return EXIT_FAILED
    finally:
        # What was taken and not acknowledged goes back to the dead-letter queue.
        if connection is not None and connection.is_open:
            connection.close()


def _broker_failure(error: Exception, broker: BrokerSettings) -> str:
    if isinstance(error, pika.exceptions.UnroutableError):
        return f"exchange {broker.exchange!r} routes {broker.routing_key!r} to no queue"
    if isinstance(error, pika.exceptions.NackError):
        return "the broker did not accept a re-publish"
    if isinstance(error, pika.exceptions.ChannelClosedByBroker):
        return f"the broker refused: {error.reply_text}"
    return f"broker unreachable or connection lost: {type(error).__name__} {error}".strip()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        broker = BrokerSettings.from_env()
    except InvalidSetting as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_USAGE
    return run(args, broker)


if __name__ == "__main__":
    sys.exit(main())
