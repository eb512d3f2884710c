"""The per-query NetworkPolicy on the real API server: reconcile creates it, owned by the
StreamQuery, with the Kafka, registry and DNS egress ports and the metrics ingress port, and
removes it when the spec turns it off. (No CNI plugin runs here, so nothing enforces it: this
proves the object, not the traffic.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from streamhouse_operator.builders import METRICS_PORT
from streamhouse_operator.models import streamquery as model
from tests.harness.kube import ControlPlane
from tests.harness.operator import OperatorProcess, install_crd
from tests.harness.processes import wait_until

pytestmark = pytest.mark.k8s

SQL = (
    "CREATE STREAM o (id BIGINT) WITH (kafka_topic='o', value_format='JSON');\n"
    "CREATE STREAM p AS SELECT * FROM o;"
)


def _query(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": model.API_VERSION,
        "kind": model.KIND,
        "metadata": {"name": name},
        "spec": {
            "sql": SQL,
            "kafka": {"bootstrapServers": "kafka-0.kafka:9093,10.0.0.9:9092"},
            "schemaRegistry": {"url": "http://registry:8081"},
            **spec,
        },
    }


def test_reconcile_creates_an_owned_network_policy_and_removes_it_when_turned_off(
    control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    install_crd(control_plane)
    custom = client.CustomObjectsApi(kube_api)
    networking = client.NetworkingV1Api(kube_api)
    operator = OperatorProcess(control_plane, namespace, tmp_path / "operator.log").start()

    def policy_names() -> list[str]:
        found = networking.list_namespaced_network_policy(namespace).items
        return sorted(str(p.metadata.name) for p in found)

    try:
        locked = custom.create_namespaced_custom_object(
            model.GROUP, model.VERSION, namespace, model.PLURAL,
            _query("locked", networkPolicy={"enabled": True}),
        )  # fmt: skip
        custom.create_namespaced_custom_object(
            model.GROUP, model.VERSION, namespace, model.PLURAL, _query("open")
        )
        apps = client.AppsV1Api(kube_api)

        def both_deployed() -> bool:
            names = {s.metadata.name for s in apps.list_namespaced_stateful_set(namespace).items}
            return names == {"locked", "open"}

        wait_until(both_deployed, 60, "both queries deployed", operator.process, operator.log_file)
        assert policy_names() == ["locked"]
        policy = networking.read_namespaced_network_policy("locked", namespace)
        owner = policy.metadata.owner_references[0]
        assert (owner.kind, owner.name, owner.uid, owner.controller) == (
            model.KIND, "locked", locked["metadata"]["uid"], True,
        )  # fmt: skip
        assert policy.spec.pod_selector.match_labels["streamhouse.io/query"] == "locked"
        assert sorted(policy.spec.policy_types or []) == ["Egress", "Ingress"]
        [ingress] = policy.spec.ingress or []
        assert [(p.protocol, p.port) for p in ingress.ports] == [("TCP", METRICS_PORT)]
        assert ingress._from is None  # from anywhere, but only to that port
        egress = {
            (p.protocol, p.port, tuple(t.ip_block.cidr for t in rule.to or []))
            for rule in policy.spec.egress
            for p in rule.ports
        }
        assert egress == {
            ("UDP", 53, ()), ("TCP", 53, ()),
            ("TCP", 9092, ("10.0.0.9/32",)),  # an IP literal: that address only
            ("TCP", 9093, ()), ("TCP", 8081, ()),  # names: their ports, any address
        }  # fmt: skip

        custom.patch_namespaced_custom_object(
            model.GROUP, model.VERSION, namespace, model.PLURAL, "locked",
            {"spec": {"networkPolicy": {"enabled": False}}},
        )  # fmt: skip
        wait_until(lambda: policy_names() == [], 60, "the policy removed", operator.process,
                   operator.log_file)  # fmt: skip
    finally:
        operator.stop()
