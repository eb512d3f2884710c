"""The chart's monitoring assets as data, for the tests that check them against real pods."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

CHART_FILES = Path(__file__).resolve().parents[1] / "helm" / "streamhouse" / "files"
DASHBOARD = CHART_FILES / "grafana-dashboard.json"
RULES = CHART_FILES / "prometheus-rules.yaml"
# Series that come from kube-state-metrics, not from a StreamHouse process.
KUBE_STATE_METRICS = frozenset({"kube_pod_container_status_restarts_total"})
_METRIC = re.compile(r"\b((?:streamhouse|kube)_[a-z0-9_]+)\b")


def dashboard_expressions() -> list[str]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            expressions.append(variable["query"]["query"])
    return expressions


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression reads (ours and kube-state-metrics')."""
    return set(_METRIC.findall(expression))


def exposed_names(metrics_text: str) -> set[str]:
    """Sample names in a /metrics page (histograms' _bucket/_sum/_count included)."""
    names = set()
    for line in metrics_text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names
