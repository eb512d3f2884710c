"""The Helm chart installs on the real API server with the helm we build."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.harness.kube import ControlPlane
from tests.harness.processes import REPO_ROOT

pytestmark = pytest.mark.k8s

CHART = REPO_ROOT / "helm" / "streamhouse"


def _helm(plane: ControlPlane, *args: str) -> str:
    return subprocess.run(
        [str(plane.bin_dir / "helm"), f"--kubeconfig={plane.kubeconfig}", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_chart_lints_and_installs_with_the_crd(control_plane: ControlPlane, namespace: str) -> None:
    assert "0 chart(s) failed" in _helm(control_plane, "lint", str(CHART))
    _helm(control_plane, "install", "sh", str(CHART), "-n", namespace, "--wait", "--timeout=60s")
    status = json.loads(_helm(control_plane, "status", "sh", "-n", namespace, "-o", "json"))
    assert status["info"]["status"] == "deployed"
    crd = control_plane.kubectl("get", "crd", "streamqueries.streamhouse.io", "-o", "name")
    assert (
        crd.strip() == "customresourcedefinition.apiextensions.k8s.io/streamqueries.streamhouse.io"
    )


def test_chart_values_are_validated_by_its_schema(control_plane: ControlPlane) -> None:
    with pytest.raises(subprocess.CalledProcessError) as failed:
        _helm(control_plane, "template", "sh", str(CHART), "--set", "image.pullPolicy=Sometimes")
    assert "pullPolicy" in failed.value.stderr
