"""python -m rabbitmq_server: consumes the queue into the database until SIGTERM."""
from __future__ import annotations

import sys

from msgsuite import logs, shutdown
from msgsuite.database import ConnectionPool
from msgsuite.settings import BrokerSettings, DatabaseSettings, MissingSetting, integer, optional

from .consumer import Consumer


def main() -> int:
    log = logs.configure("rabbitmq-server")
    try:
        database = DatabaseSettings.from_env()
        broker = BrokerSettings.from_env()
        prefetch = integer("RABBITMQ_PREFETCH", 500)
        heartbeat_file = optional("HEARTBEAT_FILE", "/tmp/rabbitmq-server.alive")
    except MissingSetting as error:
        log.error("cannot start: %s", error)
        return 2
    pool = ConnectionPool(database, size=1)
    consumer = Consumer(broker, pool, prefetch, heartbeat_file)
    shutdown.on_stop(consumer.stop)
    log.info("starting: broker %s:%d, database %s:%d", broker.host, broker.port, database.host, database.port)
    consumer.run()
    pool.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
