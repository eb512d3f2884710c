"""The kind quick start, statically: the Kafka manifest is the broker every example names, and
the cluster config has a control plane, a worker and NodePort mappings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA = REPO_ROOT / "examples" / "kind" / "kafka.yaml"


def test_every_example_names_the_quick_start_broker() -> None:
    documents = [d for d in yaml.safe_load_all(KAFKA.read_text()) if d]
    service = next(d for d in documents if d["kind"] == "Service")
    address = (
        f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc:"
        f"{service['spec']['ports'][0]['port']}"
    )
    statefulset = next(d for d in documents if d["kind"] == "StatefulSet")
    env = {
        e["name"]: e["value"]
        for e in statefulset["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{address}"
    manifests = sorted((REPO_ROOT / "examples").glob("*/streamquery.yaml"))
    assert len(manifests) >= 10
    for manifest in manifests:
        spec = yaml.safe_load(manifest.read_text())["spec"]
        assert spec["kafka"]["bootstrapServers"] == address, manifest


def test_the_kind_cluster_has_a_control_plane_and_a_worker_with_port_mappings() -> None:
    config = yaml.safe_load((REPO_ROOT / "kind-config.yaml").read_text())
    assert config["kind"] == "Cluster" and config["name"] == "streamhouse"
    roles = [node["role"] for node in config["nodes"]]
    assert roles == ["control-plane", "worker"]
    mappings = config["nodes"][0]["extraPortMappings"]
    assert {m["hostPort"] for m in mappings} == {8080, 8081, 9090}
    assert all(30000 <= m["containerPort"] <= 32767 for m in mappings)  # NodePort range
