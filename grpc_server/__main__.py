"""python -m grpc_server: serves suite.v1.MessageService, health and reflection on GRPC_PORT."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from suite.v1 import messages_pb2, messages_pb2_grpc

from msgsuite import crash, logs, metrics, shutdown
from msgsuite.auth import RateLimit, RateLimiter, TokenCheck, auth_enabled
from msgsuite.database import ConnectionPool, DatabaseError
from msgsuite.messages import Via
from msgsuite.schema import wait_for_schema
from msgsuite.settings import DatabaseSettings, integer, load_or_exit, secret
from msgsuite.store import Messages, MessageStore
from msgsuite.tls import TlsSettings

from .access import AccessInterceptor
from .service import MessageService

MESSAGE_SERVICE = messages_pb2.DESCRIPTOR.services_by_name["MessageService"].full_name
# A valid batch is at most 1000 messages of 4096 characters (16 KiB of UTF-8
# each); larger requests are refused by gRPC itself with RESOURCE_EXHAUSTED.
MAX_REQUEST_BYTES = 17 * 1024 * 1024
GRACE_SECONDS = 10


@dataclass(frozen=True)
class GrpcServerSettings:
    database: DatabaseSettings
    port: int
    workers: int  # calls served at once
    metrics_port: int
    tls: TlsSettings  # TLS=on: TLS server credentials with its own certificate
    tokens: TokenCheck  # AUTH=on: the digest of the gRPC clients' token
    rate_limit: RateLimit

    @classmethod
    def from_env(cls) -> GrpcServerSettings:
        return cls(
            DatabaseSettings.from_env("grpc-server"),
            integer("GRPC_PORT", 50051),
            integer("GRPC_WORKERS", 16),
            integer("METRICS_PORT", 9464),
            TlsSettings.from_env("grpc-server"),
            TokenCheck(secret("GRPC_TOKEN_SHA256") if auth_enabled() else None),
            RateLimit.from_env(),
        )


def watch_database(pool: ConnectionPool, servicer: health.HealthServicer, stopping: threading.Event) -> None:
    """Reports SERVING while the database answers, NOT_SERVING while it does not.

    Any other error ends the process (see crash.py): a frozen status would lie.
    """
    log = logging.getLogger("grpc-server")
    serving: bool | None = None
    while not stopping.is_set():
        try:
            with pool.connection() as conn, conn.cursor() as cursor:
                cursor.execute("SELECT 1")
            now_serving = True
        except DatabaseError as error:
            now_serving = False
            if serving is not False:
                log.warning("database unreachable, reporting NOT_SERVING: %s", error)
        if now_serving != serving and not stopping.is_set():
            status = (
                health_pb2.HealthCheckResponse.SERVING if now_serving else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            for name in ("", MESSAGE_SERVICE):
                servicer.set(name, status)
            if now_serving:
                log.info("database reachable, reporting SERVING")
            serving = now_serving
        stopping.wait(2.0 if serving else 1.0)


def stored_in(pool: ConnectionPool) -> Messages:
    return MessageStore(pool, Via.GRPC)


def main(messages_for: Callable[[ConnectionPool], Messages] = stored_in) -> int:
    """messages_for: what SendMessage stores through (the benchmark's no-op ceiling swaps it, see noop.py)."""
    log = logs.configure("grpc-server")
    settings = load_or_exit(log, GrpcServerSettings.from_env)
    crash.exit_on_thread_errors()
    metrics.serve(settings.metrics_port)
    pool = ConnectionPool(settings.database)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.workers),
        interceptors=[AccessInterceptor(settings.tokens, RateLimiter(settings.rate_limit))],
        options=[("grpc.max_receive_message_length", MAX_REQUEST_BYTES)],
    )
    messages_pb2_grpc.add_MessageServiceServicer_to_server(MessageService(messages_for(pool)), server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", MESSAGE_SERVICE):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    reflection.enable_server_reflection((MESSAGE_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    address = f"0.0.0.0:{settings.port}"
    if settings.tls.cert_file and settings.tls.key_file:
        with open(settings.tls.key_file, "rb") as key, open(settings.tls.cert_file, "rb") as certificate:
            server.add_secure_port(address, grpc.ssl_server_credentials([(key.read(), certificate.read())]))
    else:
        server.add_insecure_port(address)

    def stop() -> None:
        log.info("stopping: finishing in-flight calls (up to %d s)", GRACE_SECONDS)
        health_servicer.enter_graceful_shutdown()
        server.stop(GRACE_SECONDS)

    stopping = shutdown.on_stop(stop)
    if not wait_for_schema(settings.database, log, stopping):
        return 0
    server.start()
    log.info(
        "listening on port %d (%s), database %s:%d, bearer token %s",
        settings.port,
        "TLS" if settings.tls.enabled else "plain text",
        settings.database.host,
        settings.database.port,
        "required" if settings.tokens.required else "not required (AUTH=off)",
    )
    threading.Thread(target=watch_database, args=(pool, health_servicer, stopping), daemon=True).start()
    server.wait_for_termination()
    pool.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
