"""The ConfigMap `<name>-query`: the SQL the pods run and the plan, for humans."""

from __future__ import annotations

from streamhouse_operator.builders.common import Manifest, QueryContext, metadata

QUERY_FILE = "query.sql"
PLAN_FILE = "plan.txt"


def configmap_name(name: str) -> str:
    return f"{name}-query"


def get_configmap(ctx: QueryContext) -> Manifest:
    """The query's ConfigMap. Holds nothing secret: Kafka credentials stay in their Secret."""
    annotations = {"streamhouse.io/plan-fingerprint": ctx.plan_fingerprint}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(
            ctx, configmap_name(ctx.name), annotations if ctx.plan_fingerprint else None
        ),
        "data": {QUERY_FILE: ctx.spec.sql, PLAN_FILE: ctx.plan_text},
    }
