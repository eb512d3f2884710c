"""The administrator's policy (images, service accounts) on the real API server: the chart
passes it to the operator, the webhook refuses a violating StreamQuery at `kubectl apply` with
the coded error and field path, and reconcile (webhook off) marks one FAILED and deploys
nothing."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiException

from streamhouse_operator.models import streamquery as model
from tests.harness import pki
from tests.harness.kube import ControlPlane
from tests.harness.operator import OperatorProcess, install_crd
from tests.harness.processes import REPO_ROOT, free_port, wait_until

pytestmark = pytest.mark.k8s

CHART = REPO_ROOT / "helm" / "streamhouse"
SQL = (
    "CREATE STREAM o (id BIGINT) WITH (kafka_topic='o', value_format='JSON');\n"
    "CREATE STREAM p AS SELECT * FROM o;"
)
POLICY_ENV = {
    "STREAMHOUSE_IMAGE": "registry.example.com/streamhouse:0.1.0",
    "STREAMHOUSE_ALLOWED_IMAGE_PREFIXES": "",  # the default: the operator's own repository
    "STREAMHOUSE_ALLOW_SERVICE_ACCOUNTS": "false",
}


def _query(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": model.API_VERSION,
        "kind": model.KIND,
        "metadata": {"name": name},
        "spec": {"sql": SQL, "kafka": {"bootstrapServers": "127.0.0.1:1"}, **spec},
    }


def test_the_chart_passes_the_policy_to_the_operator(control_plane: ControlPlane) -> None:
    def env_of(*settings: str) -> dict[str, str]:
        rendered = subprocess.run(
            [str(control_plane.bin_dir / "helm"), "template", "sh", str(CHART), *settings],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        deployment = next(
            o for o in yaml.safe_load_all(rendered) if o and o["kind"] == "Deployment"
        )
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e.get("value") for e in container["env"]}

    defaults = env_of()
    assert defaults["STREAMHOUSE_ALLOWED_IMAGE_PREFIXES"] == ""
    assert defaults["STREAMHOUSE_ALLOW_SERVICE_ACCOUNTS"] == "false"
    assert defaults["STREAMHOUSE_NETWORK_POLICIES"] == "false"
    listed = env_of(
        "--set", "policy.allowedImagePrefixes={registry.example.com/streaming/,streamhouse}",
        "--set", "policy.allowServiceAccounts=true", "--set", "networkPolicy.enabled=true",
    )  # fmt: skip
    assert listed["STREAMHOUSE_NETWORK_POLICIES"] == "true"
    assert listed["STREAMHOUSE_ALLOWED_IMAGE_PREFIXES"] == (
        "registry.example.com/streaming/,streamhouse"
    )
    assert listed["STREAMHOUSE_ALLOW_SERVICE_ACCOUNTS"] == "true"


@pytest.fixture
def policy_webhook(
    control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """The operator as its own process, serving the webhook under the default policy."""
    install_crd(control_plane)
    certificates = pki.generate(tmp_path / "webhook-pki")
    configuration = f"policy-{uuid.uuid4().hex[:8]}.streamhouse.io"
    operator = OperatorProcess(
        control_plane,
        namespace,
        tmp_path / "operator.log",
        {
            **POLICY_ENV,
            "STREAMHOUSE_WEBHOOK_ADDR": "127.0.0.1",
            "STREAMHOUSE_WEBHOOK_PORT": str(free_port()),
            "STREAMHOUSE_WEBHOOK_NAME": configuration,
            "STREAMHOUSE_WEBHOOK_CERTFILE": str(certificates.server_cert),
            "STREAMHOUSE_WEBHOOK_KEYFILE": str(certificates.server_key),
            "STREAMHOUSE_WEBHOOK_CAFILE": str(certificates.ca_cert),
        },
    ).start()
    registrations = client.AdmissionregistrationV1Api(kube_api)

    def registered() -> bool:
        return bool(registrations.read_validating_webhook_configuration(configuration).webhooks)

    try:
        wait_until(registered, 60, "the webhook configuration", operator.process, operator.log_file)
        yield operator
    finally:
        operator.stop()
        try:
            registrations.delete_validating_webhook_configuration(configuration)
        except ApiException as error:
            if error.status != 404:
                raise


def _refusal(plane: ControlPlane, namespace: str, manifest: dict[str, Any]) -> str:
    deadline = time.monotonic() + 30
    while True:  # the API server starts calling a new webhook within moments
        try:
            plane.kubectl(
                "apply", "--dry-run=server", "-n", namespace, "-f", "-",
                input_text=yaml.safe_dump(manifest),
            )  # fmt: skip
        except subprocess.CalledProcessError as refused:
            return str(refused.stderr)
        assert time.monotonic() < deadline, "the webhook never refused the query"
        time.sleep(0.5)


def test_the_webhook_refuses_foreign_images_and_service_accounts(
    policy_webhook: OperatorProcess, control_plane: ControlPlane, namespace: str
) -> None:
    image = _refusal(control_plane, namespace, _query("img", image="docker.io/evil/miner:1"))
    assert "denied the request" in image
    assert "spec.image: error[E422]: image 'docker.io/evil/miner:1' is not allowed" in image
    account = _refusal(
        control_plane, namespace, _query("sa", podTemplate={"serviceAccountName": "ci-admin"})
    )
    assert "spec.podTemplate.serviceAccountName: error[E423]: service account 'ci-admin'" in (
        account
    )
    # The operator's own repository, any tag, passes; so does the default account.
    allowed = _query(
        "ok",
        image="registry.example.com/streamhouse:0.2.0",
        podTemplate={"serviceAccountName": "default"},
    )
    output = control_plane.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-", input_text=yaml.safe_dump(allowed)
    )
    assert "streamquery.streamhouse.io/ok created (server dry run)" in output


def test_reconcile_refuses_what_the_policy_refuses_and_deploys_nothing(
    control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """The webhook is off (or was bypassed): reconcile applies the same policy."""
    install_crd(control_plane)
    operator = OperatorProcess(
        control_plane, namespace, tmp_path / "operator.log", dict(POLICY_ENV)
    ).start()
    custom = client.CustomObjectsApi(kube_api)
    try:
        custom.create_namespaced_custom_object(
            model.GROUP, model.VERSION, namespace, model.PLURAL,
            _query("foreign", image="registry.example.com/streamhouse-evil:1"),
        )  # fmt: skip
        custom.create_namespaced_custom_object(
            model.GROUP, model.VERSION, namespace, model.PLURAL,
            _query("mine", image="registry.example.com/streamhouse:0.2.0"),
        )  # fmt: skip

        def status(name: str) -> dict[str, Any]:
            body = custom.get_namespaced_custom_object(
                model.GROUP, model.VERSION, namespace, model.PLURAL, name
            )
            assert isinstance(body, dict)
            found: dict[str, Any] = body.get("status") or {}
            return found

        wait_until(
            lambda: status("foreign").get("lifecycleState") == "FAILED"
            and bool(status("mine").get("observedGeneration")),
            60, "both queries reconciled", operator.process, operator.log_file,
        )  # fmt: skip
    finally:
        operator.stop()
    refused = status("foreign")
    assert refused["error"]["code"] == "E422"
    assert refused["error"]["field"] == "spec.image"
    assert "'registry.example.com/streamhouse-evil:1' is not allowed" in refused["error"]["message"]
    validated = next(c for c in refused["conditions"] if c["type"] == "Validated")
    assert (validated["status"], validated["reason"]) == ("False", "PolicyViolation")
    apps = client.AppsV1Api(kube_api)
    names = [s.metadata.name for s in apps.list_namespaced_stateful_set(namespace).items]
    assert names == ["mine"]  # the allowed one is deployed, the refused one is not
    configmaps = client.CoreV1Api(kube_api).list_namespaced_config_map(namespace).items
    assert not any(c.metadata.name.startswith("foreign") for c in configmaps)
