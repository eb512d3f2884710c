"""The shared catalog on the real API server, with the operator serving its webhook: queries
that hold only their CSAS resolve against StreamSource objects, a query reads another one's
output by name, a declaration change re-validates its readers, and a used declaration cannot
be deleted."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiException

from streamhouse_operator.builders.statefulset import CONFIG_HASH_ANNOTATION
from streamhouse_operator.models import streamquery as model
from streamhouse_operator.models import streamsource as catalog_model
from tests.harness import pki
from tests.harness.kube import ControlPlane
from tests.harness.processes import REPO_ROOT, free_port, start_process, stop_process, wait_until

pytestmark = pytest.mark.k8s

T = TypeVar("T")
WEBHOOK_CONFIGURATION = "catalog.streamhouse.io"
ORDERS = """CREATE STREAM orders (order_id BIGINT, customer_id VARCHAR, amount DECIMAL(10,2))
  WITH (kafka_topic = 'orders', value_format = 'JSON');"""
BIG = "CREATE STREAM big_orders AS SELECT order_id, amount FROM orders WHERE amount > 1000;"
HUGE = "CREATE STREAM huge_orders AS SELECT * FROM big_orders WHERE amount > 100000;"


def _eventually(probe: Callable[[], T | None], what: str, timeout_s: float = 120) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what}: not within {timeout_s}s")


@pytest.fixture
def operator(
    control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> Iterator[Path]:
    """`streamhouse operator` serving the webhook for StreamQuery and StreamSource."""
    for crd in ("streamquery.yaml", "streamsource.yaml"):
        control_plane.kubectl("apply", "--server-side", "-f", str(REPO_ROOT / "crds" / crd))
    control_plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        f"crd/{catalog_model.PLURAL}.{model.GROUP}",
    )  # fmt: skip
    certificates = pki.generate(tmp_path / "webhook-pki")
    environment = {
        "KUBECONFIG": str(control_plane.kubeconfig),
        "STREAMHOUSE_OBSERVE_INTERVAL_S": "1",
        "STREAMHOUSE_WEBHOOK_NAME": WEBHOOK_CONFIGURATION,
        "STREAMHOUSE_WEBHOOK_ADDR": "127.0.0.1",
        "STREAMHOUSE_WEBHOOK_PORT": str(free_port()),
        "STREAMHOUSE_WEBHOOK_CERTFILE": str(certificates.server_cert),
        "STREAMHOUSE_WEBHOOK_KEYFILE": str(certificates.server_key),
        "STREAMHOUSE_WEBHOOK_CAFILE": str(certificates.ca_cert),
    }
    registrations = client.AdmissionregistrationV1Api(kube_api)
    log = tmp_path / "operator.log"
    process = start_process(
        [sys.executable, "-m", "streamhouse_runtime.cli", "operator", "--namespace", namespace],
        log,
        environment,
    )

    def registered() -> bool:
        try:
            found = registrations.read_validating_webhook_configuration(WEBHOOK_CONFIGURATION)
        except ApiException:
            return False
        return len(found.webhooks or []) >= 2

    try:
        wait_until(registered, 60, "the webhook configuration", process, log)
        yield log
    finally:
        stop_process(process)
        try:
            registrations.delete_validating_webhook_configuration(WEBHOOK_CONFIGURATION)
        except ApiException as error:
            if error.status != 404:
                raise


def _kubectl(plane: ControlPlane, namespace: str, *args: str, manifest: Any = None) -> str:
    text = yaml.safe_dump(manifest) if manifest is not None else None
    result: str = plane.kubectl(*args, "-n", namespace, input_text=text)
    return result


def _source(name: str, sql: str) -> dict[str, Any]:
    return {
        "apiVersion": catalog_model.API_VERSION,
        "kind": catalog_model.KIND,
        "metadata": {"name": name},
        "spec": {"sql": sql},
    }


def _query(name: str, sql: str) -> dict[str, Any]:
    return {
        "apiVersion": model.API_VERSION,
        "kind": model.KIND,
        "metadata": {"name": name},
        "spec": {"sql": sql, "kafka": {"bootstrapServers": "kafka:9092"}},
    }


def _apply_when_served(plane: ControlPlane, namespace: str, manifest: dict[str, Any]) -> str:
    """kubectl apply, retried while the API server starts calling the new webhook."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return _kubectl(plane, namespace, "apply", "-f", "-", manifest=manifest)
        except subprocess.CalledProcessError as failed:
            if "denied the request" in failed.stderr or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _get(api: client.ApiClient, namespace: str, plural: str, name: str) -> dict[str, Any]:
    try:
        body = client.CustomObjectsApi(api).get_namespaced_custom_object(
            model.GROUP, model.VERSION, namespace, plural, name
        )
    except ApiException as error:
        if error.status == 404:
            return {}
        raise
    assert isinstance(body, dict)
    return body


def _status(api: client.ApiClient, namespace: str, plural: str, name: str) -> dict[str, Any]:
    status: dict[str, Any] = _get(api, namespace, plural, name).get("status") or {}
    return status


def _conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status.get("conditions") or []}


