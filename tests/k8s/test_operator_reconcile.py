"""The operator (kopf, in-process) against the real API server: a StreamQuery becomes its
children with owner references and truthful status; bad SQL becomes FAILED with line:column."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kopf.testing import KopfRunner
from kubernetes import client

from streamhouse_operator.models import streamquery as model
from tests.harness.kube import ControlPlane

pytestmark = pytest.mark.k8s

CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / "streamquery.yaml"
T = TypeVar("T")

VALID_SQL = """CREATE STREAM orders (order_id BIGINT, amount DECIMAL(10,2))
  WITH (kafka_topic = 'orders', value_format = 'JSON');
CREATE STREAM high_value AS SELECT * FROM orders WHERE amount > 1000;
"""
BAD_SQL = """CREATE STREAM orders (order_id BIGINT, amount DECIMAL(10,2))
  WITH (kafka_topic = 'orders');
CREATE STREAM high_value AS SELECT * FROM orders WHERE amout > 1000;
"""


def _eventually(probe: Callable[[], T | None], timeout_s: float = 60) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"condition not met within {timeout_s}s")


@pytest.fixture
def operator(
    control_plane: ControlPlane, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    control_plane.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
    control_plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", f"crd/{model.PLURAL}.{model.GROUP}"
    )
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    monkeypatch.setenv("STREAMHOUSE_OBSERVE_INTERVAL_S", "1")
    args = ["run", "--standalone", "--namespace", namespace, "-m", "streamhouse_operator.main"]
    with KopfRunner(args, timeout=60) as runner:
        yield
    assert runner.exit_code == 0, runner.output
    assert runner.exception is None


def _create(kube_api: client.ApiClient, namespace: str, name: str, sql: str) -> None:
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        model.GROUP,
        model.VERSION,
        namespace,
        model.PLURAL,
        {
            "apiVersion": f"{model.GROUP}/{model.VERSION}",
            "kind": model.KIND,
            "metadata": {"name": name},
            "spec": {"sql": sql, "kafka": {"bootstrapServers": "kafka:9092"}, "parallelism": 2},
        },
    )


def _status(kube_api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    body = client.CustomObjectsApi(kube_api).get_namespaced_custom_object(
        model.GROUP, model.VERSION, namespace, model.PLURAL, name
    )
    assert isinstance(body, dict)
    status: dict[str, Any] = body.get("status") or {}
    return status


def test_a_valid_query_gets_its_children_and_status(
    operator: None, kube_api: client.ApiClient, namespace: str
) -> None:
    _create(kube_api, namespace, "high-value", VALID_SQL)
    status = _eventually(
        lambda: (s := _status(kube_api, namespace, "high-value")).get("observedGeneration") and s
    )
    apps, core = client.AppsV1Api(kube_api), client.CoreV1Api(kube_api)
    statefulset = apps.read_namespaced_stateful_set("high-value", namespace)
    owner = statefulset.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("StreamQuery", "high-value", True)
    assert statefulset.spec.replicas == 2
    configmap = core.read_namespaced_config_map("high-value-query", namespace)
    assert configmap.data["query.sql"] == VALID_SQL
    core.read_namespaced_service("high-value", namespace)
    client.PolicyV1Api(kube_api).read_namespaced_pod_disruption_budget("high-value", namespace)

    assert status["lifecycleState"] == "DEPLOYING"  # no kubelet runs the pods here
    assert status["outputTopic"] == "high_value"
    assert status["planSummary"] == "Source -> Filter -> Project -> Sink"
    assert len(status["queryId"]) == 12
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Validated"]["status"] == "True"
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Validated"]["observedGeneration"] == 1


def test_bad_sql_fails_with_the_line_and_column_and_creates_nothing(
    operator: None, kube_api: client.ApiClient, namespace: str
) -> None:
    _create(kube_api, namespace, "broken", BAD_SQL)
    status = _eventually(
        lambda: (
            (s := _status(kube_api, namespace, "broken")).get("lifecycleState") == "FAILED" and s
        )
    )
    assert status["error"]["code"] == "E102"
    assert (status["error"]["line"], status["error"]["column"]) == (3, 56)
    assert status["error"]["message"].startswith("3:56: unknown column 'amout'")
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Validated"]["status"] == "False"
    assert conditions["Validated"]["reason"] == "InvalidSQL"
    statefulsets = client.AppsV1Api(kube_api).list_namespaced_stateful_set(namespace).items
    assert statefulsets == []


def test_a_statefulset_deleted_by_hand_comes_back(
    operator: None, kube_api: client.ApiClient, namespace: str
) -> None:
    _create(kube_api, namespace, "drift", VALID_SQL)
    apps = client.AppsV1Api(kube_api)

    def statefulset_uid() -> str | None:
        try:
            found = apps.read_namespaced_stateful_set("drift", namespace)
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise
        return str(found.metadata.uid)

    first = _eventually(statefulset_uid)
    apps.delete_namespaced_stateful_set("drift", namespace)
    second = _eventually(lambda: (uid := statefulset_uid()) != first and uid)
    assert second and second != first


def test_periodic_rechecks_keep_conditions_stable(
    operator: None, kube_api: client.ApiClient, namespace: str
) -> None:
    _create(kube_api, namespace, "steady", VALID_SQL)
    first = _eventually(
        lambda: (s := _status(kube_api, namespace, "steady")).get("observedGeneration") and s
    )
    time.sleep(3.5)  # three timer runs at STREAMHOUSE_OBSERVE_INTERVAL_S=1
    later = _status(kube_api, namespace, "steady")
    times = {c["type"]: c["lastTransitionTime"] for c in first["conditions"]}
    assert {c["type"]: c["lastTransitionTime"] for c in later["conditions"]} == times
    assert later["lifecycleState"] == first["lifecycleState"]
