"""The StreamQuery CRD on the real API server: install, create, read back, schema rejection."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiException

from streamhouse_operator.models import streamquery as model
from tests.harness.kube import ControlPlane

pytestmark = pytest.mark.k8s

CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / "streamquery.yaml"


@pytest.fixture(scope="module")
def installed_crd(control_plane: ControlPlane, kube_api: client.ApiClient) -> Iterator[None]:
    control_plane.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
    extensions = client.ApiextensionsV1Api(kube_api)
    name = f"{model.PLURAL}.{model.GROUP}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        conditions = extensions.read_custom_resource_definition(name).status.conditions or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            break
        time.sleep(0.2)
    else:
        pytest.fail("CRD never became Established")
    yield


def _query(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{model.GROUP}/{model.VERSION}",
        "kind": model.KIND,
        "metadata": {"name": name},
        "spec": {
            "sql": "CREATE STREAM high_value AS SELECT * FROM orders WHERE amount > 1000;",
            "kafka": {"bootstrapServers": "kafka:9092"},
            **spec,
        },
    }


def test_streamquery_is_created_and_read_back_with_schema_defaults(
    installed_crd: None, kube_api: client.ApiClient, namespace: str
) -> None:
    api = client.CustomObjectsApi(kube_api)
    api.create_namespaced_custom_object(
        model.GROUP, model.VERSION, namespace, model.PLURAL, _query("orders-filter")
    )
    stored = api.get_namespaced_custom_object(
        model.GROUP, model.VERSION, namespace, model.PLURAL, "orders-filter"
    )
    assert stored["spec"]["sql"].startswith("CREATE STREAM high_value")
    # Defaults come from the generated schema, applied by the API server.
    assert stored["spec"]["parallelism"] == 1
    assert stored["spec"]["state"] == "running"
    assert stored["spec"]["upgradeMode"] == "last-state"


def test_short_name_and_printer_columns_work_with_kubectl(
    installed_crd: None, control_plane: ControlPlane, namespace: str
) -> None:
    control_plane.kubectl(
        "apply", "-n", namespace, "-f", "-", input_text=yaml.safe_dump(_query("by-kubectl"))
    )
    table = control_plane.kubectl("get", "sq", "-n", namespace)
    rows = _columns(table)
    assert list(rows[0]) == ["NAME", "STATE", "PARALLELISM", "READY", "AGE"]
    # STATE and READY stay empty until the operator writes status.
    assert rows[0] | {"AGE": ""} == {
        "NAME": "by-kubectl",
        "STATE": "",
        "PARALLELISM": "1",
        "READY": "",
        "AGE": "",
    }


def _columns(table: str) -> list[dict[str, str]]:
    """Split kubectl's aligned table by the header's column offsets."""
    header, *lines = table.rstrip("\n").splitlines()
    names = header.split()
    starts = [header.index(name) for name in names] + [None]
    return [
        {name: line[starts[i] : starts[i + 1]].strip() for i, name in enumerate(names)}
        for line in lines
    ]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"parallelism": -1}, "spec.parallelism"),
        ({"state": "paused"}, "spec.state"),
        ({"upgradeMode": "savepoint"}, "spec.upgradeMode"),
        ({"sql": ""}, "spec.sql"),
        ({"sql": "x" * (model.MAX_SQL_LENGTH + 1)}, "spec.sql"),
        ({"kafka": {}}, "spec.kafka.bootstrapServers"),
    ],
)
def test_invalid_streamquery_is_rejected_by_the_schema(
    installed_crd: None,
    kube_api: client.ApiClient,
    namespace: str,
    spec: dict[str, Any],
    field: str,
) -> None:
    api = client.CustomObjectsApi(kube_api)
    with pytest.raises(ApiException) as rejected:
        api.create_namespaced_custom_object(
            model.GROUP, model.VERSION, namespace, model.PLURAL, _query("bad", **spec)
        )
    assert rejected.value.status == 422
    assert field in rejected.value.body
    with pytest.raises(ApiException) as missing:
        api.get_namespaced_custom_object(model.GROUP, model.VERSION, namespace, model.PLURAL, "bad")
    assert missing.value.status == 404
