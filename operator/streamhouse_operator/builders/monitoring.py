"""The ServiceMonitor `<name>` for the Prometheus Operator. The caller creates it only when the
monitoring.coreos.com CRD exists in the cluster."""

from __future__ import annotations

from streamhouse_operator.builders.common import (
    METRICS_PORT_NAME,
    Manifest,
    QueryContext,
    metadata,
    selector_labels,
)

SERVICE_MONITOR_GROUP = "monitoring.coreos.com"
SERVICE_MONITOR_VERSION = "v1"
SERVICE_MONITOR_PLURAL = "servicemonitors"


def get_service_monitor(ctx: QueryContext) -> Manifest:
    """Scrapes /metrics of every pod behind the query's headless Service every 15 s."""
    return {
        "apiVersion": f"{SERVICE_MONITOR_GROUP}/{SERVICE_MONITOR_VERSION}",
        "kind": "ServiceMonitor",
        "metadata": metadata(ctx, ctx.name),
        "spec": {
            "selector": {"matchLabels": selector_labels(ctx.name)},
            "endpoints": [{"port": METRICS_PORT_NAME, "path": "/metrics", "interval": "15s"}],
        },
    }
