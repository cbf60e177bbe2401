# One Dockerfile for every Python service of the suite. What two or more
# services import is installed once (stage "dependencies", requirements.txt);
# each service is a small target on top that adds its own folder and, when it
# alone imports a package, that package (requirements-<service>.txt).
# docker-compose.yml builds one target each.

FROM python:3.13-slim AS dependencies
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# No pip inside the venv: the base image's pip installs into it (--python).
RUN python -m venv --without-pip /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN pip --python /opt/venv/bin/python install -r /tmp/requirements.txt

FROM python:3.13-slim AS protos
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/protoc
COPY requirements-build.txt /tmp/requirements-build.txt
RUN /opt/protoc/bin/pip install -r /tmp/requirements-build.txt
COPY protos/ /src/protos/
RUN PATH=/opt/protoc/bin:$PATH bash /src/protos/generate.sh /opt/generated

# The user, folders and environment every Python image shares.
FROM python:3.13-slim AS base
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent suite \
 && mkdir -p /run/suite-secrets /var/lib/websocket-client \
 && chown suite:suite /run/suite-secrets /var/lib/websocket-client
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app:/app/generated \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

FROM base AS runtime
COPY --from=dependencies /opt/venv /opt/venv
COPY --from=protos /opt/generated /app/generated
COPY msgsuite/ /app/msgsuite/
USER suite

# Every secret in /run/suite-secrets (volume "secrets"); each holder's own in
# /run/suite-secrets-for/<holder> (volume "secrets-<holder>"): msgsuite/secret_plan.py.
# It also makes the private CA and the servers' certificates (cryptography).
FROM base AS secrets-init
COPY requirements-secrets-init.txt /tmp/requirements-secrets-init.txt
RUN python -m venv --without-pip /opt/venv \
 && pip --python /opt/venv/bin/python install -r /tmp/requirements-secrets-init.txt \
 && rm /tmp/requirements-secrets-init.txt
COPY msgsuite/ /app/msgsuite/
RUN python -m msgsuite.secret_plan mkdirs /run/suite-secrets-for \
 && chown -R suite:suite /run/suite-secrets-for
USER suite
ENTRYPOINT ["python", "-m", "msgsuite.secrets_init", "/run/suite-secrets", "/run/suite-secrets-for"]

FROM runtime AS migrate
USER root
COPY requirements-migrate.txt /tmp/requirements-migrate.txt
RUN pip --python /opt/venv/bin/python install -r /tmp/requirements-migrate.txt \
 && rm /tmp/requirements-migrate.txt
USER suite
COPY database/migrations/ /app/database/migrations/
COPY migrate/ /app/migrate/
CMD ["python", "-m", "migrate"]

FROM runtime AS rest-server
USER root
COPY requirements-rest-server.txt /tmp/requirements-rest-server.txt
RUN pip --python /opt/venv/bin/python install -r /tmp/requirements-rest-server.txt \
 && rm /tmp/requirements-rest-server.txt
USER suite
COPY rest_server/ /app/rest_server/
EXPOSE 8000
CMD ["python", "-m", "rest_server"]

FROM runtime AS grpc-server
USER root
COPY requirements-grpc-server.txt /tmp/requirements-grpc-server.txt
RUN pip --python /opt/venv/bin/python install -r /tmp/requirements-grpc-server.txt \
 && rm /tmp/requirements-grpc-server.txt
USER suite
COPY grpc_server/ /app/grpc_server/
EXPOSE 50051
CMD ["python", "-m", "grpc_server"]

FROM runtime AS rabbitmq-server
COPY rabbitmq_server/ /app/rabbitmq_server/
CMD ["python", "-m", "rabbitmq_server"]

FROM runtime AS websocket-hub
COPY websocket_hub/ /app/websocket_hub/
EXPOSE 8765
CMD ["python", "-m", "websocket_hub"]

FROM runtime AS websocket-client
COPY websocket_client/ /app/websocket_client/
CMD ["python", "-m", "websocket_client"]

FROM runtime AS rest-client
COPY rest_client/ /app/rest_client/
ENTRYPOINT ["python", "-m", "rest_client"]

FROM runtime AS grpc-client
COPY grpc_client/ /app/grpc_client/
ENTRYPOINT ["python", "-m", "grpc_client"]

FROM runtime AS rabbitmq-client
COPY rabbitmq_client/ /app/rabbitmq_client/
ENTRYPOINT ["python", "-m", "rabbitmq_client"]
