"""The pure builders: every child manifest of a StreamQuery, checked without a cluster."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from streamhouse_operator import builders
from streamhouse_operator.builders import QueryContext
from streamhouse_operator.models import streamquery as model
from streamhouse_runtime.config import RuntimeConfig, load_config
from tests.unit.operator.spec_cases import BASE_SPEC, FULL_SPEC

pytestmark = pytest.mark.unit

UID = "0b5d6e2c-6f0c-4a57-9a3e-2f1f6f1f9c11"
IMAGE = "streamhouse:0.1.0"
SQL = BASE_SPEC["sql"]

QUERY_LABELS = {
    "app.kubernetes.io/name": "streamhouse-query",
    "app.kubernetes.io/instance": "orders",
    "app.kubernetes.io/managed-by": "streamhouse-operator",
    "streamhouse.io/query": "orders",
}
SELECTOR = {k: v for k, v in QUERY_LABELS.items() if k != "app.kubernetes.io/managed-by"}


def context(**spec: Any) -> QueryContext:
    return QueryContext(
        name="orders",
        namespace="shop",
        uid=UID,
        spec=model.StreamQuerySpec.model_validate({**BASE_SPEC, **spec}),
        image=IMAGE,
        generation=2,
        plan_text="Sink(high_value)\n  Filter(amount > 1000)\n    Source(orders)\n",
        plan_summary="orders -> filter -> high_value",
        plan_fingerprint="f00d",
    )


def full_context() -> QueryContext:
    spec = model.StreamQuerySpec.model_validate(FULL_SPEC)
    return QueryContext(name="orders", namespace="shop", uid=UID, spec=spec, image=IMAGE)


def pod_spec(ctx: QueryContext) -> dict[str, Any]:
    result: dict[str, Any] = builders.get_statefulset(ctx)["spec"]["template"]["spec"]
    return result


def container(ctx: QueryContext) -> dict[str, Any]:
    result: dict[str, Any] = pod_spec(ctx)["containers"][0]
    return result


def env(ctx: QueryContext) -> dict[str, Any]:
    """Plain values as strings, valueFrom entries as their source dict."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(ctx)["env"]}


ALL_BUILDERS: list[Callable[[QueryContext], dict[str, Any]]] = [
    builders.get_configmap,
    builders.get_service,
    builders.get_statefulset,
    builders.get_pod_disruption_budget,
    builders.get_service_monitor,
]


# --- identity, labels, owner references --------------------------------------------------


def test_query_id_is_derived_from_the_uid_not_the_name() -> None:
    first = builders.query_id(UID)
    assert first == builders.query_id(UID)  # stable across reconciles and operator restarts
    assert len(first) == 12 and int(first, 16) >= 0
    assert builders.query_id("another-uid") != first  # a recreated query starts clean
    successor = builders.successor_id(UID, "query", first, "SELECT 1")
    assert successor != first
    assert builders.successor_id(UID, "query", successor, "SELECT 1") != successor
    assert context().query_id == first


def test_explicit_query_id_in_the_context_wins() -> None:
    ctx = QueryContext("orders", "shop", UID, context().spec, IMAGE, query_id="abc123")
    assert env(ctx)["STREAMHOUSE_QUERY_ID"] == "abc123"


@pytest.mark.parametrize("build", ALL_BUILDERS, ids=lambda build: build.__name__)
def test_every_child_is_labelled_and_owned_by_the_streamquery(
    build: Callable[[QueryContext], dict[str, Any]],
) -> None:
    manifest = build(context())
    meta = manifest["metadata"]
    assert meta["namespace"] == "shop"
    assert meta["labels"] == QUERY_LABELS
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "streamhouse.io/v1alpha1",
            "kind": "StreamQuery",
            "name": "orders",
            "uid": UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    # Plain JSON all the way down: ready for the API client as it is.
    assert json.loads(json.dumps(manifest)) == manifest


def test_children_do_not_share_mutable_dicts() -> None:
    ctx = context()
    first = builders.get_service(ctx)
    first["metadata"]["labels"]["tampered"] = "yes"
    assert "tampered" not in builders.get_service(ctx)["metadata"]["labels"]


def test_selector_string_matches_the_pod_labels() -> None:
    assert builders.selector_string("orders") == (
        "app.kubernetes.io/name=streamhouse-query,app.kubernetes.io/instance=orders,"
        "streamhouse.io/query=orders"
    )


# --- ConfigMap, Service, PDB, ServiceMonitor ---------------------------------------------


