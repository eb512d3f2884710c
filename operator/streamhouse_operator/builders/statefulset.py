"""The StatefulSet `<name>`: one pod per unit of parallelism, each with its own state volume.

The pod spec is the contract with the runtime: every setting reaches `streamhouse run` as an
environment variable STREAMHOUSE_<FIELD> of streamhouse_runtime.config.RuntimeConfig.
"""

from __future__ import annotations

import json
from typing import Any

from streamhouse_operator.builders.common import (
    METRICS_PORT,
    METRICS_PORT_NAME,
    Manifest,
    QueryContext,
    labels,
    metadata,
    selector_labels,
)
from streamhouse_operator.builders.configmap import PLAN_FILE, QUERY_FILE, configmap_name
from streamhouse_operator.models import streamquery as model
from streamhouse_runtime.sql.compatibility import Compatibility

CONTAINER_NAME = "query"
CONFIG_DIR = "/etc/streamhouse"
KAFKA_CONFIG_DIR = f"{CONFIG_DIR}/kafka"
KAFKA_CONFIG_KEY = "client.properties"
UDF_DIR = f"{CONFIG_DIR}/udfs"
DATA_MOUNT = "/var/lib/streamhouse"
STATE_VOLUME = "state"
RUN_AS = 10001

CONFIG_HASH_ANNOTATION = "streamhouse.io/config-hash"
RESTART_NONCE_ANNOTATION = "streamhouse.io/restart-nonce"

DEFAULT_REQUESTS = {"cpu": "100m", "memory": "256Mi"}
DEFAULT_LIMITS = {"memory": "512Mi"}


def lateness_ms(text: str) -> int:
    """spec.lateness ("30s", "5m", "1h", "250ms", "1m30s") in milliseconds."""
    return model.parse_duration_ms(text)


def replicas(spec: model.StreamQuerySpec) -> int:
    """Pods wanted: the parallelism while running, none while suspended (volumes stay)."""
    return spec.parallelism if spec.state is model.QueryState.RUNNING else 0


def data_dir(ctx: QueryContext) -> str:
    """The runtime's data directory: the state volume. The runtime keeps each state identity
    in its own folder and removes the others, so a volume that outlives its query (a
    recreated query of the same name can meet its claims before garbage collection removes
    them) or an upgrade that starts afresh never hands old state and offsets to the new one."""
    return DATA_MOUNT


def container_resources(resources: model.ResourceRequirements | None) -> Manifest:
    """The spec's resources with the defaults filling the gaps. A default never contradicts an
    explicit value: a defaulted limit rises to an explicit request, a defaulted request drops
    to an explicit limit (the CRD already refuses explicit limits below explicit requests)."""
    explicit_requests = dict(resources.requests or {}) if resources else {}
    explicit_limits = dict(resources.limits or {}) if resources else {}
    requests = {**DEFAULT_REQUESTS, **explicit_requests}
    limits = {**DEFAULT_LIMITS, **explicit_limits}
    for resource in set(requests) & set(limits):
        request, limit = requests[resource], limits[resource]
        if model.parse_quantity(limit) >= model.parse_quantity(request):
            continue
        if resource not in explicit_limits:
            limits[resource] = request
        else:
            requests[resource] = limit
    return {"requests": requests, "limits": limits}


