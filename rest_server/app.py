"""The HTTP API: POST /messages stores, GET reads, /health checks the database."""

from __future__ import annotations

import logging
from pathlib import Path as FilePath
from typing import Annotated, Any

import fastapi_offline
from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, StrictStr
from starlette.types import ASGIApp

from msgsuite import metrics
from msgsuite.auth import RateLimit, RateLimiter, TokenCheck
from msgsuite.database import ConnectionPool, DatabaseFailure, DatabaseUnavailable, MessageRefused
from msgsuite.messages import MAX_BATCH, MAX_MESSAGE_CHARS, InvalidMessage, Via
from msgsuite.store import Messages, message_by_id, messages_after

from .access_gate import AccessGate
from .request_gate import RequestGate

log = logging.getLogger("rest-server")

# 4096 characters of JSON-escaped text (up to 12 bytes each as a surrogate
# pair) fit well inside this; anything larger cannot be a valid message.
MAX_BODY_BYTES = 64 * 1024
MAX_BATCH_BODY_BYTES = 8 * 1024 * 1024

# Swagger UI and ReDoc as shipped by the fastapi-offline package, served from
# the image: /docs works offline (FastAPI's default page loads them from a CDN).
DOCS_ASSETS_DIR = FilePath(fastapi_offline.__file__).parent / "static"
DOCS_ASSETS_URL = "/docs-assets"


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: StrictStr


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: StrictStr
    idempotency_key: StrictStr | None = None


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messages: list[BatchItem]


class MessageOut(BaseModel):
    id: int
    total: int
    via: str
    message: str
    created_at: str
    idempotency_key: str | None
    repeated: bool


class BatchOut(BaseModel):
    messages: list[MessageOut]


class MessagePage(BaseModel):
    messages: list[MessageOut]
    next_after: int


class Problem(BaseModel):
    detail: str


# What POST /messages and /messages/batch may answer besides success.
STORE_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem} for status in (401, 413, 415, 422, 429, 500, 503)
}


def _problem(status: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)


# What a server without settings of its own (the tests) allows: everyone, and far more than any test sends.
OPEN = TokenCheck(None)
UNLIMITED = RateLimit(per_second=1e9, burst=1_000_000_000)


def create_app(
    messages: Messages, pool: ConnectionPool, tokens: TokenCheck = OPEN, rate_limit: RateLimit = UNLIMITED
) -> ASGIApp:
    """The API storing through `messages` and reading through `pool`; /messages needs `tokens` and
    is held to `rate_limit`."""
    app = FastAPI(
        title="Message suite REST server",
        description=f"Stores text messages of 1 to {MAX_MESSAGE_CHARS} characters and announces "
        "each one through the WebSocket hub.",
        version="1.0.0",
        docs_url=None,
        redoc_url=None,
    )
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{DOCS_ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )

    @app.exception_handler(InvalidMessage)
    async def invalid_message(request: Request, error: InvalidMessage) -> JSONResponse:
        return _problem(422, error.reason)

    @app.exception_handler(DatabaseUnavailable)
    async def database_unavailable(request: Request, error: DatabaseUnavailable) -> JSONResponse:
        log.warning("database unavailable: %s", error)
        return _problem(503, "the database is unavailable; retry later", **{"Retry-After": "1"})

    @app.exception_handler(MessageRefused)
    async def message_refused(request: Request, error: MessageRefused) -> JSONResponse:
        log.warning("the database refused a message: %s", error.reason)
        return _problem(500, f"the database refused the message: {error.reason}")

    @app.exception_handler(DatabaseFailure)
    async def database_failure(request: Request, error: DatabaseFailure) -> JSONResponse:
        log.error("database error", exc_info=error)
        return _problem(500, "the database failed to store the message; see the rest-server log")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        # Starlette still logs it with its traceback; the client gets JSON, never a trace.
        return _problem(500, "internal error; see the rest-server log")

    @app.exception_handler(RequestValidationError)
    async def readable_validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        metrics.MESSAGES_REFUSED.labels(Via.REST.value, "invalid").inc()
        reasons = []
        for item in error.errors():
            where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
            reasons.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        return _problem(422, "; ".join(reasons) or "invalid request")

    @app.post(
        "/messages",
        status_code=201,
        response_model=MessageOut,
        responses={
            200: {"model": MessageOut, "description": "The key was stored before: the original record"},
            **STORE_ERRORS,
        },
        summary="Store a message",
    )
    async def post_message(
        body: MessageIn,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> Any:
        # async: the request waits for the group-commit writer on the loop, not in a worker thread.
        [record] = await messages.validate_and_store([body.message], [idempotency_key])
        return JSONResponse(record.as_json(), status_code=200 if record.repeated else 201)

    @app.post(
        "/messages/batch",
        status_code=201,
        response_model=BatchOut,
        responses={200: {"model": BatchOut, "description": "Every key was stored before"}, **STORE_ERRORS},
        summary=f"Store up to {MAX_BATCH} messages in one transaction, all or nothing",
    )
    async def post_batch(body: BatchIn) -> Any:
        records = await messages.validate_and_store(
            [item.message for item in body.messages], [item.idempotency_key for item in body.messages]
        )
        status = 200 if all(record.repeated for record in records) else 201
        return JSONResponse({"messages": [record.as_json() for record in records]}, status_code=status)

    @app.get("/messages", response_model=MessagePage, summary="Stored messages after an id, in id order")
    def list_messages(
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Any:
        with pool.connection() as conn:
            records = messages_after(conn, after, limit)
        return {"messages": [r.as_json() for r in records], "next_after": records[-1].id if records else after}

    @app.get(
        "/messages/{message_id}",
        response_model=MessageOut,
        responses={404: {"model": Problem}},
        summary="One stored message",
    )
    def get_message(message_id: Annotated[int, Path(ge=1)]) -> Any:
        with pool.connection() as conn:
            record = message_by_id(conn, message_id)
        if record is None:
            return _problem(404, f"no message with id {message_id}")
        return record.as_json()

    @app.get("/metrics", include_in_schema=False)
    def metrics_exposition() -> Response:
        return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)

    @app.get("/health", summary="200 when the database answers, 503 when it does not")
    def health() -> Any:
        with pool.connection() as conn, conn.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"status": "ok"}

    gate = RequestGate(app, MAX_BODY_BYTES, {"/messages/batch": MAX_BATCH_BODY_BYTES})
    return AccessGate(gate, tokens, RateLimiter(rate_limit))
