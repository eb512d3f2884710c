"""The StreamQuery CRD on the real API server: install, create, read back, schema rejection."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client, utils
from kubernetes.client import ApiException

from streamhouse_operator import builders
from streamhouse_operator.models import streamquery as model
from tests.harness.kube import ControlPlane
from tests.unit.operator.spec_cases import (
    ACCEPTED_OVERRIDES,
    BASE_SPEC,
    FULL_SPEC,
    INVALID_NAMES,
    INVALID_SPECS,
    VALID_NAMES,
    InvalidSpec,
)

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
    assert list(rows[0]) == ["NAME", "STATE", "PARALLELISM", "READY", "LAG", "INPUT/S", "AGE"]
    # STATE, READY, LAG and INPUT/S stay empty until the operator writes status.
    assert rows[0] | {"AGE": ""} == {
        "NAME": "by-kubectl",
        "STATE": "",
        "PARALLELISM": "1",
        "READY": "",
        "LAG": "",
        "INPUT/S": "",
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


def _api(kube_api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)


def _create(kube_api: client.ApiClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    created = _api(kube_api).create_namespaced_custom_object(
        model.GROUP, model.VERSION, namespace, model.PLURAL, body
    )
    return cast(dict[str, Any], created)


def _patch(
    kube_api: client.ApiClient, namespace: str, name: str, body: dict[str, Any]
) -> dict[str, Any]:
    patched = _api(kube_api).patch_namespaced_custom_object(
        model.GROUP, model.VERSION, namespace, model.PLURAL, name, body
    )
    return cast(dict[str, Any], patched)


@pytest.mark.parametrize("case", INVALID_SPECS, ids=lambda case: case.id)
def test_invalid_streamquery_is_rejected_by_the_schema(
    installed_crd: None, kube_api: client.ApiClient, namespace: str, case: InvalidSpec
) -> None:
    """The same cases tests/unit/operator/test_models.py feeds the pydantic model."""
    body = _query("bad")
    body["spec"] = case.full()
    with pytest.raises(ApiException) as rejected:
        _create(kube_api, namespace, body)
    assert rejected.value.status == 422
    assert case.field in rejected.value.body
    assert case.message in rejected.value.body
    with pytest.raises(ApiException) as missing:
        _api(kube_api).get_namespaced_custom_object(
            model.GROUP, model.VERSION, namespace, model.PLURAL, "bad"
        )
    assert missing.value.status == 404


@pytest.mark.parametrize("overrides", ACCEPTED_OVERRIDES)
def test_overrides_that_keep_the_guarantee_are_admitted(
    installed_crd: None, kube_api: client.ApiClient, namespace: str, overrides: dict[str, Any]
) -> None:
    """The same overrides tests/unit/operator/test_models.py feeds the pydantic model."""
    body = _query("tuned")
    body["spec"] = {**BASE_SPEC, "kafka": {"bootstrapServers": "k:9092", **overrides}}
    stored = _create(kube_api, namespace, body)
    assert stored["spec"]["kafka"] == body["spec"]["kafka"]


def test_a_spec_with_every_field_set_is_accepted_and_kept_verbatim(
    installed_crd: None, kube_api: client.ApiClient, namespace: str
) -> None:
    body = _query("everything")
    body["spec"] = FULL_SPEC
    stored = _create(kube_api, namespace, body)
    # Nothing pruned: every field of the model exists in the CRD schema under the same name.
    assert stored["spec"] == FULL_SPEC | {"storage": FULL_SPEC["storage"]}
    assert model.StreamQuerySpec.model_validate(stored["spec"]).parallelism == 3


def test_api_server_defaults_are_the_models_defaults(
    installed_crd: None, kube_api: client.ApiClient, namespace: str
) -> None:
    stored = _create(kube_api, namespace, _query("defaults"))
    parsed = model.StreamQuerySpec.model_validate(stored["spec"])
    dumped = parsed.model_dump(by_alias=True, exclude_none=True, mode="json")
    # The model also fills empty maps the schema leaves absent; those mean the same.
    assert stored["spec"] == {k: v for k, v in dumped.items() if v != {} or k == "storage"} | {
        "kafka": {"bootstrapServers": "kafka:9092"}
    }
    assert stored["spec"]["storage"] == {"size": "1Gi"}
    assert stored["spec"]["lateness"] == "0s"
    assert stored["spec"]["errorPolicy"] == "dead-letter"
    assert stored["spec"]["processingGuarantee"] == "at-least-once"
    assert stored["spec"]["deleteInternalTopics"] is False


@pytest.mark.parametrize("name", VALID_NAMES)
def test_names_that_fit_a_service_and_statefulset_are_accepted(
    installed_crd: None, kube_api: client.ApiClient, namespace: str, name: str
) -> None:
    assert _create(kube_api, namespace, _query(name))["metadata"]["name"] == name


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_names_that_cannot_name_a_service_or_statefulset_are_rejected(
    installed_crd: None, kube_api: client.ApiClient, namespace: str, name: str
) -> None:
    with pytest.raises(ApiException) as rejected:
        _create(kube_api, namespace, _query(name))
    assert rejected.value.status == 422
    assert "DNS-1035 label of at most 52" in rejected.value.body


def test_storage_cannot_change_after_creation_but_other_fields_can(
    installed_crd: None, kube_api: client.ApiClient, namespace: str
) -> None:
    _create(kube_api, namespace, _query("fixed-storage"))
    for change in ({"size": "2Gi"}, {"storageClassName": "fast"}):
        with pytest.raises(ApiException) as rejected:
            _patch(kube_api, namespace, "fixed-storage", {"spec": {"storage": change}})
        assert rejected.value.status == 422
        assert "storage cannot change after creation" in rejected.value.body
    patched = _patch(
        kube_api, namespace, "fixed-storage", {"spec": {"parallelism": 4, "restartNonce": 1}}
    )
    assert patched["spec"]["parallelism"] == 4
    assert patched["spec"]["storage"] == {"size": "1Gi"}


def test_dead_letter_topic_may_stay_when_the_policy_stays_dead_letter(
    installed_crd: None, kube_api: client.ApiClient, namespace: str
) -> None:
    _create(kube_api, namespace, _query("dlq", deadLetterTopic="orders.dlq"))
    with pytest.raises(ApiException) as rejected:
        _patch(kube_api, namespace, "dlq", {"spec": {"errorPolicy": "fail"}})
    assert rejected.value.status == 422
    assert "deadLetterTopic is only used when errorPolicy is dead-letter" in rejected.value.body
    # Dropping the topic (a merge patch with null removes it) in the same edit is fine.
    patched = _patch(
        kube_api, namespace, "dlq", {"spec": {"errorPolicy": "fail", "deadLetterTopic": None}}
    )
    assert "deadLetterTopic" not in patched["spec"]


def test_status_is_a_typed_subresource(
    installed_crd: None, kube_api: client.ApiClient, namespace: str
) -> None:
    api = _api(kube_api)
    _create(kube_api, namespace, _query("with-status"))
    status = {
        "observedGeneration": 1,
        "lifecycleState": "RUNNING",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "AllReplicasReady",
                "message": "1/1 ready",
                "observedGeneration": 1,
                "lastTransitionTime": "2024-05-01T12:00:00Z",
            }
        ],
        "replicas": 1,
        "readyReplicas": 1,
        "selector": "app.kubernetes.io/instance=with-status",
        "lag": 42,
        "inputRate": 1234.5,
        "watermark": "2024-05-01T12:00:00.250Z",
        "kopf": {"progress": {"reconcile": {"retries": 1}}},
    }
    stored = api.patch_namespaced_custom_object_status(
        model.GROUP, model.VERSION, namespace, model.PLURAL, "with-status", {"status": status}
    )
    assert stored["status"] == status  # nothing pruned, kopf's subtree included
    with pytest.raises(ApiException) as rejected:
        api.patch_namespaced_custom_object_status(
            model.GROUP,
            model.VERSION,
            namespace,
            model.PLURAL,
            "with-status",
            {"status": {"lifecycleState": "HAPPY"}},
        )
    assert rejected.value.status == 422
    assert "status.lifecycleState" in rejected.value.body
    # Writing status through the main resource is ignored: the subresource owns it.
    _patch(kube_api, namespace, "with-status", {"status": {"lag": 0}})
    read = api.get_namespaced_custom_object(
        model.GROUP, model.VERSION, namespace, model.PLURAL, "with-status"
    )
    assert read["status"]["lag"] == 42


def test_kubectl_scale_sets_parallelism_and_reads_the_status_selector(
    installed_crd: None, kube_api: client.ApiClient, control_plane: ControlPlane, namespace: str
) -> None:
    api = _api(kube_api)
    _create(kube_api, namespace, _query("scalable"))
    api.patch_namespaced_custom_object_status(
        model.GROUP,
        model.VERSION,
        namespace,
        model.PLURAL,
        "scalable",
        {"status": {"replicas": 1, "selector": "streamhouse.io/query=scalable"}},
    )
    control_plane.kubectl("scale", "-n", namespace, "sq/scalable", "--replicas=3")
    stored = api.get_namespaced_custom_object(
        model.GROUP, model.VERSION, namespace, model.PLURAL, "scalable"
    )
    assert stored["spec"]["parallelism"] == 3
    scale = api.get_namespaced_custom_object_scale(
        model.GROUP, model.VERSION, namespace, model.PLURAL, "scalable"
    )
    assert scale["spec"]["replicas"] == 3
    assert scale["status"] == {"replicas": 1, "selector": "streamhouse.io/query=scalable"}


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_built_children_are_admitted_run_restricted_and_are_collected_with_the_query(
    installed_crd: None, kube_api: client.ApiClient, namespace: str
) -> None:
    """The builders' manifests against the real API server and controllers: accepted as they
    are, pods admitted under the `restricted` Pod Security level, everything (state volumes
    included) garbage-collected through owner references when the StreamQuery goes."""
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
    core.patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    # Admission refuses pods naming a service account or PriorityClass that does not exist:
    # create the account, leave out the (cluster-scoped) PriorityClass.
    pod_template = {k: v for k, v in FULL_SPEC["podTemplate"].items() if k != "priorityClassName"}
    account = pod_template["serviceAccountName"]
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=account))
    )
    body = _query("children")
    body["spec"] = FULL_SPEC | {"state": "running", "parallelism": 2, "podTemplate": pod_template}
    stored = _create(kube_api, namespace, body)
    ctx = builders.QueryContext(
        name="children",
        namespace=namespace,
        uid=stored["metadata"]["uid"],
        spec=model.StreamQuerySpec.model_validate(stored["spec"]),
        image="streamhouse:0.1.0",
        plan_text="Sink(high_value)",
    )
    for build in (
        builders.get_configmap,
        builders.get_service,
        builders.get_statefulset,
        builders.get_pod_disruption_budget,
    ):
        utils.create_from_dict(kube_api, build(ctx), namespace=namespace)  # type: ignore[no-untyped-call]

    selector = builders.selector_string("children")

    def pods() -> list[Any]:
        return list(core.list_namespaced_pod(namespace, label_selector=selector).items)

    # The StatefulSet controller's pods pass the restricted admission check, or never appear.
    _wait_for(lambda: len(pods()) == 2, "two query pods")
    pod = next(p for p in pods() if p.metadata.name == "children-0")
    assert pod.spec.containers[0].security_context.read_only_root_filesystem is True
    assert pod.metadata.annotations["streamhouse.io/config-hash"] == ctx.config_hash
    claims = core.list_namespaced_persistent_volume_claim(namespace).items
    assert sorted(str(c.metadata.name) for c in claims) == [
        "state-children-0",
        "state-children-1",
    ]

    _api(kube_api).delete_namespaced_custom_object(
        model.GROUP, model.VERSION, namespace, model.PLURAL, "children"
    )

    def collected() -> bool:
        return (
            not apps.list_namespaced_stateful_set(namespace).items
            and not core.list_namespaced_service(namespace).items
            and not core.list_namespaced_config_map(namespace, label_selector=selector).items
            and not client.PolicyV1Api(kube_api)
            .list_namespaced_pod_disruption_budget(namespace)
            .items
            # persistentVolumeClaimRetentionPolicy whenDeleted: Delete.
            and not core.list_namespaced_persistent_volume_claim(namespace).items
        )

    # The garbage collector learns about a newly installed CRD on its periodic discovery
    # (about 30 s), so this can take a while right after the CRD was installed.
    _wait_for(collected, "the garbage collector to remove the children", timeout_s=120)
