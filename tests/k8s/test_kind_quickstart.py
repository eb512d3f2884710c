"""The kind quick start's single-node Kafka applies to the real API server
(server-side dry run, every field validated)."""

from __future__ import annotations

import pytest
import yaml

from tests.harness.kube import ControlPlane
from tests.harness.processes import REPO_ROOT

pytestmark = pytest.mark.k8s

KAFKA = REPO_ROOT / "examples" / "kind" / "kafka.yaml"


def test_the_kafka_manifest_is_accepted_by_the_api_server(
    control_plane: ControlPlane, namespace: str
) -> None:
    documents = [d for d in yaml.safe_load_all(KAFKA.read_text()) if d]
    assert [d["kind"] for d in documents] == ["Namespace", "Service", "StatefulSet"]
    moved = []
    for document in documents[1:]:  # into the test's namespace: a dry run creates no Namespace
        document["metadata"]["namespace"] = namespace
        moved.append(document)
    output = control_plane.kubectl(
        "apply", "--dry-run=server", "-f", "-", input_text=yaml.safe_dump_all(moved)
    )
    assert "service/kafka created (server dry run)" in output
    assert "statefulset.apps/kafka created (server dry run)" in output
