"""python -m bench --only protocols: each protocol's path against two ceilings measured in the same run.

For each protocol and each load (single messages at concurrency 16 and 1, batches of 100 at concurrency
4), the same Node load generator (bench/load/) drives the suite's server (the path) and the same server
answering without storing (the no-op ceiling, bench/noop.py); the database ceiling is the store statement
issued straight at PostgreSQL (measure.ceiling) with the same concurrency and batch size. Every round
measures every figure once, path and no-op in alternating order, and each figure is the median of the
rounds.

REST and gRPC: a message counts when its 2xx / OK answer arrived (the servers answer once it is stored).
AMQP: publishing is not the rate; the path counts until the messages are stored (the stream's total), the
no-op until the broker has delivered the last one (the queue's ready count is 0 once every publish was
confirmed; at most the prefetch may then still await its acknowledgement).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import pika
import psycopg2

from harness.stack import Stack

from . import generators, measure, noop
from .generators import GeneratorRun
from .report import ProtocolRow, Spread

BATCH_CONCURRENCY = 4


@dataclass(frozen=True)
class Load:
    concurrency: int
    batch: int
    requests: int  # per run; a batch is one request

    @property
    def messages(self) -> int:
        return self.requests * self.batch


@dataclass(frozen=True)
class Counts:
    runs: int  # rounds; each figure is the median of this many runs
    single: int  # messages per run at concurrency 16
    serial: int  # messages per run at concurrency 1
    batches: int  # batches of 100 per run at BATCH_CONCURRENCY

    def loads(self) -> tuple[Load, ...]:
        return (Load(16, 1, self.single), Load(1, 1, self.serial), Load(BATCH_CONCURRENCY, 100, self.batches))


FULL = Counts(7, 8_000, 1_500, 400)


@dataclass
class Figures:
    """What the rounds measured for one protocol and one load."""

    path: list[float] = field(default_factory=list)
    noop: list[float] = field(default_factory=list)
    generator_cpu: list[float] = field(default_factory=list)  # share of one core, every run of the generator
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, rate: float, generated: GeneratorRun) -> None:
        getattr(self, kind).append(rate)
        self.generator_cpu.append(generated.cpu_share)
        for error, count in generated.errors.items():
            self.errors[f"{kind}: {error}"] = self.errors.get(f"{kind}: {error}", 0) + count


class Driver(Protocol):
    def measure(self, kind: str, load: Load) -> tuple[float, GeneratorRun]:
        """One run of `kind` ("path" or "noop") at `load`: messages per second and the generator's report."""
        ...


class Stream:
    """The stream's total, read on one open connection (polled every few milliseconds)."""

    def __init__(self, target: measure.Target) -> None:
        self._connection = psycopg2.connect(**target.database)
        self._connection.autocommit = True

    def total(self) -> int:
        with self._connection.cursor() as cursor:
            cursor.execute("SELECT total FROM stream")
            return int(cursor.fetchone()[0])

    def close(self) -> None:
        self._connection.close()

    def check(self, kind: str, before: int, messages: int) -> None:
        """The path stored what it was sent and the no-op server nothing: each reached the server it meant to."""
        stored = self.total() - before
        if (kind == "path" and stored < messages) or (kind == "noop" and stored != 0):
            raise RuntimeError(f"{kind} run of {messages} messages: {stored} stored")


class Direct:
    """REST or gRPC: the generator's own rate; answered means stored (path) or answered (no-op)."""

    def __init__(self, script: str, option: str, stream: Stream, path_address: str, noop_address: str) -> None:
        self._script, self._option, self._stream = script, option, stream
        self._addresses = {"path": path_address, "noop": noop_address}

    def measure(self, kind: str, load: Load) -> tuple[float, GeneratorRun]:
        before = self._stream.total()
        generated = generators.run(
            self._script,
            {
                self._option: self._addresses[kind],
                "concurrency": load.concurrency,
                "amount": load.requests,
                "warmup": load.concurrency * 5,
                "batch": load.batch,
            },
        )
        self._stream.check(kind, before, generated.completed)
        return generated.rate, generated


