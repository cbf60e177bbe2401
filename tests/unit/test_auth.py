"""Trying to get in without the token, and too often: the token check, the rate limit, REST and gRPC in process."""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from fastapi.testclient import TestClient
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2
from suite.v1 import messages_pb2, messages_pb2_grpc

from grpc_client.sender import GrpcSender
from grpc_server.__main__ import MESSAGE_SERVICE
from grpc_server.access import AccessInterceptor, caller_address
from msgsuite import cli, secrets_init, store
from msgsuite.auth import REFUSAL, RateLimit, RateLimiter, TokenCheck, bearer_token, client_token, token_digest
from msgsuite.client import Rejected, Unreachable
from msgsuite.messages import Via
from msgsuite.secret_plan import SECRETS_FOR, every_derived, every_secret
from msgsuite.settings import InvalidSetting
from msgsuite.store import MessageStore
from rest_client.sender import RestSender
from rest_server.__main__ import RestServerSettings
from rest_server.app import create_app

from .fakes import NO_DATABASE, FakePool, FakeStoreFunction

TOKEN = "s3cret-Token_of-the-clients"
CHECK = TokenCheck(token_digest(TOKEN))


# The token check and the rate limit


def test_only_the_one_token_passes_and_auth_off_lets_everyone_in() -> None:
    assert CHECK.accepts(TOKEN)
    for wrong in (None, "", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), token_digest(TOKEN)):
        assert not CHECK.accepts(wrong), wrong
    assert TokenCheck(None).accepts(None) and not TokenCheck(None).required


def test_a_digest_that_is_no_sha256_stops_the_server() -> None:
    for bad in ("", "xyz", "ab" * 31):
        with pytest.raises(InvalidSetting):
            TokenCheck(bad)


def test_the_bearer_scheme_is_read_case_insensitively_and_nothing_else() -> None:
    assert bearer_token(f"Bearer {TOKEN}") == TOKEN
    assert bearer_token(f"bearer   {TOKEN} ") == TOKEN
    for other in (None, "", "Bearer", "Bearer ", f"Basic {TOKEN}", TOKEN):
        assert bearer_token(other) is None


def test_auth_on_needs_the_digest_and_auth_must_be_on_or_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("REST_TOKEN_SHA256", "REST_TOKEN_SHA256_FILE", "RATE_LIMIT_PER_SECOND", "RATE_LIMIT_BURST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POSTGRES_HOST", "database")
    monkeypatch.setenv("POSTGRES_DB", "suite")
    monkeypatch.setenv("POSTGRES_USER", "suite")
    monkeypatch.setenv("POSTGRES_PASSWORD", "x")
    monkeypatch.setenv("AUTH", "off")
    assert not RestServerSettings.from_env().tokens.required
    monkeypatch.setenv("AUTH", "on")
    with pytest.raises(InvalidSetting, match="REST_TOKEN_SHA256"):
        RestServerSettings.from_env()
    (tmp_path / "digest").write_text(token_digest(TOKEN) + "\n")
    monkeypatch.setenv("REST_TOKEN_SHA256_FILE", str(tmp_path / "digest"))
    settings = RestServerSettings.from_env()
    assert settings.tokens.accepts(TOKEN) and settings.rate_limit == RateLimit(5000, 10000)
    monkeypatch.setenv("AUTH", "yes")
    with pytest.raises(InvalidSetting, match="AUTH must be on or off"):
        RestServerSettings.from_env()


def test_a_client_sends_its_token_only_when_it_has_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("REST_TOKEN", raising=False)
    monkeypatch.delenv("REST_TOKEN_FILE", raising=False)
    assert client_token("REST_TOKEN") is None
    (tmp_path / "token").write_text(TOKEN)
    monkeypatch.setenv("REST_TOKEN_FILE", str(tmp_path / "token"))
    assert client_token("REST_TOKEN") == TOKEN
    monkeypatch.setenv("REST_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(InvalidSetting, match="cannot be read"):
        client_token("REST_TOKEN")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_gives_a_burst_then_the_rate_per_caller() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(per_second=10, burst=3), clock)
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("a") == pytest.approx(0.1)
    assert limiter.take("b") == 0  # each caller has its own bucket
    clock.now += 0.1
    assert limiter.take("a") == 0 and limiter.take("a") > 0
    clock.now += 60
    assert [limiter.take("a") for _ in range(4)][:3] == [0, 0, 0]  # never more than the burst saved up