def _env(ctx: QueryContext) -> list[Manifest]:
    spec = ctx.spec
    values: dict[str, str] = {
        "STREAMHOUSE_BOOTSTRAP_SERVERS": spec.kafka.bootstrap_servers,
        "STREAMHOUSE_QUERY_FILE": f"{CONFIG_DIR}/{QUERY_FILE}",
        "STREAMHOUSE_QUERY_ID": ctx.query_id,
        "STREAMHOUSE_STATE_ID": ctx.state_id,
        "STREAMHOUSE_DATA_DIR": data_dir(ctx),
        # The parallelism, not the current replica count: suspending must not change the pod
        # template (that would roll pods on resume), and each pod owns partition % replicas.
        "STREAMHOUSE_REPLICAS": str(spec.parallelism),
        "STREAMHOUSE_METRICS_PORT": str(METRICS_PORT),
        "STREAMHOUSE_ERROR_POLICY": spec.error_policy.value,
        "STREAMHOUSE_LATENESS_MS": str(lateness_ms(spec.lateness)),
    }
    if spec.dead_letter_topic:
        values["STREAMHOUSE_DEAD_LETTER_TOPIC"] = spec.dead_letter_topic
    if spec.compatibility is not Compatibility.DEFAULT:
        # Only when set: the pods of existing queries keep the same template (no rollout).
        values["STREAMHOUSE_COMPATIBILITY"] = spec.compatibility.value
    if spec.kafka.secret_ref is not None:
        values["STREAMHOUSE_KAFKA_CONFIG_FILE"] = f"{KAFKA_CONFIG_DIR}/{KAFKA_CONFIG_KEY}"
    if spec.udfs is not None:
        values["STREAMHOUSE_UDF_PATH"] = UDF_DIR
    if spec.schema_registry is not None:
        values["STREAMHOUSE_SCHEMA_REGISTRY_URL"] = spec.schema_registry.url
    # Sorted keys: the same overrides always render the same template, so no spurious rollout.
    if spec.kafka.consumer:
        values["STREAMHOUSE_CONSUMER_CONFIG"] = json.dumps(spec.kafka.consumer, sort_keys=True)
    if spec.kafka.producer:
        values["STREAMHOUSE_PRODUCER_CONFIG"] = json.dumps(spec.kafka.producer, sort_keys=True)
    env: list[Manifest] = [
        # The runtime reads its ordinal from the pod name (<name>-<ordinal>).
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        *({"name": key, "value": value} for key, value in values.items()),
        {
            # The runtime sizes its caches from the memory limit, whatever set it.
            "name": "STREAMHOUSE_MEMORY_LIMIT_BYTES",
            "valueFrom": {
                "resourceFieldRef": {
                    "containerName": CONTAINER_NAME,
                    "resource": "limits.memory",
                    "divisor": "1",
                }
            },
        },
    ]
    return env


