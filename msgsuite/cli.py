"""The command line shared by the three clients.

    <client> "hola" "adios"                     messages as arguments
    printf 'a\\nb\\n' | <client>                  one message per input line
    <client> --count 10000 --concurrency 16     load, with progress on stderr

One result line per message on stdout; errors on stderr; exit 0 only when
every message was stored (or, for AMQP, confirmed by the broker).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TextIO

from .backoff import Backoff
from .client import Receipt, Rejected, Sender, Unreachable, close_sender
from .messages import MAX_BATCH
from .per_thread import PerThread
from .settings import InvalidSetting

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
RETRY_BACKOFF = Backoff()


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Send messages to the suite. Without messages and without --count, "
        "reads one message per line of standard input.",
    )
    parser.add_argument("messages", nargs="*", help="messages to send, one per argument")
    parser.add_argument("--count", type=_positive, help="load mode: send this many generated messages")
    parser.add_argument("--concurrency", type=_positive, default=1, help="messages in flight at once (default 1)")
    parser.add_argument(
        "--batch", type=_positive, default=1, help=f"send this many messages per request (1 to {MAX_BATCH}; default 1)"
    )
    parser.add_argument("--rate", type=_positive, help="load mode: start at most this many messages per second")
    parser.add_argument("--idempotency-key", help="the key of a single message (default: a fresh UUID per message)")
    parser.add_argument(
        "--demo",
        metavar="TEXT",
        help="what `docker compose up` runs: send TEXT once with a fixed idempotency key, "
        "unless standard input carries lines (then those are sent instead)",
    )
    parser.add_argument(
        "--retries",
        type=_non_negative,
        default=8,
        help="retries per message while the server is unreachable (default 8)",
    )
    return parser


@dataclass(frozen=True)
class Plan:
    messages: Iterator[str]
    total: int | None
    concurrency: int
    retries: int
    fixed_key: str | None
    progress: bool
    rate: int | None = None
    batch: int = 1


def parse_plan(prog: str, argv: Sequence[str], stdin: TextIO) -> Plan:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.count is not None and args.messages:
        parser.error("give either messages or --count, not both")
    if args.batch > MAX_BATCH:
        parser.error(f"--batch may be at most {MAX_BATCH}")
    if args.idempotency_key is not None and (args.count is not None or len(args.messages) != 1):
        parser.error("--idempotency-key goes with exactly one message")
    fixed_key = args.idempotency_key
    if args.demo is not None and not args.messages and args.count is None:
        # `docker compose run client` without arguments keeps the service's
        # demo command; piped lines must still win over the demo.
        piped = None if stdin.isatty() else _first_line(stdin)
        if piped is None:
            args.messages, fixed_key = [args.demo], f"demo-{prog}"
        else:
            return Plan(_chain(piped, _lines(stdin)), None, args.concurrency, args.retries, None, progress=False)
    if args.count is not None:
        run = uuid.uuid4().hex[:8]
        messages: Iterator[str] = (f"carga {run} {i}/{args.count}" for i in range(1, args.count + 1))
        total: int | None = args.count
    elif args.messages:
        messages, total = iter(args.messages), len(args.messages)
    elif stdin.isatty():
        parser.error("give messages as arguments, on standard input, or --count N")
    else:
        messages, total = _lines(stdin), None
    return Plan(
        messages,
        total,
        args.concurrency,
        args.retries,
        fixed_key,
        progress=args.count is not None,
        rate=args.rate,
        batch=args.batch,
    )


def _lines(stream: TextIO) -> Iterator[str]:
    for line in stream:
        yield line[:-1] if line.endswith("\n") else line


def _first_line(stream: TextIO) -> str | None:
    return next(_lines(stream), None)


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _positive(raw: str) -> int:
    value = _non_negative(raw)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {raw!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def deliver(
    sender: Sender, texts: list[str], keys: list[str], retries: int, backoff: Backoff = RETRY_BACKOFF
) -> list[Receipt]:
    """Sends one message, or a batch, with bounded retries; the same keys make every retry safe."""
    delays = backoff.delays(retries)
    while True:
        try:
            if len(texts) == 1:
                return [sender.send(texts[0], keys[0])]
            return sender.send_batch(texts, keys)
        except Unreachable as error:
            delay = next(delays, None)
            if delay is None:
                raise
            time.sleep(max(delay, error.retry_after or 0.0))


def _chunks(messages: Iterator[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for message in messages:
        chunk.append(message)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass
class Tally:
    done: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, ok: bool, messages: int = 1) -> None:
        with self.lock:
            if ok:
                self.done += messages
            else:
                self.failed += messages


class Progress:
    """A status line on stderr while a load runs."""

    def __init__(self, tally: Tally, total: int | None, stream: TextIO) -> None:
        self._tally, self._total, self._stream = tally, total, stream
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._report(final=True)

    def _run(self) -> None:
        interval = 0.5 if self._stream.isatty() else 2.0
        while not self._stop.wait(interval):
            self._report(final=False)

    def _report(self, final: bool) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        done, failed = self._tally.done, self._tally.failed
        of = f"/{self._total}" if self._total is not None else ""
        text = f"progress: {done}{of} sent, {failed} failed, {done / elapsed:.0f} msg/s, {elapsed:.1f} s"
        end = "\n" if final or not self._stream.isatty() else ""
        self._stream.write(("\r" if self._stream.isatty() else "") + text + end)
        self._stream.flush()


def run(
    prog: str,
    sender_factory_from_env: Callable[[], Callable[[], Sender]],
    argv: Sequence[str] | None = None,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    stderr: TextIO = sys.stderr,
) -> int:
    """Sends what the command line asks for; returns the exit code.

    sender_factory_from_env reads the client's settings (after the command
    line, so --help needs none) and returns what makes one sender per thread.
    """
    plan = parse_plan(prog, sys.argv[1:] if argv is None else argv, stdin)
    try:
        make_sender = sender_factory_from_env()
    except InvalidSetting as error:
        print(f"{prog}: {error}", file=stderr)
        return EXIT_USAGE
    tally = Tally()
    out_lock = threading.Lock()
    senders = PerThread(make_sender, close_sender)

    def send_chunk(first_number: int, texts: list[str]) -> None:
        keys = [plan.fixed_key or str(uuid.uuid4()) for _ in texts]
        try:
            receipts = deliver(senders.get(), texts, keys, plan.retries)
        except (Rejected, Unreachable) as error:
            kind = "rejected" if isinstance(error, Rejected) else "not delivered"
            which = (
                f"message {first_number} (key={keys[0]})"
                if len(texts) == 1
                else f"batch of messages {first_number}-{first_number + len(texts) - 1}"
            )
            with out_lock:
                print(f"{prog}: {which} {kind}: {error}", file=stderr, flush=True)
            tally.count(ok=False, messages=len(texts))
            return
        except Exception as error:  # an unexpected failure still must not lose the other results
            with out_lock:
                print(
                    f"{prog}: message {first_number} failed: {type(error).__name__}: {error}", file=stderr, flush=True
                )
            tally.count(ok=False, messages=len(texts))
            return
        with out_lock:
            for receipt, key in zip(receipts, keys, strict=True):
                print(receipt.line(key), file=stdout, flush=True)
        tally.count(ok=True, messages=len(texts))

    try:
        with _maybe_progress(plan, tally, stderr), ThreadPoolExecutor(max_workers=plan.concurrency) as pool:
            # Bounded submission keeps a 1,000,000-message load from queueing
            # a million futures at once.
            slots = threading.BoundedSemaphore(plan.concurrency * 4)
            started = time.monotonic()
            number = 1
            for chunk in _chunks(plan.messages, plan.batch):
                if plan.rate:
                    time.sleep(max(0.0, started + (number - 1) / plan.rate - time.monotonic()))
                slots.acquire()
                future = pool.submit(send_chunk, number, chunk)
                number += len(chunk)
                future.add_done_callback(lambda _: slots.release())
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=stderr)
        return EXIT_FAILED
    finally:
        senders.close_all()
    if tally.failed:
        print(f"{prog}: {tally.failed} of {tally.done + tally.failed} messages failed", file=stderr)
        return EXIT_FAILED
    return EXIT_OK


def _maybe_progress(plan: Plan, tally: Tally, stderr: TextIO) -> AbstractContextManager[object]:
    return Progress(tally, plan.total, stderr) if plan.progress else nullcontext()


def main(prog: str, sender_factory_from_env: Callable[[], Callable[[], Sender]]) -> None:
    sys.exit(run(prog, sender_factory_from_env))
