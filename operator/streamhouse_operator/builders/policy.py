"""The PodDisruptionBudget `<name>`: node drains take the query's pods one at a time."""

from __future__ import annotations

from streamhouse_operator.builders.common import Manifest, QueryContext, metadata, selector_labels


def get_pod_disruption_budget(ctx: QueryContext) -> Manifest:
    """At most one pod of the query voluntarily disrupted at once."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(ctx, ctx.name),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(ctx.name)},
            # A crash-looping pod is not serving anyway; without this it would block drains.
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