class Amqp:
    """AMQP: publishes with confirms, then waits for the consumer: the real one (path) or the no-op one."""

    def __init__(self, stack: Stack, stream: Stream) -> None:
        self._stack, self._stream = stack, stream
        self._options: dict[str, object] = {"host": stack.address("rabbitmq"), "port": 5672, "user": "publisher"}
        self._env = {"AMQP_PASSWORD": stack.secret("amqp_publisher_password")}
        admin = pika.PlainCredentials("suite", stack.secret("rabbitmq_password"))
        # No heartbeats: this connection sits idle while the other protocols run (a full round is minutes).
        self._broker = pika.BlockingConnection(
            pika.ConnectionParameters("127.0.0.1", stack.port("rabbitmq", 5672), credentials=admin, heartbeat=0)
        )
        self._channel = self._broker.channel()
        self._consumer = "path"

    def close(self) -> None:
        self.use("path")
        self._broker.close()

    def measure(self, kind: str, load: Load) -> tuple[float, GeneratorRun]:
        self.use(kind)
        before = self._stream.total()
        generated, done_at = self._publish(load, self._done(kind, load.messages))
        self._stream.check(kind, before, load.messages)
        return load.messages / (done_at - generated.started_at), generated

    def use(self, kind: str) -> None:
        """Switches consumers: stops the real one while the no-op one runs, and back; warms the new one up."""
        if kind == self._consumer:
            return
        if kind == "noop":
            self._stack.compose("stop", "rabbitmq-server")
            noop.start(self._stack, "rabbitmq-server")
        else:
            noop.remove(self._stack, "rabbitmq-server")
            self._stack.compose("start", "rabbitmq-server")
            self._stack.wait_healthy(["rabbitmq-server"])
        self._consumer = kind
        deadline = time.monotonic() + 60
        while self._queue()[1] != 1:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no consumer on the messages queue ({kind}):\n{noop.logs(self._stack, 'rabbitmq-server')}"
                )
            time.sleep(0.2)
        self._publish(Load(4, 1, 200), self._done(kind, 200))

    def _publish(self, load: Load, done: Callable[[], bool]) -> tuple[GeneratorRun, float]:
        options = {
            **self._options,
            "concurrency": load.concurrency,
            "amount": load.requests,
            "warmup": 0,
            "batch": load.batch,
        }
        return generators.run_until("amqp.js", options, done, self._env)

    def _done(self, kind: str, messages: int) -> Callable[[], bool]:
        if kind == "noop":
            return lambda: self._queue()[0] == 0
        stored = self._stream.total() + messages
        return lambda: self._stream.total() >= stored

    def _queue(self) -> tuple[int, int]:
        """The messages queue's ready messages and consumers (a passive declare: the broker's own count)."""
        declared = self._channel.queue_declare("messages", passive=True).method
        return int(declared.message_count), int(declared.consumer_count)


@contextmanager
def _stream_and_amqp(stack: Stack, target: measure.Target) -> Iterator[tuple[Stream, Amqp]]:
    stream = Stream(target)
    try:
        amqp = Amqp(stack, stream)
        try:
            yield stream, amqp
        finally:
            amqp.close()
    finally:
        stream.close()


def compare(stack: Stack, target: measure.Target, counts: Counts, progress: Callable[[str], None]) -> list[ProtocolRow]:
    loads = counts.loads()
    database: dict[Load, list[float]] = {load: [] for load in loads}
    figures: dict[tuple[str, Load], Figures] = {}
    # Before the no-op servers start: `compose port` could answer with theirs (they run as the same service).
    # The generators and the database ceiling reach every server at its own address (see Stack.address).
    rest_path, grpc_path = f"http://{stack.address('rest-server')}:8000", f"{stack.address('grpc-server')}:50051"
    target = measure.Target(target.hub_url, {**target.database, "host": stack.address("database"), "port": 5432})
    with noop.rest_and_grpc(stack) as (rest_noop, grpc_noop), _stream_and_amqp(stack, target) as (stream, amqp):
        drivers: dict[str, Driver] = {
            "REST": Direct("rest.js", "url", stream, rest_path, rest_noop),
            "gRPC": Direct("grpc.js", "target", stream, grpc_path, grpc_noop),
            "RabbitMQ": amqp,
        }
        for round_number in range(counts.runs):
            order = ("path", "noop") if round_number % 2 == 0 else ("noop", "path")
            progress(f"protocols: round {round_number + 1} of {counts.runs} ({' then '.join(order)})")
            for load in loads:
                database[load].append(measure.ceiling(target, load.concurrency, load.messages, load.batch))
            for protocol, driver in drivers.items():
                for kind in order:
                    for load in loads:
                        rate, generated = driver.measure(kind, load)
                        figures.setdefault((protocol, load), Figures()).add(kind, rate, generated)
    return [
        ProtocolRow(
            protocol,
            load.concurrency,
            load.batch,
            load.messages,
            Spread(tuple(found.path)),
            Spread(tuple(found.noop)),
            Spread(tuple(database[load])),
            Spread(tuple(found.generator_cpu)),
            found.errors,
            waits_for_store=protocol != "RabbitMQ",
        )
        for (protocol, load), found in figures.items()
    ]
