"""The chart with every flag on: `helm lint` and `helm template` pass, and the monitoring
objects carry the plain dashboard and rules files, labelled for Grafana's sidecar."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness.processes import REPO_ROOT, run_build_script
from tests.monitoring_assets import DASHBOARD, RULES

pytestmark = pytest.mark.k8s

CHART = REPO_ROOT / "helm" / "streamhouse"
EVERY_FLAG = [
    "--set", "webhook.enabled=true",
    "--set", "webhook.certManager.enabled=true",
    "--set", "monitoring.serviceMonitor.enabled=true",
    "--set", "monitoring.prometheusRule.enabled=true",
    "--set", "monitoring.grafanaDashboard.enabled=true",
]  # fmt: skip


@pytest.fixture(scope="module")
def helm() -> Path:
    return run_build_script("build-k8s.sh") / "helm"


def _helm(helm: Path, *args: str) -> str:
    return subprocess.run([str(helm), *args], check=True, capture_output=True, text=True).stdout


def _rendered(helm: Path, *flags: str) -> list[dict[str, Any]]:
    text = _helm(helm, "template", "sh", str(CHART), "-n", "tools", *flags)
    return [o for o in yaml.safe_load_all(text) if o]


def _one(objects: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, [o["metadata"]["name"] for o in found]
    return found[0]


def test_the_chart_lints_with_every_flag_on(helm: Path) -> None:
    assert "0 chart(s) failed" in _helm(helm, "lint", "--strict", str(CHART), *EVERY_FLAG)


def test_every_flag_renders_its_monitoring_object(helm: Path) -> None:
    objects = _rendered(helm, *EVERY_FLAG)
    dashboard = _one(objects, "ConfigMap", "-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["streamhouse-queries.json"]) == json.loads(
        DASHBOARD.read_text()
    )
    rule = _one(objects, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    monitor = _one(objects, "ServiceMonitor")
    service = _one(objects, "Service", "-metrics")
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    container = _one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["STREAMHOUSE_OPERATOR_METRICS_PORT"] == "8081"
    assert {"name": "metrics", "containerPort": 8081} in container["ports"]


def test_the_flags_are_off_by_default(helm: Path) -> None:
    kinds = {o["kind"] for o in _rendered(helm)}
    assert not kinds & {"PrometheusRule", "ServiceMonitor"}
    assert not [o for o in _rendered(helm) if o["metadata"]["name"].endswith("-dashboard")]


def test_a_wrong_flag_value_is_refused_by_the_schema(helm: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError) as refused:
        _rendered(helm, "--set", "monitoring.serviceMonitor.interval=often")
    assert "interval" in refused.value.stderr
