"""The chart's RBAC on the real API server, as the operator's own service account sees it:
Secrets readable in a watched namespace only, and of all ValidatingWebhookConfigurations only
the chart's own, which it may patch but not create. The operator itself, authenticated as that
account with the webhook on, registers its webhook."""

from __future__ import annotations

import copy
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client import ApiException

from tests.harness import pki
from tests.harness.kube import ControlPlane
from tests.harness.operator import OperatorProcess
from tests.harness.processes import REPO_ROOT, free_port, wait_until

pytestmark = pytest.mark.k8s

CHART = REPO_ROOT / "helm" / "streamhouse"


def _helm(plane: ControlPlane, *args: str) -> str:
    return subprocess.run(
        [str(plane.bin_dir / "helm"), f"--kubeconfig={plane.kubeconfig}", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@dataclass
class Installed:
    release: str
    namespace: str  # the release's, and the one namespace the operator watches
    other: str  # a namespace it does not watch
    account: str
    webhook_configuration: str
    kubeconfig: Path  # authenticates as the operator's service account (a real token)


@pytest.fixture
def installed(
    control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> Iterator[Installed]:
    # Cluster-scoped objects are named after the release: one release name per test run.
    release = f"r{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(kube_api)
    other = f"other-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    _helm(
        control_plane, "install", release, str(CHART), "-n", namespace,
        "--set", "operator.replicas=0", "--set", f"operator.watchNamespaces={{{namespace}}}",
        "--set", "webhook.enabled=true", "--set", "webhook.certSecret=tls",
    )  # fmt: skip
    account = f"{release}-streamhouse"
    token = control_plane.kubectl("create", "token", account, "-n", namespace).strip()
    kubeconfig = yaml.safe_load(control_plane.kubeconfig.read_text())
    kubeconfig = copy.deepcopy(kubeconfig)
    kubeconfig["users"] = [{"name": "operator", "user": {"token": token}}]
    for context in kubeconfig["contexts"]:
        context["context"]["user"] = "operator"
    path = tmp_path / "operator.kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    try:
        yield Installed(release, namespace, other, account, f"{account}.streamhouse.io", path)
    finally:
        _helm(control_plane, "uninstall", release, "-n", namespace)
        core.delete_namespace(other)


def _allowed(
    kube_api: client.ApiClient,
    installed: Installed,
    verb: str,
    resource: str,
    *,
    group: str = "",
    namespace: str | None = None,
    name: str | None = None,
) -> bool:
    """A SubjectAccessReview: would the API server let the operator's account do this?"""
    attributes = client.V1ResourceAttributes(
        verb=verb, group=group, resource=resource, namespace=namespace, name=name
    )
    review = client.AuthorizationV1Api(kube_api).create_subject_access_review(
        client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=f"system:serviceaccount:{installed.namespace}:{installed.account}",
                groups=[
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{installed.namespace}",
                    "system:authenticated",
                ],
                resource_attributes=attributes,
            )
        )
    )
    return bool(review.status.allowed)


WEBHOOKS = "admissionregistration.k8s.io"


def test_the_operator_reads_secrets_only_in_watched_namespaces(
    installed: Installed, kube_api: client.ApiClient
) -> None:
    assert _allowed(kube_api, installed, "get", "secrets", namespace=installed.namespace)
    assert not _allowed(kube_api, installed, "get", "secrets", namespace=installed.other)
    assert not _allowed(kube_api, installed, "list", "secrets", namespace=installed.namespace)
    # And for real, with the account's token.
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(installed.kubeconfig)))  # type: ignore[no-untyped-call]
    admin = client.CoreV1Api(kube_api)
    for namespace in (installed.namespace, installed.other):
        admin.create_namespaced_secret(
            namespace,
            client.V1Secret(metadata=client.V1ObjectMeta(name="kafka"), string_data={"k": "v"}),
        )
    assert core.read_namespaced_secret("kafka", installed.namespace).data["k"] == "dg=="
    with pytest.raises(ApiException) as forbidden:
        core.read_namespaced_secret("kafka", installed.other)
    assert forbidden.value.status == 403