def _volumes_and_mounts(ctx: QueryContext) -> tuple[list[Manifest], list[Manifest]]:
    spec = ctx.spec
    volumes: list[Manifest] = [
        {
            "name": "query",
            "configMap": {
                "name": configmap_name(ctx.name),
                "items": [
                    {"key": QUERY_FILE, "path": QUERY_FILE},
                    {"key": PLAN_FILE, "path": PLAN_FILE},
                ],
            },
        },
        # The root filesystem is read-only; Python and librdkafka still want a scratch /tmp.
        {"name": "tmp", "emptyDir": {"sizeLimit": "128Mi"}},
    ]
    mounts: list[Manifest] = [
        {"name": STATE_VOLUME, "mountPath": DATA_MOUNT},
        {"name": "query", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if spec.kafka.secret_ref is not None:
        # Only the one key, readable by the pod's group (fsGroup), never by others; the kubelet
        # supports Secret and ConfigMap volumes nested inside a ConfigMap volume.
        volumes.append(
            {
                "name": "kafka-client",
                "secret": {
                    "secretName": spec.kafka.secret_ref.name,
                    "items": [{"key": KAFKA_CONFIG_KEY, "path": KAFKA_CONFIG_KEY}],
                    "defaultMode": 0o440,
                },
            }
        )
        mounts.append({"name": "kafka-client", "mountPath": KAFKA_CONFIG_DIR, "readOnly": True})
    if spec.udfs is not None:
        # The only place, besides the image's `streamhouse.udfs` entry points, the runtime
        # imports UDF modules from (STREAMHOUSE_UDF_PATH): read-only, files not executable.
        volumes.append(
            {
                "name": "udfs",
                "configMap": {"name": spec.udfs.config_map_ref.name, "defaultMode": 0o444},
            }
        )
        mounts.append({"name": "udfs", "mountPath": UDF_DIR, "readOnly": True})
    return volumes, mounts


def _probe(path: str, period_s: int, failure_threshold: int) -> Manifest:
    return {
        "httpGet": {"path": path, "port": METRICS_PORT_NAME},
        "periodSeconds": period_s,
        "timeoutSeconds": 3,
        "failureThreshold": failure_threshold,
    }


def _container(ctx: QueryContext, mounts: list[Manifest]) -> Manifest:
    return {
        "name": CONTAINER_NAME,
        "image": ctx.container_image,
        "command": ["streamhouse", "run"],
        "env": _env(ctx),
        "ports": [{"name": METRICS_PORT_NAME, "containerPort": METRICS_PORT, "protocol": "TCP"}],
        # The runtime serves nothing until its topics are prepared and its state is open,
        # which can take minutes for large state; liveness only starts counting afterwards.
        "startupProbe": _probe("/healthz", period_s=5, failure_threshold=60),
        "readinessProbe": _probe("/readyz", period_s=5, failure_threshold=3),
        # Generous: a compaction stall or a slow broker must not cost the pod its warm caches.
        "livenessProbe": _probe("/healthz", period_s=10, failure_threshold=6),
        "resources": container_resources(ctx.spec.resources),
        "volumeMounts": mounts,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
        },
    }


def _pod_metadata(ctx: QueryContext) -> Manifest:
    overrides = ctx.spec.pod_template
    ours = {CONFIG_HASH_ANNOTATION: ctx.config_hash}
    if ctx.spec.restart_nonce is not None:
        ours[RESTART_NONCE_ANNOTATION] = str(ctx.spec.restart_nonce)
    # The user's labels and annotations are added; ours win on a collision (selectors and
    # rollout triggers depend on them).
    user_labels = overrides.labels if overrides else {}
    user_annotations = overrides.annotations if overrides else {}
    return {
        "labels": {**user_labels, **labels(ctx.name)},
        "annotations": {**user_annotations, **ours},
    }


def _pod_spec(ctx: QueryContext) -> Manifest:
    volumes, mounts = _volumes_and_mounts(ctx)
    overrides = ctx.spec.pod_template
    pod: dict[str, Any] = {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(ctx, mounts)],
        "volumes": volumes,
        "terminationGracePeriodSeconds": 30,
        # Service links would inject <SERVICE>_PORT style variables, some of which could land
        # in the runtime's STREAMHOUSE_ namespace; the runtime finds Kafka by its own setting.
        "enableServiceLinks": False,
        # The runtime never calls the Kubernetes API: no token unless the user names an
        # account (workload identity, for instance, needs one).
        "automountServiceAccountToken": bool(overrides and overrides.service_account_name),
    }
    if overrides is not None:
        if overrides.service_account_name:
            pod["serviceAccountName"] = overrides.service_account_name
        if overrides.priority_class_name:
            pod["priorityClassName"] = overrides.priority_class_name
        if overrides.node_selector:
            pod["nodeSelector"] = dict(overrides.node_selector)
        if overrides.tolerations:
            pod["tolerations"] = [
                toleration.model_dump(by_alias=True, exclude_none=True, mode="json")
                for toleration in overrides.tolerations
            ]
    return pod


def _volume_claim_template(ctx: QueryContext) -> Manifest:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": ctx.spec.storage.size}},
    }
    if ctx.spec.storage.storage_class_name:
        spec["storageClassName"] = ctx.spec.storage.storage_class_name
    return {"metadata": {"name": STATE_VOLUME, "labels": labels(ctx.name)}, "spec": spec}


def get_statefulset(ctx: QueryContext) -> Manifest:
    """The query's StatefulSet: `replicas` pods running `streamhouse run`, restricted Pod
    Security, one ReadWriteOnce state volume per pod."""
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(ctx, ctx.name),
        "spec": {
            "replicas": replicas(ctx.spec),
            "serviceName": ctx.name,
            "selector": {"matchLabels": selector_labels(ctx.name)},
            # Pods are independent (each owns its partitions): start and stop them together.
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "RollingUpdate"},
            "revisionHistoryLimit": 5,
            # Deleting the query deletes its volumes; suspending or scaling down keeps them, so
            # a resume or scale-up finds its state again.
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Delete",
                "whenScaled": "Retain",
            },
            "template": {"metadata": _pod_metadata(ctx), "spec": _pod_spec(ctx)},
            "volumeClaimTemplates": [_volume_claim_template(ctx)],
        },
    }
