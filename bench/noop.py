"""The no-op servers: each service's image and compose definition (same settings, same middleware) running
its `.noop` module, which answers or acknowledges without storing, on the bench's own stack."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import requests

from harness.stack import Stack

MODULES = {
    "rest-server": "rest_server.noop",
    "grpc-server": "grpc_server.noop",
    "rabbitmq-server": "rabbitmq_server.noop",
}


def container_name(stack: Stack, service: str) -> str:
    return f"{stack.project}-{service}-noop"


def start(stack: Stack, service: str, container_port: int | None = None) -> int | None:
    """`compose run -d` of the service with its no-op module; the host port of container_port, if one."""
    name = container_name(stack, service)
    ports = ["-p", f"127.0.0.1::{container_port}"] if container_port else []
    stack.compose("run", "-d", "--no-deps", "--name", name, *ports, service, "python", "-m", MODULES[service])
    if container_port is None:
        return None
    out = _docker("port", name, str(container_port))
    return int(out.splitlines()[0].rsplit(":", 1)[1])


def remove(stack: Stack, service: str) -> None:
    subprocess.run(["docker", "rm", "-f", container_name(stack, service)], capture_output=True, timeout=60)


def logs(stack: Stack, service: str) -> str:
    read = subprocess.run(
        ["docker", "logs", "--tail", "30", container_name(stack, service)], capture_output=True, text=True, timeout=30
    )
    return read.stdout + read.stderr


@contextmanager
def rest_and_grpc(stack: Stack) -> Iterator[tuple[str, str]]:
    """The REST and gRPC no-op servers beside the real ones, for the whole section: their URL and target."""
    try:
        rest_port = start(stack, "rest-server", 8000)
        grpc_port = start(stack, "grpc-server", 50051)
        rest_url, grpc_target = f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}"
        _wait_for_rest(stack, rest_url)
        _wait_for_grpc(stack, grpc_target)
        # The generators reach them at their own addresses, like the real servers (see Stack.address).
        rest_address = stack.address(container_name(stack, "rest-server"))
        grpc_address = stack.address(container_name(stack, "grpc-server"))
        yield f"http://{rest_address}:8000", f"{grpc_address}:50051"
    finally:
        remove(stack, "rest-server")
        remove(stack, "grpc-server")


def _wait_for_rest(stack: Stack, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.post(f"{url}/messages", json={"message": "bench no-op ready?"}, timeout=5).status_code == 201:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the REST no-op server did not answer 201 in {timeout:.0f} s:\n{logs(stack, 'rest-server')}"
            )
        time.sleep(0.5)


def _wait_for_grpc(stack: Stack, target: str, timeout: float = 60) -> None:
    with grpc.insecure_channel(target) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise TimeoutError(
                f"the gRPC no-op server was not ready in {timeout:.0f} s:\n{logs(stack, 'grpc-server')}"
            ) from None


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=60).stdout.strip()
