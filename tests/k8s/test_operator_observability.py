"""The operator's observability on the real API server: an event for every lifecycle
transition and refused upgrade, its own /metrics, and the Argo CD health checks applied to the
statuses it writes."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kopf.testing import KopfRunner
from kubernetes import client

from streamhouse_operator.models import streamquery as model
from tests.harness.argocd import QUERY_HEALTH, health
from tests.harness.kube import ControlPlane
from tests.harness.processes import free_port
from tests.monitoring_assets import alert_rules, metric_names

pytestmark = pytest.mark.k8s

CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / "streamquery.yaml"
T = TypeVar("T")
DDL = """CREATE STREAM orders (order_id BIGINT, customer_id VARCHAR, amount DECIMAL(10,2))
  WITH (kafka_topic = 'orders', value_format = 'JSON');
"""
TOTALS = (
    DDL + "CREATE TABLE totals AS SELECT customer_id, {agg} AS v FROM orders GROUP BY customer_id;"
)
BAD = DDL + "CREATE STREAM big AS SELECT * FROM orders WHERE amout > 1000;"


def _eventually(probe: Callable[[], T | None], timeout_s: float = 60) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"condition not met within {timeout_s}s")


@pytest.fixture
def metrics_port(
    control_plane: ControlPlane, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[int]:
    control_plane.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
    control_plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", f"crd/{model.PLURAL}.{model.GROUP}"
    )
    port = free_port()
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    monkeypatch.setenv("STREAMHOUSE_OBSERVE_INTERVAL_S", "1")
    monkeypatch.setenv("STREAMHOUSE_OPERATOR_METRICS_PORT", str(port))
    monkeypatch.setenv("STREAMHOUSE_OPERATOR_METRICS_ADDR", "127.0.0.1")
    args = ["run", "--standalone", "--namespace", namespace, "-m", "streamhouse_operator.main"]
    with KopfRunner(args, timeout=60) as runner:
        yield port
    assert runner.exit_code == 0, runner.output


def _create(api: client.ApiClient, namespace: str, name: str, sql: str, **spec: Any) -> None:
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        model.GROUP,
        model.VERSION,
        namespace,
        model.PLURAL,
        {
            "apiVersion": f"{model.GROUP}/{model.VERSION}",
            "kind": model.KIND,
            "metadata": {"name": name},
            "spec": {"sql": sql, "kafka": {"bootstrapServers": "kafka:9092"}, **spec},
        },
    )


def _get(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    body = client.CustomObjectsApi(api).get_namespaced_custom_object(
        model.GROUP, model.VERSION, namespace, model.PLURAL, name
    )
    assert isinstance(body, dict)
    return body


def _events(api: client.ApiClient, namespace: str, name: str) -> list[tuple[str, str, str]]:
    found = client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    )
    ordered = sorted(found.items, key=lambda e: (e.first_timestamp, e.metadata.creation_timestamp))
    return [
        (str(e.type), str(e.reason), str(e.message))
        for e in ordered
        if e.source and e.source.component == "streamhouse-operator"
    ]


def test_lifecycle_transitions_and_a_refused_upgrade_are_events(
    metrics_port: int, kube_api: client.ApiClient, namespace: str
) -> None:
    _create(kube_api, namespace, "totals", TOTALS.format(agg="SUM(amount)"))
    deploying = _eventually(lambda: _events(kube_api, namespace, "totals"))
    assert deploying[0][:2] == ("Normal", "Deploying")
    assert deploying[0][2].startswith("new -> DEPLOYING")
    _eventually(lambda: _get(kube_api, namespace, "totals")["status"].get("lastReconciledSpec"))

    patch = {"spec": {"sql": TOTALS.format(agg="MAX(amount)")}}
    client.CustomObjectsApi(kube_api).patch_namespaced_custom_object(
        model.GROUP, model.VERSION, namespace, model.PLURAL, "totals", patch
    )

    def refused_yet() -> list[tuple[str, str, str]] | None:
        found = _events(kube_api, namespace, "totals")
        return found if any(reason == "UpgradeRefused" for _, reason, _ in found) else None

    events = _eventually(refused_yet)
    refused = [e for e in events if e[1] == "UpgradeRefused"]
    assert {kind for kind, _, _ in refused} == {"Warning"}
    assert any("state-incompatible SQL change refused" in m for _, _, m in refused)
    assert any(m.startswith("DEPLOYING -> FAILED") for _, _, m in refused)
    time.sleep(2.5)  # more timer runs: a refusal is announced once, not every re-check
    assert len([e for e in _events(kube_api, namespace, "totals") if e[1] == "UpgradeRefused"]) == 2


def test_bad_sql_is_a_warning_event_and_argo_cd_sees_degraded(
    metrics_port: int, kube_api: client.ApiClient, namespace: str
) -> None:
    _create(kube_api, namespace, "bad", BAD)
    events = _eventually(lambda: _events(kube_api, namespace, "bad"))
    assert events[0][:2] == ("Warning", "InvalidSQL")
    assert "error[E102]" in events[0][2] and "amout" in events[0][2]
    body = _eventually(
        lambda: (
            (b := _get(kube_api, namespace, "bad")).get("status", {}).get("lifecycleState")
            == "FAILED"
            and b
        )
    )
    status, message = health(QUERY_HEALTH, body)
    assert status == "Degraded"
    assert "unknown column 'amout'" in message


def test_argo_cd_health_of_deploying_and_suspended_queries(
    metrics_port: int, kube_api: client.ApiClient, namespace: str
) -> None:
    _create(kube_api, namespace, "rolling", TOTALS.format(agg="SUM(amount)"))
    _create(kube_api, namespace, "paused", TOTALS.format(agg="SUM(amount)"), state="suspended")
    rolling = _eventually(
        lambda: (b := _get(kube_api, namespace, "rolling")).get("status", {}).get("queryId") and b
    )
    assert health(QUERY_HEALTH, rolling)[0] == "Progressing"  # no kubelet runs the pods here
    paused = _eventually(
        lambda: (
            (b := _get(kube_api, namespace, "paused")).get("status", {}).get("lifecycleState")
            == "SUSPENDED"
            and b
        )
    )
    assert health(QUERY_HEALTH, paused)[0] == "Suspended"


def test_the_operator_exports_the_metrics_the_alerts_read(
    metrics_port: int, kube_api: client.ApiClient, namespace: str
) -> None:
    _create(kube_api, namespace, "counted", TOTALS.format(agg="SUM(amount)"))

    def scrape() -> str:
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode())
        except urllib.error.URLError:
            return ""  # the startup handler has not opened the port yet

    text = _eventually(lambda: (t := scrape()) and 'query="counted"' in t and t)
    assert (
        f'streamhouse_operator_query_ready{{query="counted",query_namespace="{namespace}"}} 0.0'
        in text
    )
    assert 'streamhouse_operator_queries{lifecycle_state="DEPLOYING"}' in text
    assert "streamhouse_operator_reconcile_duration_seconds_count" in text
    assert 'streamhouse_operator_reconciles_total{lifecycle_state="DEPLOYING"}' in text
    operator_names = {
        n for rule in alert_rules() for n in metric_names(rule["expr"]) if "_operator_" in n
    }
    assert operator_names and all(name in text for name in operator_names)
