"""FastAPI's /docs and /redoc work offline: every asset they load is served by the REST server itself."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from msgsuite.messages import Via
from msgsuite.store import MessageStore
from rest_server.app import create_app

from .fakes import NO_DATABASE, FakePool

_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'|spec-url=["']([^"']+)["']""")


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    pool = FakePool()
    with TestClient(create_app(MessageStore(NO_DATABASE, Via.REST), pool)) as client:  # type: ignore[arg-type]
        yield client


def references(html: str) -> list[str]:
    return [next(group for group in match.groups() if group) for match in _REFERENCE.finditer(html)]


@pytest.mark.parametrize(("page", "scripts"), [("/docs", 1), ("/redoc", 1)])
def test_the_docs_pages_load_only_local_assets_and_those_are_served(
    client: TestClient, page: str, scripts: int
) -> None:
    response = client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    found = references(response.text)
    assert "/openapi.json" in found
    assert len([url for url in found if url.endswith(".js")]) == scripts
    assert "http:" not in response.text and "https:" not in response.text and "//" not in "".join(found)
    for url in found:
        assert url.startswith("/"), f"{page} loads {url} from elsewhere"
        asset = client.get(url)
        assert asset.status_code == 200, f"{page} needs {url}, which answers {asset.status_code}"
        assert len(asset.content) > 1000, url


def test_swagger_ui_and_its_stylesheet_come_with_their_types(client: TestClient) -> None:
    script = client.get("/docs-assets/swagger-ui-bundle.js")
    assert "javascript" in script.headers["content-type"] and b"SwaggerUIBundle" in script.content
    assert client.get("/docs-assets/swagger-ui.css").headers["content-type"].startswith("text/css")
    assert client.get("/docs-assets/nope.js").status_code == 404
