"""The headless Service `<name>`: stable pod DNS names for the StatefulSet, and the target a
ServiceMonitor scrapes."""

from __future__ import annotations

from streamhouse_operator.builders.common import (
    METRICS_PORT,
    METRICS_PORT_NAME,
    Manifest,
    QueryContext,
    metadata,
    selector_labels,
)


def get_service(ctx: QueryContext) -> Manifest:
    """The headless Service (the StatefulSet's serviceName)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(ctx, ctx.name),
        "spec": {
            "clusterIP": "None",
            "selector": selector_labels(ctx.name),
            # Metrics of a pod that is not ready (catching up, failing) are the ones worth
            # scraping, so unready pods stay in the endpoints.
            "publishNotReadyAddresses": True,
            "ports": [
                {
                    "name": METRICS_PORT_NAME,
                    "port": METRICS_PORT,
                    "targetPort": METRICS_PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }
