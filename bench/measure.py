"""The measurements: each returns numbers, prints nothing."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg2
import psycopg2.extensions
from websockets.asyncio.client import connect as async_connect

from msgsuite.client import Sender, close_sender
from msgsuite.per_thread import PerThread

from .listener import TimingListener

SenderFactory = Callable[[], Sender]


@dataclass(frozen=True)
class Target:
    hub_url: str
    database: dict[str, Any]  # psycopg2.connect keyword arguments

    def total(self) -> int:
        with psycopg2.connect(**self.database) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT total FROM stream")
            return int(cursor.fetchone()[0])


def _texts(n: int) -> list[str]:
    run = uuid.uuid4().hex[:8]
    return [f"bench {run} {i}" for i in range(n)]


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def ceiling(target: Target, concurrency: int, n: int, batch: int) -> float:
    """Messages per second of the store transaction itself, issued straight at PostgreSQL."""
    chunks = _chunks(_texts(n), batch)

    def connect() -> psycopg2.extensions.connection:
        conn: psycopg2.extensions.connection = psycopg2.connect(**target.database)
        conn.autocommit = True  # as the servers: the statement is the transaction
        return conn

    connections = PerThread(connect, lambda conn: conn.close())

    def store(chunk: list[str]) -> None:
        with connections.get().cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM store_messages('REST', %s::text[], %s::text[])",
                (chunk, [str(uuid.uuid4()) for _ in chunk]),
            )

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(store, chunks[:concurrency]))  # connect outside the timing
        started = time.perf_counter()
        list(pool.map(store, chunks[concurrency:]))
        elapsed = time.perf_counter() - started
    connections.close_all()
    return sum(len(c) for c in chunks[concurrency:]) / elapsed


def _send_all(
    make_sender: SenderFactory,
    concurrency: int,
    chunks: list[list[str]],
    on_start: Callable[[list[str]], None] = lambda chunk: None,
) -> None:
    senders = PerThread(make_sender, close_sender)

    def send(chunk: list[str]) -> None:
        on_start(chunk)
        keys = [str(uuid.uuid4()) for _ in chunk]
        if len(chunk) == 1:
            senders.get().send(chunk[0], keys[0])
        else:
            senders.get().send_batch(chunk, keys)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, chunks))
    senders.close_all()


def _wait_for_total(target: Target, total: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while target.total() < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the total did not reach {total}")
        time.sleep(0.05)


def throughput(target: Target, make_sender: SenderFactory, concurrency: int, n: int, batch: int) -> float:
    """Messages per second from the first send until the last notification reached a listener."""
    warm_up = concurrency * batch
    before = target.total()
    _send_all(make_sender, concurrency, _chunks(_texts(warm_up), batch))  # opens the connections
    _wait_for_total(target, before + warm_up)  # AMQP: the broker may still hold some
    first = target.total()
    listener = TimingListener(target.hub_url, after=first)
    try:
        started = time.perf_counter()
        _send_all(make_sender, concurrency, _chunks(_texts(n), batch))
        finished = listener.wait_until(first + n, timeout=300)
    finally:
        listener.close()
    return n / (finished - started)


@dataclass(frozen=True)
class Latency:
    offered: int
    p50: float
    p95: float
    p99: float
    achieved: float


def latency(target: Target, make_sender: SenderFactory, rate: int, seconds: float, workers: int = 16) -> Latency:
    """Send-to-notification latency at a fixed offered rate.

    Each message is measured from the moment it was scheduled to be sent, so a
    sender that falls behind shows up as latency (no coordinated omission).
    """
    texts = _texts(max(1, int(rate * seconds)))
    scheduled: dict[str, float] = {}
    listener = TimingListener(target.hub_url, after=target.total())
    senders = PerThread(make_sender, close_sender)

    def send(text: str) -> None:
        senders.get().send(text, str(uuid.uuid4()))

    try:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(send, _texts(workers)))  # warm connections, not measured
            started = time.perf_counter()
            for i, text in enumerate(texts):
                at = started + i / rate
                delay = at - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                scheduled[text] = at
                pool.submit(send, text)
        deadline = time.monotonic() + 120
        while len([t for t in texts if t in listener.arrived_by_text]) < len(texts):
            if time.monotonic() > deadline:
                raise TimeoutError("notifications missing after 120 s")
            time.sleep(0.01)
    finally:
        listener.close()
        senders.close_all()
    waits = sorted((listener.arrived_by_text[t] - scheduled[t]) * 1000 for t in texts)
    span = max(listener.arrived_by_text[t] for t in texts) - started
    return Latency(rate, _percentile(waits, 50), _percentile(waits, 95), _percentile(waits, 99), len(texts) / span)


def _percentile(sorted_values: list[float], p: float) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[int(p) - 1]


def fan_out(target: Target, listeners: int, n: int) -> float:
    """Notifications per second delivered to `listeners` listeners at once."""
    first = target.total()

    async def listen(ready: asyncio.Event, remaining: list[int]) -> float:
        async with async_connect(
            f"{target.hub_url}/notifications?after={first}", compression=None, max_size=None, open_timeout=30
        ) as websocket:
            remaining[0] -= 1
            if remaining[0] == 0:
                ready.set()
            got = 0
            async for _ in websocket:
                got += 1
                if got == n:
                    return time.perf_counter()
        raise ConnectionError("closed early")

    async def run() -> float:
        ready = asyncio.Event()
        remaining = [listeners]
        tasks = [asyncio.create_task(listen(ready, remaining)) for _ in range(listeners)]
        await asyncio.wait_for(ready.wait(), 60)
        started = time.perf_counter()
        await asyncio.get_running_loop().run_in_executor(None, ceiling, target, 2, n, 100)
        finished = await asyncio.wait_for(asyncio.gather(*tasks), 300)
        return listeners * n / (max(finished) - started)

    return asyncio.run(run())


def preload(target: Target, rows: int) -> None:
    """Adds rows the way the store function would (next totals, one doorbell), in one transaction.

    Their idempotency keys are random UUIDs, as the clients make them, so later
    keys land all over the grown index (keys such as 'preload-N' would all sort
    after every UUID and leave the part of the index that new keys touch small).
    Then settles the table as time would (VACUUM ANALYZE, CHECKPOINT), so the
    measurement after it sees a large table, not autovacuum catching up.
    """
    with psycopg2.connect(**target.database) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT total FROM stream FOR UPDATE")
        total = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO messages (id, via, message, idempotency_key) SELECT g, 'REST', 'relleno ' || g,"
            " gen_random_uuid()::text FROM generate_series(%s::bigint, %s::bigint) AS g",
            (total + 1, total + rows),
        )
        cursor.execute("UPDATE stream SET total = %s, rest_total = rest_total + %s", (total + rows, rows))
        cursor.execute("SELECT pg_notify('messages', %s)", (str(total + rows),))
    conn.close()
    conn = psycopg2.connect(**target.database)
    conn.autocommit = True  # VACUUM refuses to run inside a transaction block
    try:
        with conn.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE messages")
            cursor.execute("CHECKPOINT")
    finally:
        conn.close()
