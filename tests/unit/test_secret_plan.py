"""Each container gets only its own secrets: the plan, the one-shot that follows it, and the files that mount them."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from msgsuite import secrets_init
from msgsuite.secret_plan import SECRETS_FOR, every_derived, every_secret

ROOT = Path(__file__).resolve().parents[2]


def compose_services() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]  # type: ignore[no-any-return]


def test_each_holder_gets_exactly_its_own_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DB_PASSWORD", "BROKER_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    every, holders = tmp_path / "all", tmp_path / "for"
    every.mkdir()
    plan = {"server": ("db_password",), "client": ("broker_password",), "listener": (), "unmounted": ("db_password",)}
    for holder in ("server", "client", "listener"):
        (holders / holder).mkdir(parents=True)
    (holders / "client" / "db_password").write_text("left by an older plan")
    secrets_init.ensure_secrets(every, ["db_password", "broker_password"])

    assert secrets_init.hand_out(every, holders, plan) == ["server", "client", "listener"]
    assert sorted(p.name for p in (holders / "server").iterdir()) == ["db_password"]
    assert sorted(p.name for p in (holders / "client").iterdir()) == ["broker_password"]
    assert list((holders / "listener").iterdir()) == []
    assert not (holders / "unmounted").exists()
    copy = holders / "server" / "db_password"
    assert copy.read_text() == (every / "db_password").read_text()
    assert not stat.S_IMODE(os.stat(copy).st_mode) & 0o222

    (every / "db_password").chmod(0o644)
    (every / "db_password").write_text("rotated")  # a rotation reaches the holder on the next start
    secrets_init.hand_out(every, holders, plan)
    assert copy.read_text() == "rotated"


def test_no_client_holds_a_database_password() -> None:
    for client in ("grpc-client", "rest-client", "rabbitmq-client", "websocket-client"):
        assert not [name for name in SECRETS_FOR[client] if name.startswith(("postgres", "db_"))], client


def test_every_compose_service_mounts_its_own_secrets_volume_and_no_other() -> None:
    services = compose_services()
    one_shot = services.pop("secrets")
    assert "secrets:/run/suite-secrets" in one_shot["volumes"]
    for holder in SECRETS_FOR:
        assert f"secrets-{holder}:/run/suite-secrets-for/{holder}" in one_shot["volumes"]
    mounting = {}
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("secrets"):
                assert volume == f"secrets-{name}:/run/suite-secrets:ro", f"{name} mounts {volume}"
                mounting[name] = source
        if name in SECRETS_FOR:
            assert name in mounting, f"{name} mounts no secrets volume"
    assert set(mounting) == set(SECRETS_FOR)


def test_the_swarm_stack_gives_each_service_the_secrets_of_the_plan() -> None:
    stack = yaml.safe_load((ROOT / "deploy/swarm/stack.yml").read_text(encoding="utf-8"))
    for name, service in stack["services"].items():
        held = sorted(entry if isinstance(entry, str) else entry["source"] for entry in service.get("secrets", []))
        assert held == sorted(SECRETS_FOR[name]), name


def test_every_secret_is_someones() -> None:
    held = {name for names in SECRETS_FOR.values() for name in names}
    digests = {name for name in held if name.endswith(".sha256")}
    assert every_derived() == sorted(digests)
    # Generated: every held secret that is not a digest, and the token behind each digest.
    assert every_secret() == sorted((held - digests) | {name.removesuffix(".sha256") for name in digests})
