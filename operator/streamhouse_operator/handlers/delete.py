"""Deleting a StreamQuery: owner references garbage-collect the children; this finalizer
removes what they cannot, the internal Kafka topics, when `spec.deleteInternalTopics` asks."""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from streamhouse_operator.builders import KAFKA_CONFIG_KEY, query_id
from streamhouse_operator.cleanup import delete_internal, parse_properties
from streamhouse_operator.kube import Kube
from streamhouse_operator.models import streamquery as model
from streamhouse_operator.models.status import LifecycleState

log = logging.getLogger(__name__)


def kafka_settings(kube: Kube, namespace: str, kafka: model.KafkaSpec) -> dict[str, str]:
    """Admin client settings: the bootstrap servers plus the security settings of the Secret
    the pods mount (values are used, never logged)."""
    settings = {"bootstrap.servers": kafka.bootstrap_servers}
    if kafka.secret_ref is not None:
        secret = kube.get("v1", "Secret", kafka.secret_ref.name, namespace) or {}
        encoded = (secret.get("data") or {}).get(KAFKA_CONFIG_KEY)
        if encoded:
            settings.update(parse_properties(base64.b64decode(encoded).decode()))
    return settings


def finalize(
    kube: Kube,
    *,
    name: str,
    namespace: str,
    uid: str,
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
) -> list[str]:
    """Mark the query DELETING and delete its internal topics if asked; returns them."""
    kube.patch_status(name, namespace, {"lifecycleState": LifecycleState.DELETING.value})
    try:
        parsed = model.StreamQuerySpec.model_validate(dict(spec))
    except ValidationError:
        return []  # an invalid spec never ran: it has no topics
    if not parsed.delete_internal_topics:
        return []
    group = status.get("queryId") or query_id(uid)
    states = [status.get("stateId") or group]
    deleted = delete_internal(kafka_settings(kube, namespace, parsed.kafka), group, states)
    log.info("query %s/%s: deleted internal topics %s", namespace, name, deleted)
    return deleted
