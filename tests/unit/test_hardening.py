"""Every container of compose and Swarm is hardened alike (Kubernetes: tests/unit/test_kubernetes_manifests.py).

The running containers are checked by tests/e2e/test_security.py (docker inspect); this holds the files, the
services behind a profile and the Swarm stack included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
# Capabilities a service may add back: none (PostgreSQL and RabbitMQ run as their own users from the start).
CAPABILITIES_ADDED: dict[str, list[str]] = {}


def services(path: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))["services"]
    return loaded


def test_every_compose_service_is_read_only_without_capabilities_or_privilege_gain() -> None:
    for name, service in services("docker-compose.yml").items():
        assert service.get("read_only") is True, name
        assert service.get("cap_drop") == ["ALL"], name
        assert service.get("cap_add", []) == CAPABILITIES_ADDED.get(name, []), name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert not service.get("privileged"), name


def test_every_swarm_service_is_read_only_without_capabilities() -> None:
    """`docker stack deploy` drops security_opt (no-new-privileges): the stack carries what Swarm applies."""
    composed = services("docker-compose.yml")
    for name, service in services("deploy/swarm/stack.yml").items():
        assert service.get("read_only") is True, name
        assert service.get("cap_drop") == ["ALL"], name
        assert service.get("cap_add", []) == CAPABILITIES_ADDED.get(name, []), name
        assert service.get("user") == composed[name].get("user"), name
        assert "security_opt" not in service, f"{name}: stack deploy ignores security_opt"


def test_writable_places_are_tmpfs_or_volumes_as_in_compose() -> None:
    composed = services("docker-compose.yml")
    for name, service in services("deploy/swarm/stack.yml").items():
        tmpfs = sorted(v["target"] for v in service.get("volumes", []) if isinstance(v, dict) and v["type"] == "tmpfs")
        assert tmpfs == sorted(path.split(":")[0] for path in composed[name].get("tmpfs", [])), name


def test_each_compose_tmpfs_belongs_to_the_containers_user() -> None:
    """Docker 20.10 mounts a tmpfs again with mode 0755 on a restart: one owned by root is then read-only to a
    non-root user (the liveness files, the broker's definitions, PostgreSQL's socket)."""
    for name, service in services("docker-compose.yml").items():
        uid = str(service.get("user", "10001")).split(":")[0]
        for tmpfs in service.get("tmpfs", []):
            assert f"uid={uid},gid={uid}" in tmpfs, f"{name}: {tmpfs}"
