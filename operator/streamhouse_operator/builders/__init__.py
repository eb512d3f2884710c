"""Pure functions from a StreamQuery to the manifests of its children (crate-operator style).

No API calls here: each `get_*` takes a QueryContext and returns a plain dict ready for the
Kubernetes API, so the whole desired state is unit-testable without a cluster.
"""

from __future__ import annotations

from streamhouse_operator.builders.common import (
    METRICS_PORT,
    Manifest,
    QueryContext,
    config_hash,
    labels,
    owner_reference,
    query_id,
    selector_labels,
    selector_string,
    successor_id,
)
from streamhouse_operator.builders.configmap import configmap_name, get_configmap
from streamhouse_operator.builders.monitoring import get_service_monitor
from streamhouse_operator.builders.networkpolicy import get_network_policy
from streamhouse_operator.builders.policy import get_pod_disruption_budget
from streamhouse_operator.builders.service import get_service
from streamhouse_operator.builders.statefulset import (
    KAFKA_CONFIG_KEY,
    container_resources,
    get_statefulset,
    lateness_ms,
    replicas,
)

__all__ = [
    "KAFKA_CONFIG_KEY",
    "METRICS_PORT",
    "Manifest",
    "QueryContext",
    "config_hash",
    "configmap_name",
    "container_resources",
    "get_configmap",
    "get_network_policy",
    "get_pod_disruption_budget",
    "get_service",
    "get_service_monitor",
    "get_statefulset",
    "labels",
    "lateness_ms",
    "owner_reference",
    "query_id",
    "replicas",
    "selector_labels",
    "selector_string",
    "successor_id",
]