def test_queries_resolve_chain_and_follow_the_catalog(
    operator: Path, control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str
) -> None:
    # A bad declaration is refused at apply time, with the code reconcile would write.
    with pytest.raises(subprocess.CalledProcessError) as refused:
        _apply_when_served(control_plane, namespace, _source("wrong", ORDERS + "\n" + BIG))
    assert "error[E430]" in refused.value.stderr

    _apply_when_served(control_plane, namespace, _source("orders", ORDERS))
    source = _eventually(
        lambda: (
            (s := _status(kube_api, namespace, catalog_model.PLURAL, "orders")).get("declares")
            and s
        ),
        "orders validated",
    )
    assert (source["declares"], source["topic"]) == ("STREAM orders", "orders")
    assert _conditions(source)["Validated"]["status"] == "True"
    listed = _kubectl(control_plane, namespace, "get", "ss", "orders")
    assert "STREAM orders" in listed

    # A query that holds only its CSAS: resolved against the catalog, deployed standalone.
    _apply_when_served(control_plane, namespace, _query("big", BIG))
    big = _eventually(
        lambda: (s := _status(kube_api, namespace, model.PLURAL, "big")).get("queryId") and s,
        "big reconciled",
    )
    assert _conditions(big)["Validated"]["status"] == "True"
    assert big["catalogSources"] == ["orders"]
    configmap = client.CoreV1Api(kube_api).read_namespaced_config_map("big-query", namespace)
    assert configmap.data["query.sql"].endswith(BIG)
    assert (
        "CREATE STREAM orders (order_id BIGINT, customer_id VARCHAR" in configmap.data["query.sql"]
    )

    # Its output is registered: a second query reads it by name.
    output = _eventually(
        lambda: _status(kube_api, namespace, catalog_model.PLURAL, "big-output").get("declares"),
        "big's output registered",
    )
    assert output == "STREAM big_orders"
    _apply_when_served(control_plane, namespace, _query("huge", HUGE))
    huge = _eventually(
        lambda: (s := _status(kube_api, namespace, model.PLURAL, "huge")).get("queryId") and s,
        "huge reconciled",
    )
    assert huge["catalogSources"] == ["big_orders"]
    assert _conditions(huge)["Validated"]["status"] == "True"

    # The declaration says who reads it, and cannot be deleted while they do.
    _eventually(
        lambda: (
            _status(kube_api, namespace, catalog_model.PLURAL, "orders").get("usedBy") == ["big"]
        ),
        "orders used by big",
    )
    with pytest.raises(subprocess.CalledProcessError) as in_use:
        _kubectl(control_plane, namespace, "delete", "streamsource", "orders")
    assert "error[E432]" in in_use.value.stderr and "StreamQuery big" in in_use.value.stderr
    assert _get(kube_api, namespace, catalog_model.PLURAL, "orders")

    # A compatible change (a new column) rolls out: the pods get the new declaration.
    apps = client.AppsV1Api(kube_api)

    def config_hash() -> str:
        template = apps.read_namespaced_stateful_set("big", namespace).spec.template
        return str((template.metadata.annotations or {}).get(CONFIG_HASH_ANNOTATION))

    first_hash = config_hash()
    wider = ORDERS.replace("amount DECIMAL(10,2))", "amount DECIMAL(10,2), channel VARCHAR)")
    _kubectl(control_plane, namespace, "apply", "-f", "-", manifest=_source("orders", wider))
    _eventually(
        lambda: (
            "channel VARCHAR"
            in client.CoreV1Api(kube_api)
            .read_namespaced_config_map("big-query", namespace)
            .data["query.sql"]
        ),
        "the new declaration rolled out",
    )
    # The roll-out reaches the StatefulSet after the ConfigMap (its pods restart on it).
    _eventually(lambda: config_hash() != first_hash, "the pods got the new declaration")

    # An incompatible one (the column the query filters on is gone): Degraded, left running.
    before = apps.read_namespaced_stateful_set("big", namespace).metadata.generation
    narrower = ORDERS.replace(", amount DECIMAL(10,2))", ")")
    _kubectl(control_plane, namespace, "apply", "-f", "-", manifest=_source("orders", narrower))
    degraded = _eventually(
        lambda: (
            (s := _status(kube_api, namespace, model.PLURAL, "big")).get("lifecycleState")
            == "FAILED"
            and s
        ),
        "big degraded",
    )
    condition = _conditions(degraded)["Degraded"]
    assert (condition["status"], condition["reason"]) == ("True", "CatalogIncompatible")
    assert "error[E433]" in condition["message"] and "amount" in condition["message"]
    assert degraded["error"]["code"] == "E102"
    statefulset = apps.read_namespaced_stateful_set("big", namespace)
    assert statefulset.metadata.generation == before  # still running what it ran

    # Once the queries are gone, the declaration can go.
    for name in ("huge", "big"):
        _kubectl(control_plane, namespace, "delete", "sq", name, "--wait=true")
    _eventually(
        lambda: not _status(kube_api, namespace, catalog_model.PLURAL, "orders").get("usedBy"),
        "orders no longer used",
    )
    deleted = _kubectl(control_plane, namespace, "delete", "streamsource", "orders")
    assert "deleted" in deleted
