"""Deleting a StreamQuery: owner references garbage-collect the children; this finalizer
removes what they cannot, the internal Kafka topics, when `spec.deleteInternalTopics` asks.

The pods are stopped first: while they run they would commit their consumer group again and,
on a broker that auto-creates topics, bring a changelog back. Waiting is bounded by the caller
(see main.py); after that the topics are deleted anyway.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from typing import Any

from kubernetes.client import ApiException
from pydantic import ValidationError

from streamhouse_operator.builders import KAFKA_CONFIG_KEY, query_id, selector_string
from streamhouse_operator.cleanup import delete_internal, parse_properties, reason
from streamhouse_operator.kube import Kube
from streamhouse_operator.models import streamquery as model
from streamhouse_operator.models.status import LifecycleState

log = logging.getLogger(__name__)


def kafka_settings(kube: Kube, namespace: str, kafka: model.KafkaSpec) -> dict[str, str]:
    """Admin client settings: the bootstrap servers plus the security settings of the Secret
    the pods mount (values are used, never logged). An unreadable Secret leaves the plain
    bootstrap servers, and the log says why."""
    settings = {"bootstrap.servers": kafka.bootstrap_servers}
    if kafka.secret_ref is None:
        return settings
    try:
        secret = kube.get("v1", "Secret", kafka.secret_ref.name, namespace) or {}
        encoded = (secret.get("data") or {}).get(KAFKA_CONFIG_KEY)
        if encoded:
            settings.update(parse_properties(base64.b64decode(encoded).decode()))
    except (ApiException, ValueError) as error:
        log.warning("Secret %s/%s unreadable: %s", namespace, kafka.secret_ref.name, reason(error))
    return settings


def finalize(
    kube: Kube,
    *,
    name: str,
    namespace: str,
    uid: str,
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    wait_for_pods: bool = True,
) -> list[str] | None:
    """Mark the query DELETING, stop its pods, then delete its internal topics if asked.
    Returns the topics deleted, or None while pods are still stopping (come back later)."""
    kube.patch_status(name, namespace, {"lifecycleState": LifecycleState.DELETING.value})
    try:
        parsed = model.StreamQuerySpec.model_validate(dict(spec))
    except ValidationError:
        return []  # an invalid spec never ran: it has no topics
    if not parsed.delete_internal_topics:
        return []
    if wait_for_pods and kube.get("apps/v1", "StatefulSet", name, namespace) is not None:
        kube.scale("apps/v1", "StatefulSet", name, namespace, 0)
        if kube.list("v1", "Pod", namespace, selector_string(name)):
            return None
    identities = {*(status.get("identities") or []), status.get("queryId") or query_id(uid)}
    if status.get("stateId"):
        identities.add(status["stateId"])
    deleted = delete_internal(kafka_settings(kube, namespace, parsed.kafka), identities)
    log.info("query %s/%s: deleted internal topics %s", namespace, name, deleted)
    return deleted
