"""Clients and listeners as containers on the suite's own network, for stacks with several replicas.

From inside the network a service name resolves to every replica (compose --scale,
Swarm dnsrr), so the clients spread over them as they would in production, and a
listener can be pointed at one hub replica's own address.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

from harness.stack import ROOT

from .load import Outcome, parse_outcome

TOOLS = ROOT / "tests" / "e2e" / "tools"


def tls_args(ca_file: str | None) -> list[str]:
    """docker run arguments for a stack with TLS on: the switch, and the CA where the containers look for it."""
    if ca_file is None:
        return []
    return [
        "-e",
        "TLS=on",
        "-e",
        "TLS_CA_FILE=/run/suite-secrets/ca.crt",
        "-v",
        f"{ca_file}:/run/suite-secrets/ca.crt:ro",
    ]


def container_ip(container: str, network: str) -> str:
    template = '{{(index .NetworkSettings.Networks "' + network + '").IPAddress}}'
    return subprocess.run(
        ["docker", "inspect", "--format", template, container], capture_output=True, text=True, check=True
    ).stdout.strip()


def containers(*filters: str) -> list[str]:
    """Ids of the running containers that match every `docker ps --filter`."""
    args = [arg for f in filters for arg in ("--filter", f)]
    out = subprocess.run(["docker", "ps", "-q", *args], capture_output=True, text=True, check=True).stdout
    return sorted(out.split())


class ContainerClient:
    """`docker run --rm --network NETWORK msgsuite/<client>:TAG ARGS...` in the background."""

    def __init__(
        self, network: str, tag: str, client: str, args: list[str], env: dict[str, str], ca_file: str | None = None
    ) -> None:
        self.client = client
        env_args = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
        self._process = subprocess.Popen(
            [
                *("docker", "run", "--rm", "--network", network, *env_args, *tls_args(ca_file)),
                *(f"msgsuite/{client}:{tag}", *args),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, timeout: float = 600) -> Outcome:
        out, err = self._process.communicate(timeout=timeout)
        return parse_outcome(self.client, self._process.returncode, out, err)


@dataclass
class Heard:
    ids: list[int]
    addresses: list[str]  # the hub replicas it connected to, in order


class ContainerListener:
    """tools/resuming_listener.py in a container: starts on one hub replica, resumes on any."""

    def __init__(
        self,
        network: str,
        tag: str,
        first_address: str,
        hub_name: str,
        after: int = 0,
        ca_file: str | None = None,
        token: str | None = None,
    ) -> None:
        self.first_address = first_address
        token_env = ["-e", f"HUB_TOKEN={token}"] if token else []
        self._process = subprocess.Popen(
            [
                *("docker", "run", "--rm", "-i", "--network", network, "-v", f"{TOOLS}:/tools:ro", *token_env),
                *tls_args(ca_file),
                *("--entrypoint", "python", f"msgsuite/websocket-client:{tag}", "/tools/resuming_listener.py"),
                *(first_address, hub_name, str(after)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, until_id: int, timeout: float = 180) -> Heard:
        """Tells the listener the last id to wait for; what it heard once it got there (or gave up)."""
        out, err = self._process.communicate(f"{until_id}\n", timeout=timeout)
        lines = out.strip().splitlines()
        assert self._process.returncode == 0 and lines, f"listener failed ({self._process.returncode}):\n{err[-2000:]}"
        result = json.loads(lines[-1])
        return Heard([int(i) for i in result["ids"]], [str(a) for a in result["addresses"]])

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.communicate()


def assert_each_heard_all(hub_ips: list[str], heard: list[Heard], before: int, total: int) -> None:
    """Each listener started on its own hub replica and got ids before+1..total once each, in order."""
    for ip, got in zip(hub_ips, heard, strict=True):
        assert got.addresses[:1] == [ip], f"listener meant for hub {ip} connected to {got.addresses}"
        assert got.ids == list(range(before + 1, total + 1)), f"listener starting on {ip}: {len(got.ids)} ids"