def test_quiet_callers_are_forgotten_so_many_addresses_cannot_grow_it_without_bound() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(per_second=10, burst=2), clock)
    limiter.MAX_CALLERS = 5
    for n in range(5):
        limiter.take(f"10.0.0.{n}")
    clock.now += 1  # their buckets are full again
    limiter.take("10.0.1.1")
    assert len(limiter._buckets) == 1


# The secrets: clients hold their token, servers its digest only


def test_each_server_holds_the_digest_of_its_clients_token_and_never_a_token() -> None:
    def tokens(holder: str) -> list[str]:
        return [name for name in SECRETS_FOR[holder] if "token" in name]

    assert tokens("rest-client") == ["rest_client_token"]
    assert tokens("grpc-client") == ["grpc_client_token"]
    assert tokens("websocket-client") == ["listener_token"]
    for server, digest in (
        ("rest-server", "rest_client_token.sha256"),
        ("grpc-server", "grpc_client_token.sha256"),
        ("websocket-hub", "listener_token.sha256"),
    ):
        assert digest in SECRETS_FOR[server]
        assert not [name for name in SECRETS_FOR[server] if name.endswith("_token")], server
    assert "listener_token" in every_secret() and "listener_token.sha256" not in every_secret()


def test_the_one_shot_writes_each_digest_from_its_token_and_follows_a_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in every_secret():
        monkeypatch.delenv(name.upper(), raising=False)
    secrets_init.ensure_secrets(tmp_path, every_secret())
    secrets_init.derive_digests(tmp_path, every_derived())
    token = (tmp_path / "listener_token").read_text()
    assert (tmp_path / "listener_token.sha256").read_text() == hashlib.sha256(token.encode()).hexdigest()
    (tmp_path / "listener_token").unlink()
    monkeypatch.setenv("LISTENER_TOKEN", "rotated")
    secrets_init.ensure_secrets(tmp_path, every_secret())
    secrets_init.derive_digests(tmp_path, every_derived())
    assert TokenCheck((tmp_path / "listener_token.sha256").read_text()).accepts("rotated")


# REST


@pytest.fixture
def stored(monkeypatch: pytest.MonkeyPatch) -> FakeStoreFunction:
    function = FakeStoreFunction()
    monkeypatch.setattr(store, "store_messages_async", function.on_the_loop)
    return function


PLENTY = RateLimit(1e6, 1_000_000)


def rest_client(limit: RateLimit = PLENTY) -> TestClient:
    pool = FakePool()
    return TestClient(create_app(MessageStore(NO_DATABASE, Via.REST), pool, CHECK, limit))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "authorization", [None, "", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, f"Bearer {token_digest(TOKEN)}"]
)
def test_rest_without_the_token_is_401_the_same_way_and_stores_nothing(
    stored: FakeStoreFunction, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    with rest_client() as client:
        for method, path, body in (
            ("POST", "/messages", {"message": "hola"}),
            ("POST", "/messages/batch", {"messages": [{"message": "a"}]}),
            ("GET", "/messages", None),
            ("GET", "/messages/1", None),
        ):
            response = client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (method, path)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert response.json() == {"detail": REFUSAL}
    assert stored.stored_texts == []


def test_rest_with_the_token_stores_and_health_metrics_and_docs_need_none(stored: FakeStoreFunction) -> None:
    with rest_client() as client:
        response = client.post("/messages", json={"message": "hola"}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 201
        for path in ("/health", "/metrics", "/docs", "/openapi.json"):
            assert client.get(path).status_code == 200, path
    assert stored.stored_texts == ["hola"]


def test_rest_over_the_rate_is_429_with_retry_after_and_the_client_waits_that_long(stored: FakeStoreFunction) -> None:
    with rest_client(RateLimit(per_second=0.5, burst=2)) as client:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        answers = [client.post("/messages", json={"message": f"m{i}"}, headers=headers) for i in range(3)]
        assert [a.status_code for a in answers] == [201, 201, 429]
        assert answers[2].headers["Retry-After"] == "2"
        assert "too many requests" in answers[2].json()["detail"]
    assert stored.stored_texts == ["m0", "m1"]


def test_the_rest_client_sends_its_token_and_reads_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, str]] = []

    class Response:
        status, will_close = 429, False

        def read(self) -> bytes:
            return b'{"detail": "too many requests; retry after 3 s"}'

        def getheader(self, name: str) -> str | None:
            return "3" if name == "Retry-After" else None

    class Connection:
        def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> None:
            sent.append(headers)

        def getresponse(self) -> Response:
            return Response()

        def close(self) -> None:
            pass

    sender = RestSender("http://rest-server:8000", 5, token=TOKEN)
    monkeypatch.setattr(sender, "_connect", Connection)
    with pytest.raises(Unreachable) as refused:
        sender.send("hola", "k")
    assert refused.value.retry_after == 3 and sent[0]["Authorization"] == f"Bearer {TOKEN}"


