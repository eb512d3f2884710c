"""The e2e tier: the operator process, the real control plane and controllers, the node agent
running the query pods as local processes, and the real broker, all together.

On a cluster named by STREAMHOUSE_TEST_KUBECONFIG (kind, say), the cluster's own kubelets run
the pods: load the image first (`kind load docker-image streamhouse:0.1.0`) and name a broker
the pods can reach with STREAMHOUSE_TEST_POD_BOOTSTRAP.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiException

from streamhouse_operator.models import streamquery as model
from tests.harness.api import ApiServer, service_account_token
from tests.harness.kafka import KafkaBroker
from tests.harness.kube import ControlPlane
from tests.harness.operator import OperatorProcess, install_crd


@pytest.fixture
def pods(control_plane: ControlPlane, request: pytest.FixtureRequest) -> None:
    """Something runs the pods: the node agent locally, the cluster's kubelets elsewhere."""
    if control_plane.workdir is not None:
        request.getfixturevalue("node_agent")


@pytest.fixture
def pod_bootstrap(kafka_broker: KafkaBroker) -> str:
    """The bootstrap servers as the pods see them."""
    return os.environ.get("STREAMHOUSE_TEST_POD_BOOTSTRAP") or kafka_broker.bootstrap


@pytest.fixture
def operator(
    control_plane: ControlPlane, namespace: str, pods: None, tmp_path: Path
) -> Iterator[OperatorProcess]:
    install_crd(control_plane)
    process = OperatorProcess(control_plane, namespace, tmp_path / "operator.log").start()
    try:
        yield process
    finally:
        process.stop()


class Queries:
    """StreamQuery objects of one namespace, through kubectl and the API as a user would."""

    def __init__(self, control_plane: ControlPlane, api: client.ApiClient, namespace: str):
        self.control_plane = control_plane
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace

    def kubectl(self, *args: str, input_text: str | None = None) -> str:
        result: str = self.control_plane.kubectl(*args, "-n", self.namespace, input_text=input_text)
        return result

    def apply(self, manifest: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(manifest))

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            body = self.custom.get_namespaced_custom_object(
                model.GROUP, model.VERSION, self.namespace, model.PLURAL, name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        assert isinstance(body, dict)
        return body

    def patch(self, name: str, spec: dict[str, Any]) -> int:
        """Merge-patch the spec; returns the new metadata.generation."""
        body = self.custom.patch_namespaced_custom_object(
            model.GROUP, model.VERSION, self.namespace, model.PLURAL, name, {"spec": spec}
        )
        return int(body["metadata"]["generation"])

    def wait(
        self, name: str, check: Callable[[dict[str, Any]], bool], what: str, timeout_s: float = 120
    ) -> dict[str, Any]:
        """The object once `check(object)` holds."""
        deadline = time.monotonic() + timeout_s
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            last = self.get(name)
            if last is not None and check(last):
                return last
            time.sleep(0.5)
        raise AssertionError(f"{name}: {what} not reached in {timeout_s}s; last: {last}")

    def wait_running(self, name: str, replicas: int | None = None) -> dict[str, Any]:
        """The object once its current generation runs with every pod ready."""

        def running(body: dict[str, Any]) -> bool:
            status = body.get("status") or {}
            ready = {c["type"]: c["status"] for c in status.get("conditions") or []}.get("Ready")
            return (
                status.get("observedGeneration") == body["metadata"]["generation"]
                and status.get("lifecycleState") == "RUNNING"
                and ready == "True"
                and (replicas is None or status.get("readyReplicas") == replicas)
            )

        return self.wait(name, running, "RUNNING with every pod ready", 180)


@pytest.fixture
def queries(control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str) -> Queries:
    return Queries(control_plane, kube_api, namespace)


@pytest.fixture
def api_server(
    control_plane: ControlPlane, operator: OperatorProcess, tmp_path: Path, pod_bootstrap: str
) -> Iterator[ApiServer]:
    """`streamhouse api` with the admin kubeconfig as its own identity (the chart's account is
    tested in tests/k8s/test_api.py); callers still need their own RBAC."""
    server = ApiServer(control_plane.kubeconfig, tmp_path / "api.log", pod_bootstrap)
    try:
        yield server
    finally:
        server.stop()


def editor_token(plane: ControlPlane, namespace: str) -> str:
    plane.kubectl(
        "create", "role", "query-editor", "-n", namespace,
        "--verb=get,list,watch,create,patch,delete",
        "--resource=streamqueries.streamhouse.io,streamqueries.streamhouse.io/results",
    )  # fmt: skip
    plane.kubectl(
        "create", "rolebinding", "query-editor", "-n", namespace, "--role=query-editor",
        f"--serviceaccount={namespace}:console-user",
    )  # fmt: skip
    return service_account_token(plane, "console-user", namespace)
