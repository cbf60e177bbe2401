"""python -m rabbitmq_server: consumes the queue into the database until SIGTERM."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from msgsuite import crash, logs, metrics, shutdown
from msgsuite.database import ConnectionPool
from msgsuite.messages import Via
from msgsuite.schema import wait_for_schema
from msgsuite.settings import BrokerSettings, DatabaseSettings, integer, load_or_exit, optional
from msgsuite.store import StoreFunction, store_messages

from .consumer import Consumer


@dataclass(frozen=True)
class ConsumerSettings:
    database: DatabaseSettings
    broker: BrokerSettings
    prefetch: int  # deliveries held at once, and so the most stored in one transaction
    liveness_file: str  # touched on progress; the healthcheck reads its age
    metrics_port: int

    @classmethod
    def from_env(cls) -> ConsumerSettings:
        return cls(
            DatabaseSettings.from_env("rabbitmq-server"),
            BrokerSettings.from_env(),
            integer("RABBITMQ_PREFETCH", 500),
            optional("LIVENESS_FILE", "/tmp/rabbitmq-server.alive"),
            integer("METRICS_PORT", 9464),
        )


def stored_in(pool: ConnectionPool) -> StoreFunction:
    return lambda texts, keys: store_messages(pool, Via.RABBITMQ, texts, keys)


def main(write_for: Callable[[ConnectionPool], StoreFunction] = stored_in) -> int:
    """write_for: how a batch is stored (the benchmark's no-op ceiling swaps it, see noop.py)."""
    log = logs.configure("rabbitmq-server")
    settings = load_or_exit(log, ConsumerSettings.from_env)
    database, broker = settings.database, settings.broker
    crash.exit_on_thread_errors()
    metrics.serve(settings.metrics_port)
    pool = ConnectionPool(database, size=1)
    consumer = Consumer(broker, write_for(pool), settings.prefetch, settings.liveness_file)
    stopping = shutdown.on_stop(consumer.stop)
    if not wait_for_schema(database, log, stopping):
        return 0
    log.info("starting: broker %s:%d, database %s:%d", broker.host, broker.port, database.host, database.port)
    try:
        consumer.run()
    except Exception as error:
        crash.exit_now("the consumer", error)
    pool.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
