"""Every variable the code or compose reads is documented, and nothing documented is unread."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICE_PACKAGES = [
    "msgsuite",
    "rest_server",
    "grpc_server",
    "rabbitmq_server",
    "websocket_hub",
    "websocket_client",
    "rest_client",
    "grpc_client",
    "rabbitmq_client",
    "migrate",
]
READERS = {"required", "optional", "integer", "number", "secret", "client_token"}
_NAME = re.compile(r"`([A-Z][A-Z0-9_]+)`")


def variables_read_by_code() -> set[str]:
    found: set[str] = set()
    for package in SERVICE_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.Call) and node.args):
                    continue
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
                first = node.args[0]
                if name in READERS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.add(first.value)
                    if name in ("secret", "client_token"):
                        found.add(f"{first.value}_FILE")
    return found


def variables_read_by_compose() -> set[str]:
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text(encoding="utf-8")))


def env_example_variables() -> set[str]:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))


def readme_table(title: str) -> set[str]:
    """Names in the first column of the table that follows the paragraph starting with **title**."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    after = text[text.index(f"**{title}**") :]
    table = after[after.index("\n|") :].split("\n\n", 1)[0]
    return {name for row in table.splitlines()[3:] for name in _NAME.findall(row.split("|")[1])}


def test_the_scan_finds_the_variables_it_should() -> None:
    assert {"POSTGRES_HOST", "POSTGRES_PASSWORD_FILE", "HUB_URL", "REST_URL", "LOG_LEVEL"} <= variables_read_by_code()
    assert {"REST_HOST_PORT", "MSGSUITE_VERSION"} <= variables_read_by_compose()


def test_every_compose_variable_is_in_env_example_and_the_readme() -> None:
    compose = variables_read_by_compose()
    assert compose - env_example_variables() == set(), ".env.example misses these"
    assert compose == readme_table("Compose variables")


def test_every_variable_the_services_read_is_in_the_readme() -> None:
    assert variables_read_by_code() == readme_table("Service variables")
