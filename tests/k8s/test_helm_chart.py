"""The Helm chart installs on the real API server with the helm we build."""

from __future__ import annotations

import copy
import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from streamhouse_operator.models import streamquery as model
from tests.harness.kube import ControlPlane
from tests.harness.operator import OperatorProcess
from tests.harness.processes import REPO_ROOT, wait_until

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
    # No operator pod: nothing here would run it (see the service-account test below).
    _helm(
        control_plane, "install", "sh", str(CHART), "-n", namespace, "--set", "operator.replicas=0"
    )
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


def test_the_operator_deployment_is_restricted_and_runs_the_operator(
    control_plane: ControlPlane,
) -> None:
    objects = [
        o
        for o in yaml.safe_load_all(
            _helm(control_plane, "template", "sh", str(CHART), "--set", "webhook.enabled=true",
                  "--set", "webhook.certSecret=tls", "--set", "operator.watchNamespaces={shop}")
        )
        if o
    ]  # fmt: skip
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == [
        "ClusterRole", "ClusterRoleBinding", "Deployment", "Role", "RoleBinding",
        "Service", "Service",  # the webhook's and the operator metrics'
        "ServiceAccount", "ValidatingWebhookConfiguration",
    ]  # fmt: skip
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"][:4] == ["streamhouse", "--log-level", "INFO", "operator"]
    assert container["command"][-2:] == ["--namespace", "shop"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["STREAMHOUSE_IMAGE"] == "streamhouse:0.1.0"
    assert env["STREAMHOUSE_WEBHOOK_HOST"] == "sh-streamhouse-webhook.default.svc"
    role = next(o for o in objects if o["kind"] == "Role")
    assert role["metadata"]["namespace"] == "shop"


def test_the_webhook_needs_a_certificate(control_plane: ControlPlane) -> None:
    with pytest.raises(subprocess.CalledProcessError) as failed:
        _helm(control_plane, "template", "sh", str(CHART), "--set", "webhook.enabled=true")
    assert "needs webhook.certSecret or webhook.certManager.enabled" in failed.value.stderr


def _service_account_kubeconfig(plane: ControlPlane, namespace: str, path: Path) -> Path:
    """A kubeconfig that authenticates as the chart's service account, with a real token."""
    token = plane.kubectl("create", "token", "rbac-streamhouse", "-n", namespace).strip()
    admin = yaml.safe_load(plane.kubeconfig.read_text())
    config = copy.deepcopy(admin)
    config["users"] = [{"name": "operator", "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = "operator"
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_chart_rbac_is_enough_to_run_the_operator(
    control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """The operator, authenticated as the chart's service account (Role variant: it watches
    one namespace), reconciles a query, reads its Kafka Secret and finalizes its deletion.
    The broker named is unreachable: the finalizer gives up in bounded time, never hangs."""
    _helm(
        # Cluster-scoped objects are named after the release: one release name per test.
        control_plane, "install", "rbac", str(CHART), "-n", namespace,
        "--set", "operator.replicas=0", "--set", f"operator.watchNamespaces={{{namespace}}}",
    )  # fmt: skip
    kubeconfig = _service_account_kubeconfig(control_plane, namespace, tmp_path / "sa.kubeconfig")
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="kafka-client"),
            string_data={"client.properties": "security.protocol=PLAINTEXT\n"},
        ),
    )
    plane = copy.copy(control_plane)
    plane.kubeconfig = kubeconfig
    operator = OperatorProcess(plane, namespace, tmp_path / "operator.log").start()
    custom = client.CustomObjectsApi(kube_api)
    try:
        custom.create_namespaced_custom_object(
            model.GROUP, model.VERSION, namespace, model.PLURAL,
            {
                "apiVersion": model.API_VERSION, "kind": model.KIND,
                "metadata": {"name": "rbac"},
                "spec": {
                    "sql": "CREATE STREAM o (id BIGINT) WITH (kafka_topic='o', "
                    "value_format='JSON');\nCREATE STREAM p AS SELECT * FROM o;",
                    "kafka": {"bootstrapServers": "127.0.0.1:1",
                              "secretRef": {"name": "kafka-client"}},
                    "deleteInternalTopics": True,
                },
            },
        )  # fmt: skip

        def reconciled() -> bool:
            body = custom.get_namespaced_custom_object(
                model.GROUP, model.VERSION, namespace, model.PLURAL, "rbac"
            )
            assert isinstance(body, dict)
            return bool((body.get("status") or {}).get("observedGeneration") == 1)

        wait_until(reconciled, 60, "status written as the service account")
        client.AppsV1Api(kube_api).read_namespaced_stateful_set("rbac", namespace)
        custom.delete_namespaced_custom_object(
            model.GROUP, model.VERSION, namespace, model.PLURAL, "rbac"
        )
        started = time.monotonic()

        def gone() -> bool:
            try:
                custom.get_namespaced_custom_object(
                    model.GROUP, model.VERSION, namespace, model.PLURAL, "rbac"
                )
            except client.ApiException as error:
                return bool(error.status == 404)
            return False

        wait_until(gone, 90, "the finalizer released")
        assert time.monotonic() - started < 90
    finally:
        operator.stop()
    log = operator.log_file.read_text()
    assert "Forbidden" not in log and " 403" not in log, log[-3000:]
    assert "left behind" in log  # the unreachable broker: reported, not fatal
