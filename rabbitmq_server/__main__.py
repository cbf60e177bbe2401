"""python -m rabbitmq_server: consumes the queue into the database until SIGTERM."""

from __future__ import annotations

import sys

from msgsuite import crash, logs, shutdown
from msgsuite.database import ConnectionPool
from msgsuite.settings import BrokerSettings, DatabaseSettings, integer, load_or_exit, optional

from .consumer import Consumer


def main() -> int:
    log = logs.configure("rabbitmq-server")
    database, broker, prefetch, liveness_file = load_or_exit(
        log,
        lambda: (
            DatabaseSettings.from_env(),
            BrokerSettings.from_env(),
            integer("RABBITMQ_PREFETCH", 500),
            optional("LIVENESS_FILE", "/tmp/rabbitmq-server.alive"),
        ),
    )
    crash.exit_on_thread_errors()
    pool = ConnectionPool(database, size=1)
    consumer = Consumer(broker, pool, prefetch, liveness_file)
    shutdown.on_stop(consumer.stop)
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
