"""Runs the operator the way a cluster does, as its own `streamhouse operator` process, against
a control plane; the CRD is applied first (as `helm install` would)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from streamhouse_operator.models import streamquery as model
from tests.harness.kube import ControlPlane
from tests.harness.processes import REPO_ROOT, start_process, stop_process

CRD_FILE = REPO_ROOT / "crds" / "streamquery.yaml"


def install_crd(control_plane: ControlPlane) -> None:
    control_plane.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
    control_plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", f"crd/{model.PLURAL}.{model.GROUP}"
    )


@dataclass
class OperatorProcess:
    control_plane: ControlPlane
    namespace: str
    log_file: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        environment = {
            "KUBECONFIG": str(self.control_plane.kubeconfig),
            "STREAMHOUSE_OBSERVE_INTERVAL_S": "1",
            **self.extra_env,
        }
        self.process = start_process(
            [sys.executable, "-m", "streamhouse_runtime.cli", "operator",
             "--namespace", self.namespace],
            self.log_file,
            environment,
        )  # fmt: skip
        return self

    def kill(self) -> None:
        """SIGKILL, as when the operator's node dies mid-reconcile."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, grace_s=10)
