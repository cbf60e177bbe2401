"""Batch paths: one transaction, yet each message its own total and notification, in order."""

from __future__ import annotations

import uuid

import grpc
import pytest
import requests
from suite.v1 import messages_pb2, messages_pb2_grpc

from harness.stack import CLIENTS, Stack, receive_frames

from .checks import assert_ids_gap_free


def test_rest_batch_stores_in_order_with_one_notification_each(healthy: Stack) -> None:
    before = healthy.total()
    items = [{"message": f"lote {i}", "idempotency_key": f"batch-{uuid.uuid4()}"} for i in range(50)]
    with healthy.listen(after=before) as listener:
        response = requests.post(f"{healthy.rest_url}/messages/batch", json={"messages": items}, timeout=30)
        assert response.status_code == 201, response.text
        records = response.json()["messages"]
        frames = receive_frames(listener, before + 50)
    assert [r["id"] for r in records] == list(range(before + 1, before + 51))
    assert [f["message"] for f in frames] == [item["message"] for item in items]
    again = requests.post(f"{healthy.rest_url}/messages/batch", json={"messages": items[:3]}, timeout=30)
    assert again.status_code == 200 and [r["repeated"] for r in again.json()["messages"]] == [True] * 3
    assert healthy.total() == before + 50


def test_a_batch_with_one_bad_message_stores_nothing(healthy: Stack) -> None:
    before = healthy.total()
    items = [{"message": "bien"}, {"message": "   "}, {"message": "bien también"}]
    response = requests.post(f"{healthy.rest_url}/messages/batch", json={"messages": items}, timeout=30)
    assert response.status_code == 422 and "message 1 of the batch" in response.json()["detail"]
    with grpc.insecure_channel(healthy.grpc_target) as channel:
        stub = messages_pb2_grpc.MessageServiceStub(channel)
        request = messages_pb2.SendMessageBatchRequest(
            messages=[messages_pb2.SendMessageRequest(message="bien"), messages_pb2.SendMessageRequest(message="a\x00")]
        )
        with pytest.raises(grpc.RpcError) as error:
            stub.SendMessageBatch(request, timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "message 1 of the batch" in error.value.details()
    assert healthy.total() == before


def test_grpc_batch_answers_one_record_per_message(healthy: Stack) -> None:
    before = healthy.total()
    with grpc.insecure_channel(healthy.grpc_target) as channel:
        stub = messages_pb2_grpc.MessageServiceStub(channel)
        request = messages_pb2.SendMessageBatchRequest(
            messages=[
                messages_pb2.SendMessageRequest(message=f"lote gRPC {i}", idempotency_key=str(uuid.uuid4()))
                for i in range(20)
            ]
        )
        response = stub.SendMessageBatch(request, timeout=10)
    assert [m.id for m in response.messages] == list(range(before + 1, before + 21))
    assert all(m.via == "GRPC" and not m.repeated for m in response.messages)


def test_every_client_load_mode_can_batch(healthy: Stack) -> None:
    before = healthy.total()
    for client in CLIENTS:
        result = healthy.run_client(client, "--count", "250", "--batch", "100", "--concurrency", "2")
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.splitlines()) == 250
    with healthy.listen(after=before) as listener:
        frames = receive_frames(listener, before + 750, timeout=120)
    assert [f["id"] for f in frames] == list(range(before + 1, before + 751))
    assert_ids_gap_free(healthy)