def test_deliver_waits_at_least_what_the_server_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(cli.time, "sleep", slept.append)

    class Limited:
        calls = 0

        def send(self, text: str, key: str) -> object:
            self.calls += 1
            if self.calls == 1:
                raise Unreachable("HTTP 429", retry_after=3)
            return "stored"

    assert cli.deliver(Limited(), ["hola"], ["k"], retries=2) == ["stored"]  # type: ignore[arg-type]
    assert slept and slept[0] >= 3


# gRPC: the interceptor on a real server, the real client


class Storing(messages_pb2_grpc.MessageServiceServicer):
    def __init__(self) -> None:
        self.stored: list[str] = []

    async def SendMessage(
        self, request: messages_pb2.SendMessageRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> messages_pb2.SendMessageResponse:
        self.stored.append(request.message)
        return messages_pb2.SendMessageResponse(id=len(self.stored), total=len(self.stored), via="GRPC")


class GrpcServer:
    """A grpc.aio server with the interceptor, as grpc-server runs it, on a loop in a thread of its own."""

    def __init__(self, limit: RateLimit) -> None:
        self.servicer = Storing()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server, port = asyncio.run_coroutine_threadsafe(self._start(limit), self.loop).result(10)
        self.target = f"127.0.0.1:{port}"

    async def _start(self, limit: RateLimit) -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server(
            interceptors=[AccessInterceptor(CHECK, RateLimiter(limit))],
            options=[("grpc.max_receive_message_length", 1024)],
        )
        messages_pb2_grpc.add_MessageServiceServicer_to_server(self.servicer, server)
        health_servicer = health.aio.HealthServicer()
        await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection((MESSAGE_SERVICE, reflection.SERVICE_NAME), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(None), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def grpc_server() -> Iterator[GrpcServer]:
    served = GrpcServer(RateLimit(per_second=0.5, burst=3))
    yield served
    served.stop()


@pytest.mark.parametrize("token", [None, "wrong", token_digest(TOKEN)])
def test_grpc_without_the_token_is_unauthenticated_and_stores_nothing(
    grpc_server: GrpcServer, token: str | None
) -> None:
    sender = GrpcSender(grpc_server.target, 5, token=token)
    with pytest.raises(Rejected, match=re.escape(f"UNAUTHENTICATED: {REFUSAL}")):
        sender.send("hola", "k")
    sender.close()
    assert grpc_server.servicer.stored == []


def test_grpc_health_needs_no_token(grpc_server: GrpcServer) -> None:
    with grpc.insecure_channel(grpc_server.target) as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        assert check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING


def test_grpc_over_the_rate_is_retried_while_too_large_is_refused_for_good(grpc_server: GrpcServer) -> None:
    sender = GrpcSender(grpc_server.target, 5, token=TOKEN)
    try:
        for n in range(3):
            assert sender.send(f"m{n}", f"k{n}").id == n + 1
        with pytest.raises(Unreachable, match="RESOURCE_EXHAUSTED: too many requests") as limited:
            sender.send("m3", "k3")
        assert limited.value.retry_after == 2
        with pytest.raises(Rejected, match="RESOURCE_EXHAUSTED"):  # gRPC's own size refusal: no retry-after
            sender.send("x" * 2000, "big")
    finally:
        sender.close()
    assert grpc_server.servicer.stored == ["m0", "m1", "m2"]


def list_services(target: str, token: str | None) -> list[str]:
    """The services the server's reflection names (a stream-stream call, guarded like any other)."""
    with grpc.insecure_channel(target) as channel:
        info = channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        metadata = (("authorization", f"Bearer {token}"),) if token else None
        responses = info(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), metadata=metadata, timeout=5)
        return [s.name for r in responses for s in r.list_services_response.service]


def test_grpc_reflection_needs_the_token_like_any_other_service(grpc_server: GrpcServer) -> None:
    assert sorted(list_services(grpc_server.target, TOKEN)) == sorted([MESSAGE_SERVICE, reflection.SERVICE_NAME])
    with pytest.raises(grpc.RpcError) as refused:
        list_services(grpc_server.target, None)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED and refused.value.details() == REFUSAL


def test_a_peer_string_gives_the_callers_address() -> None:
    assert caller_address("ipv4:10.0.0.5:5000") == "10.0.0.5"
    assert caller_address("ipv6:[::1]:5000") == "[::1]"
