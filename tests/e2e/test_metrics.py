"""/metrics of every long-running service, scraped before and after a known number of messages."""

from __future__ import annotations

import urllib.request
import uuid

import pika
import requests
from prometheus_client.parser import text_string_to_metric_families

from harness.stack import Stack, wait_for

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
INSIDE = {"grpc-server": 9464, "rabbitmq-server": 9464, "websocket-client": 9464}
SCRAPE = "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"


def scrape(stack: Stack, service: str) -> Samples:
    if service == "rest-server":
        text = requests.get(f"{stack.rest_url}/metrics", timeout=5).text
    elif service == "websocket-hub":
        with urllib.request.urlopen(stack.hub_url.replace("ws://", "http://") + "/metrics", timeout=5) as answer:
            text = answer.read().decode()
    else:  # published nowhere: read from inside the container
        url = f"http://localhost:{INSIDE[service]}/metrics"
        text = stack.compose("exec", "-T", service, "python", "-c", SCRAPE, url).stdout
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_every_service_counts_exactly_what_it_did(healthy: Stack) -> None:
    services = ["rest-server", "grpc-server", "rabbitmq-server", "websocket-hub", "websocket-client"]
    start_total = healthy.total()
    before = {service: scrape(healthy, service) for service in services}
    key = str(uuid.uuid4())
    for text in ("métrica 1", "métrica 2"):
        assert healthy.run_client("rest-client", text).returncode == 0
    for _ in range(2):  # the second is a repeated key: stores nothing, counts nothing
        response = requests.post(
            f"{healthy.rest_url}/messages", json={"message": "métrica 3"}, headers={"Idempotency-Key": key}, timeout=10
        )
        assert response.status_code in (200, 201)
    bad = requests.post(f"{healthy.rest_url}/messages", json={"message": "   "}, timeout=10)
    assert bad.status_code == 422
    assert healthy.run_client("grpc-client", "métrica g1", "métrica g2").returncode == 0
    with healthy.amqp_channel() as channel:
        for i in range(4):
            channel.basic_publish(
                "messages",
                "messages",
                f"métrica q{i}".encode(),
                pika.BasicProperties(message_id=str(uuid.uuid4()), delivery_mode=2),
                mandatory=True,
            )
    total = start_total + 9
    wait_for(lambda: healthy.total() == total, timeout=60, what="every message stored")
    wait_for(
        lambda: value(scrape(healthy, "websocket-client"), "msgsuite_client_last_id") == total,
        timeout=60,
        what="the websocket client at the total",
    )
    after = {service: scrape(healthy, service) for service in services}

    def delta(service: str, name: str, **labels: str) -> float:
        return value(after[service], name, **labels) - value(before[service], name, **labels)

    assert delta("rest-server", "msgsuite_messages_stored_total", via="REST") == 3
    assert delta("rest-server", "msgsuite_messages_refused_total", via="REST", reason="invalid") == 1
    assert delta("rest-server", "msgsuite_group_commit_messages_count", via="REST") == 4  # repeats are stored too
    assert delta("grpc-server", "msgsuite_messages_stored_total", via="GRPC") == 2
    assert delta("rabbitmq-server", "msgsuite_messages_stored_total", via="RabbitMQ") == 4
    assert delta("rabbitmq-server", "msgsuite_amqp_deliveries_total") == 4
    assert delta("rabbitmq-server", "msgsuite_amqp_dead_lettered_total", reason="invalid") == 0
    assert value(after["websocket-hub"], "msgsuite_hub_head") == total
    assert delta("websocket-hub", "msgsuite_notification_delay_seconds_count") == 9  # once per frame
    assert value(after["websocket-hub"], "msgsuite_hub_listeners") >= 1  # the websocket client
    assert delta("websocket-hub", "msgsuite_hub_frames_sent_total") >= 9
    assert value(after["websocket-client"], "msgsuite_client_last_id") == total
    assert delta("websocket-client", "msgsuite_client_lines_printed_total") == 9