def test_the_operator_may_patch_its_own_webhook_configuration_only(
    installed: Installed, kube_api: client.ApiClient
) -> None:
    own = installed.webhook_configuration
    for verb in ("get", "patch", "update"):
        assert _allowed(kube_api, installed, verb, "validatingwebhookconfigurations",
                        group=WEBHOOKS, name=own)  # fmt: skip
    for verb in ("get", "patch", "update", "delete"):
        assert not _allowed(kube_api, installed, verb, "validatingwebhookconfigurations",
                            group=WEBHOOKS, name="someone-else.example.com")  # fmt: skip
    for verb in ("create", "list", "watch"):
        assert not _allowed(kube_api, installed, verb, "validatingwebhookconfigurations",
                            group=WEBHOOKS)  # fmt: skip

    # For real: another configuration exists; the account's token may not touch it.
    admin = client.AdmissionregistrationV1Api(kube_api)
    other = f"other-{uuid.uuid4().hex[:8]}.example.com"
    admin.create_validating_webhook_configuration(
        client.V1ValidatingWebhookConfiguration(metadata=client.V1ObjectMeta(name=other))
    )
    try:
        api = client.AdmissionregistrationV1Api(
            config.new_client_from_config(config_file=str(installed.kubeconfig))  # type: ignore[no-untyped-call]
        )
        label = {"metadata": {"labels": {"patched": "yes"}}}
        assert api.patch_validating_webhook_configuration(own, label).metadata.labels["patched"]
        with pytest.raises(ApiException) as forbidden:
            api.patch_validating_webhook_configuration(other, label)
        assert forbidden.value.status == 403
        with pytest.raises(ApiException) as refused:
            api.create_validating_webhook_configuration(
                client.V1ValidatingWebhookConfiguration(
                    metadata=client.V1ObjectMeta(name=f"new-{other}")
                )
            )
        assert refused.value.status == 403
    finally:
        admin.delete_validating_webhook_configuration(other)


def test_the_operator_runs_its_webhook_with_only_these_rights(
    installed: Installed, control_plane: ControlPlane, kube_api: client.ApiClient, tmp_path: Path
) -> None:
    """kopf would create the configuration if it could; with the chart's rights it may only
    patch the one the chart created, and still points it at the operator."""
    certificates = pki.generate(tmp_path / "webhook-pki")
    plane = copy.copy(control_plane)
    plane.kubeconfig = installed.kubeconfig
    operator = OperatorProcess(
        plane,
        installed.namespace,
        tmp_path / "operator.log",
        {
            "STREAMHOUSE_WEBHOOK_ADDR": "127.0.0.1",
            "STREAMHOUSE_WEBHOOK_PORT": str(free_port()),
            "STREAMHOUSE_WEBHOOK_NAME": installed.webhook_configuration,
            "STREAMHOUSE_WEBHOOK_PRECREATED": "true",
            "STREAMHOUSE_WEBHOOK_CERTFILE": str(certificates.server_cert),
            "STREAMHOUSE_WEBHOOK_KEYFILE": str(certificates.server_key),
            "STREAMHOUSE_WEBHOOK_CAFILE": str(certificates.ca_cert),
        },
    ).start()
    registrations = client.AdmissionregistrationV1Api(kube_api)
    urls: list[str] = []

    def registered() -> bool:
        found = registrations.read_validating_webhook_configuration(installed.webhook_configuration)
        urls.extend(str(hook.client_config.url) for hook in found.webhooks or [])
        return bool(urls)

    try:
        wait_until(registered, 60, "the webhook configuration", operator.process, operator.log_file)
    finally:
        operator.stop()
    assert urls[0].startswith("https://127.0.0.1:")  # pointed at the operator
    # No mutating handler, so no MutatingWebhookConfiguration (kopf would keep an empty one).
    with pytest.raises(ApiException) as absent:
        registrations.read_mutating_webhook_configuration(installed.webhook_configuration)
    assert absent.value.status == 404
    log = operator.log_file.read_text()
    assert "Forbidden" not in log and "Not enough RBAC" not in log, log[-3000:]
