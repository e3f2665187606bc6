"""The cluster's deployment files: Kubernetes manifests valid against the API schemas
(kubernetes-validate, strict) and wired together; the compose file runs etcd and three nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"


def documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents() if d["kind"] == kind}


@pytest.mark.parametrize(
    "resource", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_every_manifest_is_valid_against_the_kubernetes_schema(resource: dict[str, Any]) -> None:
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_the_statefulset_gives_each_node_a_volume_a_stable_name_and_the_etcd_address() -> None:
    node = by_kind("StatefulSet")["stacksdb"]
    spec = node["spec"]
    assert spec["replicas"] == 3
    assert spec["serviceName"] == "stacksdb-peers"
    assert by_kind("Service")["stacksdb-peers"]["spec"]["clusterIP"] == "None"
    claim = spec["volumeClaimTemplates"][0]["metadata"]["name"]
    container = spec["template"]["spec"]["containers"][0]
    assert {"name": claim, "mountPath": "/data"} in container["volumeMounts"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    etcd_port = by_kind("Service")["etcd"]["spec"]["ports"][0]["port"]
    assert env["STACKSDB_CLUSTER"] == f"etcd://etcd:{etcd_port}"
    assert env["STACKSDB_NODE_ID"] == "$(POD_NAME)"
    assert ".stacksdb-peers." in env["STACKSDB_ADVERTISE_URL"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_the_read_service_selects_every_node_and_the_leader_service_only_the_leader() -> None:
    pod_labels = by_kind("StatefulSet")["stacksdb"]["spec"]["template"]["metadata"]["labels"]
    services = by_kind("Service")
    reads = services["stacksdb"]["spec"]["selector"]
    leader = services["stacksdb-leader"]["spec"]["selector"]
    assert reads.items() <= pod_labels.items()
    assert leader == {**reads, "stacksdb.io/role": "leader"}
    sidecar = by_kind("StatefulSet")["stacksdb"]["spec"]["template"]["spec"]["containers"][1]
    assert sidecar["command"] == ["python", "-m", "bootstrap.k8s_role_label"]
    assert (ROOT / "bootstrap" / "k8s_role_label.py").exists()
    rules = by_kind("Role")["stacksdb-role-label"]["rules"]
    assert {"get", "patch"} <= set(rules[0]["verbs"]) and rules[0]["resources"] == ["pods"]


def test_the_compose_file_runs_etcd_and_three_nodes_that_find_each_other() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.cluster.yml").read_text())
    services = compose["services"]
    assert "etcd" in services
    nodes = {name: s for name, s in services.items() if name.startswith("stacksdb-")}
    assert len(nodes) == 3
    ids = set()
    for name, service in nodes.items():
        env = service["environment"]
        assert env["STACKSDB_CLUSTER"] == "etcd://etcd:2379"
        assert env["STACKSDB_ADVERTISE_URL"] == f"http://{name}:8000"
        assert env["STACKSDB_MIN_REPLICAS"] == "1"
        assert service["volumes"] == [f"{name}:/data"]
        ids.add(env["STACKSDB_NODE_ID"])
    assert len(ids) == 3


def test_embedder_keys_come_from_a_secret_or_the_shell_and_are_written_nowhere() -> None:
    container = by_kind("StatefulSet")["stacksdb"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    for name in ("OPENAI_API_KEY", "COHERE_API_KEY"):
        assert "value" not in env[name]
        reference = env[name]["valueFrom"]["secretKeyRef"]
        assert reference == {"name": "stacksdb-embedder-keys", "key": name, "optional": True}
    for compose_file in ("docker-compose.yml", "docker-compose.cluster.yml"):
        compose = yaml.safe_load((ROOT / compose_file).read_text())
        for service in compose["services"].values():
            if service.get("image") != "stacksdb:latest":
                continue
            variables = service["environment"]
            assert variables["OPENAI_API_KEY"] == "${OPENAI_API_KEY:-}"
            assert variables["COHERE_API_KEY"] == "${COHERE_API_KEY:-}"
