"""What every child object of a StreamQuery shares: the query's identity, labels, metadata."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from streamhouse_operator.models import streamquery as model

Manifest = dict[str, Any]

NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
QUERY_LABEL = "streamhouse.io/query"
APP_NAME = "streamhouse-query"
MANAGER = "streamhouse-operator"

METRICS_PORT = 9090
METRICS_PORT_NAME = "metrics"


def query_id(uid: str) -> str:
    """The query's identity for its consumer group, internal topic names and state directory.

    Derived from metadata.uid, not the name, so a query deleted and recreated under the same
    name starts clean instead of inheriting old offsets and state."""
    return hashlib.sha256(uid.encode()).hexdigest()[:12]


def successor_id(uid: str, kind: str, previous: str, sql: str) -> str:
    """A fresh identity that replaces `previous` for running `sql` (`kind` "query": a new
    consumer group, upgradeMode reset; "state": new internal topics and state, stateless).

    A function of what it replaces and of the new SQL only: deriving it again, after an
    operator restart or for a later edit that leaves the SQL alone, gives the same identity,
    and going back to an earlier SQL never revives an identity used before."""
    sql_hash = hashlib.sha256(sql.encode()).hexdigest()
    return hashlib.sha256(f"{uid}/{kind}/{previous}/{sql_hash}".encode()).hexdigest()[:12]


@dataclass(frozen=True)
class QueryContext:
    """Everything the builders need about one StreamQuery, gathered by the reconcile handler.

    `image` is the operator's default image; `spec.image` overrides it. `plan_text` is the
    EXPLAIN output written to the ConfigMap. `query_id` defaults to query_id(uid), `state_id`
    (internal topics and state directory) to `query_id`, and
    `config_hash` to a hash of the SQL (see config_hash()).
    """

    name: str
    namespace: str
    uid: str
    spec: model.StreamQuerySpec
    image: str
    generation: int = 1
    query_id: str = ""
    state_id: str = ""
    plan_text: str = ""
    plan_summary: str = ""
    plan_fingerprint: str = ""
    config_hash: str = ""

    def __post_init__(self) -> None:
        # Frozen: derived fields are set once here, through object.__setattr__.
        if not self.query_id:
            object.__setattr__(self, "query_id", query_id(self.uid))
        if not self.state_id:
            object.__setattr__(self, "state_id", self.query_id)
        if not self.config_hash:
            object.__setattr__(self, "config_hash", config_hash(self.spec.sql))

    @property
    def container_image(self) -> str:
        """The image the pods run: the spec's, else the operator's default."""
        return self.spec.image or self.image


def config_hash(sql: str) -> str:
    """A short hash of what the pods read from the ConfigMap at start (only query.sql: plan.txt
    is for humans). Written into the pod template, so a changed SQL rolls the pods."""
    return hashlib.sha256(sql.encode()).hexdigest()[:16]


def selector_labels(name: str) -> dict[str, str]:
    """Labels that select the query's pods. Fixed for the StatefulSet's life (its selector is
    immutable), so nothing that can change belongs here."""
    return {NAME_LABEL: APP_NAME, INSTANCE_LABEL: name, QUERY_LABEL: name}


def selector_string(name: str) -> str:
    """selector_labels as the string status.selector holds for the scale subresource."""
    return ",".join(f"{key}={value}" for key, value in selector_labels(name).items())


def labels(name: str) -> dict[str, str]:
    """Labels of every child object and pod."""
    return {**selector_labels(name), MANAGED_BY_LABEL: MANAGER}


def owner_reference(ctx: QueryContext) -> Manifest:
    """Makes the StreamQuery the controller of a child, so deleting it garbage-collects them."""
    return {
        "apiVersion": model.API_VERSION,
        "kind": model.KIND,
        "name": ctx.name,
        "uid": ctx.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(ctx: QueryContext, name: str, annotations: dict[str, str] | None = None) -> Manifest:
    """ObjectMeta of a child: name, namespace, labels, owner reference (and annotations)."""
    meta: Manifest = {
        "name": name,
        "namespace": ctx.namespace,
        "labels": labels(ctx.name),
        "ownerReferences": [owner_reference(ctx)],
    }
    if annotations:
        meta["annotations"] = annotations
    return meta
