"""python -m grpc_server.healthcheck [TARGET]: exit 0 when grpc.health.v1 says SERVING.

With TLS=on it connects over TLS and verifies the server against TLS_CA_FILE
(TARGET localhost:50051 matches the certificate's `localhost` name)."""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2

from msgsuite.settings import InvalidSetting
from msgsuite.tls import TlsSettings


def open_channel(target: str, tls: TlsSettings) -> grpc.Channel:
    if not tls.enabled:
        return grpc.insecure_channel(target)
    return grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=tls.ca_pem()))


def main(argv: list[str]) -> int:
    target = argv[0] if argv else "localhost:50051"
    try:
        tls = TlsSettings.from_env()
    except InvalidSetting as error:
        print(f"unhealthy: {error}", file=sys.stderr)
        return 1
    with open_channel(target, tls) as channel:
        # The method itself rather than health_pb2_grpc.HealthStub, whose stubs do not declare Check.
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            response: health_pb2.HealthCheckResponse = check(health_pb2.HealthCheckRequest(), timeout=3)
        except grpc.RpcError as error:
            print(f"unhealthy: {error.code().name}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    print(status)
    return 0 if response.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