def test_configmap_holds_the_sql_and_the_plan_and_nothing_else() -> None:
    configmap = builders.get_configmap(full_context())
    assert configmap["apiVersion"] == "v1" and configmap["kind"] == "ConfigMap"
    assert configmap["metadata"]["name"] == "orders-query"
    assert set(configmap["data"]) == {"query.sql", "plan.txt"}
    assert configmap["data"]["query.sql"] == SQL
    # The Secret is only named in the spec; neither its name nor the overrides land here.
    assert "kafka-client" not in json.dumps(configmap)


def test_configmap_carries_the_plan_text_and_fingerprint() -> None:
    configmap = builders.get_configmap(context())
    assert configmap["data"]["plan.txt"].startswith("Sink(high_value)")
    assert configmap["metadata"]["annotations"] == {"streamhouse.io/plan-fingerprint": "f00d"}


def test_headless_service_publishes_metrics_of_unready_pods() -> None:
    service = builders.get_service(context())
    assert service["metadata"]["name"] == "orders"
    assert service["spec"] == {
        "clusterIP": "None",
        "selector": SELECTOR,
        "publishNotReadyAddresses": True,
        "ports": [{"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}],
    }


def test_pod_disruption_budget_allows_one_pod_down() -> None:
    pdb = builders.get_pod_disruption_budget(context())
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["metadata"]["name"] == "orders"
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"] == {"matchLabels": SELECTOR}


def test_service_monitor_scrapes_the_metrics_port() -> None:
    monitor = builders.get_service_monitor(context())
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["kind"] == "ServiceMonitor"
    assert monitor["spec"] == {
        "selector": {"matchLabels": SELECTOR},
        "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}],
    }


# --- StatefulSet -------------------------------------------------------------------------


def test_statefulset_shape() -> None:
    sts = builders.get_statefulset(context(parallelism=3))
    spec = sts["spec"]
    assert sts["apiVersion"] == "apps/v1" and sts["metadata"]["name"] == "orders"
    assert spec["replicas"] == 3
    assert spec["serviceName"] == "orders"
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["updateStrategy"] == {"type": "RollingUpdate"}
    assert spec["selector"] == {"matchLabels": SELECTOR}
    assert spec["template"]["metadata"]["labels"] == QUERY_LABELS
    assert spec["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Delete",
        "whenScaled": "Retain",
    }
    assert pod_spec(context())["terminationGracePeriodSeconds"] == 30


@pytest.mark.parametrize(
    ("state", "parallelism", "expected"),
    [("running", 3, 3), ("suspended", 3, 0), ("running", 0, 0), ("suspended", 0, 0)],
)
def test_suspended_query_scales_to_zero(state: str, parallelism: int, expected: int) -> None:
    ctx = context(state=state, parallelism=parallelism)
    assert builders.get_statefulset(ctx)["spec"]["replicas"] == expected


def test_suspending_does_not_change_the_pod_template() -> None:
    """Otherwise resuming would roll every pod a second time."""
    running = builders.get_statefulset(context(parallelism=2))["spec"]["template"]
    suspended = builders.get_statefulset(context(parallelism=2, state="suspended"))
    assert suspended["spec"]["template"] == running


def test_state_volume_claim_template() -> None:
    (claim,) = builders.get_statefulset(context())["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "state"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
    }
    (sized,) = builders.get_statefulset(full_context())["spec"]["volumeClaimTemplates"]
    assert sized["spec"]["resources"] == {"requests": {"storage": "5Gi"}}
    assert sized["spec"]["storageClassName"] == "fast-ssd"


def test_restricted_pod_security() -> None:
    pod = pod_spec(context())
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container(context())["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
    }
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False


def test_container_runs_the_runtime_with_probes_on_the_metrics_port() -> None:
    query = container(context())
    assert query["name"] == "query"
    assert query["image"] == IMAGE
    assert query["command"] == ["streamhouse", "run"]
    assert query["ports"] == [{"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
    assert query["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert query["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert query["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    liveness = query["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60


def test_spec_image_overrides_the_operator_default() -> None:
    assert container(full_context())["image"] == "registry.example.com/streamhouse:0.1.0"


def test_minimal_volumes_and_mounts() -> None:
    pod = pod_spec(context())
    assert {v["name"] for v in pod["volumes"]} == {"query", "tmp"}
    query_volume = next(v for v in pod["volumes"] if v["name"] == "query")
    assert query_volume["configMap"]["name"] == "orders-query"
    assert {m["mountPath"]: m["name"] for m in container(context())["volumeMounts"]} == {
        "/var/lib/streamhouse": "state",
        "/etc/streamhouse": "query",
        "/tmp": "tmp",
    }
    assert next(v for v in pod["volumes"] if v["name"] == "tmp") == {
        "name": "tmp",
        "emptyDir": {"sizeLimit": "128Mi"},
    }


def test_kafka_secret_is_mounted_as_a_file_and_never_put_in_env() -> None:
    ctx = full_context()
    volumes = {v["name"]: v for v in pod_spec(ctx)["volumes"]}
    assert volumes["kafka-client"]["secret"] == {
        "secretName": "kafka-client",
        "items": [{"key": "client.properties", "path": "client.properties"}],
        "defaultMode": 0o440,
    }
    mounts = {m["name"]: m for m in container(ctx)["volumeMounts"]}
    assert mounts["kafka-client"] == {
        "name": "kafka-client",
        "mountPath": "/etc/streamhouse/kafka",
        "readOnly": True,
    }
    values = env(ctx)
    assert values["STREAMHOUSE_KAFKA_CONFIG_FILE"] == "/etc/streamhouse/kafka/client.properties"
    assert not any("secretKeyRef" in json.dumps(value) for value in values.values())
    assert "envFrom" not in container(ctx)


def test_udf_configmap_is_mounted_on_the_udf_path() -> None:
    ctx = full_context()
    volumes = {v["name"]: v for v in pod_spec(ctx)["volumes"]}
    assert volumes["udfs"] == {
        "name": "udfs",
        "configMap": {"name": "order-udfs", "defaultMode": 0o444},  # nobody may write them
    }
    mounts = {m["name"]: m for m in container(ctx)["volumeMounts"]}
    assert mounts["udfs"] == {
        "name": "udfs",
        "mountPath": "/etc/streamhouse/udfs",
        "readOnly": True,
    }
    assert env(ctx)["STREAMHOUSE_UDF_PATH"] == "/etc/streamhouse/udfs"


def test_optional_settings_are_absent_when_not_configured() -> None:
    values = env(context())
    for name in (
        "STREAMHOUSE_KAFKA_CONFIG_FILE",
        "STREAMHOUSE_UDF_PATH",
        "STREAMHOUSE_DEAD_LETTER_TOPIC",
        "STREAMHOUSE_SCHEMA_REGISTRY_URL",
        "STREAMHOUSE_CONSUMER_CONFIG",
        "STREAMHOUSE_PRODUCER_CONFIG",
    ):
        assert name not in values
    pod = pod_spec(context())
    for key in ("nodeSelector", "tolerations", "serviceAccountName", "priorityClassName"):
        assert key not in pod


def test_environment_of_a_minimal_query() -> None:
    ctx = context(parallelism=3, lateness="1m30s")
    assert env(ctx) == {
        "POD_NAME": {"fieldRef": {"fieldPath": "metadata.name"}},
        "STREAMHOUSE_BOOTSTRAP_SERVERS": "kafka:9092",
        "STREAMHOUSE_QUERY_FILE": "/etc/streamhouse/query.sql",
        "STREAMHOUSE_QUERY_ID": builders.query_id(UID),
        "STREAMHOUSE_STATE_ID": builders.query_id(UID),
        "STREAMHOUSE_DATA_DIR": "/var/lib/streamhouse",
        "STREAMHOUSE_REPLICAS": "3",
        "STREAMHOUSE_METRICS_PORT": "9090",
        "STREAMHOUSE_ERROR_POLICY": "dead-letter",
        "STREAMHOUSE_LATENESS_MS": "90000",
        "STREAMHOUSE_MEMORY_LIMIT_BYTES": {
            "resourceFieldRef": {
                "containerName": "query",
                "resource": "limits.memory",
                "divisor": "1",
            }
        },
    }


def test_environment_of_a_fully_configured_query() -> None:
    values = env(full_context())
    assert values["STREAMHOUSE_BOOTSTRAP_SERVERS"] == "kafka-0:9093,kafka-1:9093"
    assert values["STREAMHOUSE_DEAD_LETTER_TOPIC"] == "orders.dlq"
    assert values["STREAMHOUSE_SCHEMA_REGISTRY_URL"] == "http://schema-registry:8081"
    assert json.loads(values["STREAMHOUSE_CONSUMER_CONFIG"]) == {
        "fetch.min.bytes": "1",
        "session.timeout.ms": "45000",
    }
    assert json.loads(values["STREAMHOUSE_PRODUCER_CONFIG"]) == {
        "linger.ms": "20",
        "compression.type": "zstd",
    }


@pytest.mark.parametrize("ctx", [context(), full_context()], ids=["minimal", "full"])
def test_the_runtime_understands_every_setting_the_pod_gets(ctx: QueryContext) -> None:
    """The pod environment is the operator/runtime contract: load it with the runtime's own
    loader, resolving the downward-API values the way the kubelet would."""
    environ = {
        name: value
        for name, value in env(ctx).items()
        if isinstance(value, str) and name.startswith("STREAMHOUSE_")
    }
    environ["STREAMHOUSE_MEMORY_LIMIT_BYTES"] = str(512 << 20)
    config = load_config(environ=environ)
    assert isinstance(config, RuntimeConfig)
    assert config.query_id == ctx.query_id
    assert config.replicas == ctx.spec.parallelism
    assert config.lateness_ms == builders.lateness_ms(ctx.spec.lateness)
    assert config.consumer_config == ctx.spec.kafka.consumer
    assert config.producer_config == ctx.spec.kafka.producer
    assert config.error_policy == ctx.spec.error_policy.value


@pytest.mark.parametrize(
    ("text", "milliseconds"),
    [("0s", 0), ("250ms", 250), ("30s", 30_000), ("5m", 300_000), ("1h", 3_600_000)],
)
def test_lateness_ms(text: str, milliseconds: int) -> None:
    assert builders.lateness_ms(text) == milliseconds


def test_lateness_ms_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="duration"):
        builders.lateness_ms("soon")


# --- resources ---------------------------------------------------------------------------


def test_default_resources() -> None:
    assert container(context())["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"memory": "512Mi"},
    }


def test_spec_resources_override_defaults_key_by_key() -> None:
    assert container(full_context())["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "2", "memory": "1Gi"},
    }


def test_a_default_never_contradicts_an_explicit_value() -> None:
    # A request above the default limit raises the (defaulted) limit...
    raised = model.ResourceRequirements.model_validate({"requests": {"memory": "2Gi"}})
    assert builders.container_resources(raised)["limits"] == {"memory": "2Gi"}
    # ...and a limit below a default request lowers the (defaulted) request.
    lowered = model.ResourceRequirements.model_validate({"limits": {"cpu": "50m"}})
    resources = builders.container_resources(lowered)
    assert resources["requests"]["cpu"] == "50m"
    assert resources["limits"] == {"cpu": "50m", "memory": "512Mi"}


# --- pod template overrides, rollout triggers ----------------------------------------------


def test_pod_template_overrides_are_merged_without_replacing_ours() -> None:
    ctx = context(
        podTemplate={
            "labels": {"team": "payments", "app.kubernetes.io/instance": "hijack"},
            "annotations": {"streamhouse.io/config-hash": "hijack", "note": "hi"},
            "nodeSelector": {"disk": "ssd"},
            "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
            "serviceAccountName": "queries",
            "priorityClassName": "high",
        }
    )
    template = builders.get_statefulset(ctx)["spec"]["template"]
    assert template["metadata"]["labels"] == {**QUERY_LABELS, "team": "payments"}
    assert template["metadata"]["annotations"] == {
        "note": "hi",
        "streamhouse.io/config-hash": ctx.config_hash,
    }
    pod = template["spec"]
    assert pod["nodeSelector"] == {"disk": "ssd"}
    assert pod["tolerations"] == [
        {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert pod["serviceAccountName"] == "queries"
    assert pod["priorityClassName"] == "high"
    assert pod["automountServiceAccountToken"] is True


def _annotations(ctx: QueryContext) -> dict[str, str]:
    result: dict[str, str] = builders.get_statefulset(ctx)["spec"]["template"]["metadata"][
        "annotations"
    ]
    return result


def test_restart_nonce_and_config_hash_annotations_roll_the_pods() -> None:
    assert "streamhouse.io/restart-nonce" not in _annotations(context())
    assert _annotations(context(restartNonce=3))["streamhouse.io/restart-nonce"] == "3"
    same_sql = _annotations(context())["streamhouse.io/config-hash"]
    assert _annotations(context())["streamhouse.io/config-hash"] == same_sql
    other_sql = _annotations(context(sql=SQL + " -- v2"))["streamhouse.io/config-hash"]
    assert other_sql != same_sql


def test_config_hash_from_the_context_wins() -> None:
    ctx = QueryContext("orders", "shop", UID, context().spec, IMAGE, config_hash="cafe")
    assert _annotations(ctx)["streamhouse.io/config-hash"] == "cafe"


def test_the_same_context_always_builds_the_same_manifests() -> None:
    """Reconciles compare and patch: any nondeterminism would roll pods for nothing."""
    for build in ALL_BUILDERS:
        assert json.dumps(build(full_context())) == json.dumps(build(full_context()))
