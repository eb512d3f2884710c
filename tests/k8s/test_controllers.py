"""The real kube-controller-manager turns a StatefulSet into Pods and PVCs, and garbage-collects
them through owner references."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest
from kubernetes import client
from kubernetes.client import ApiException

pytestmark = pytest.mark.k8s

T = TypeVar("T")


def _eventually(probe: Callable[[], T | None], timeout_s: float = 60) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"condition not met within {timeout_s}s")


def _statefulset(name: str) -> client.V1StatefulSet:
    labels = {"app": name}
    return client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1StatefulSetSpec(
            replicas=1,
            service_name=name,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[
                        client.V1Container(
                            name="main",
                            image="streamhouse:test",
                            command=["sleep", "3600"],
                            volume_mounts=[client.V1VolumeMount(name="state", mount_path="/state")],
                        )
                    ]
                ),
            ),
            volume_claim_templates=[
                client.V1PersistentVolumeClaim(
                    metadata=client.V1ObjectMeta(name="state"),
                    spec=client.V1PersistentVolumeClaimSpec(
                        access_modes=["ReadWriteOnce"],
                        resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}),
                    ),
                )
            ],
        ),
    )


def test_controller_manager_creates_the_pod_and_claim_of_a_statefulset(
    kube_api: client.ApiClient, namespace: str
) -> None:
    apps, core = client.AppsV1Api(kube_api), client.CoreV1Api(kube_api)
    created = apps.create_namespaced_stateful_set(namespace, _statefulset("query"))

    def pod() -> client.V1Pod | None:
        try:
            return core.read_namespaced_pod("query-0", namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    found = _eventually(pod)
    owner = found.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid) == ("StatefulSet", "query", created.metadata.uid)
    assert owner.controller is True
    assert found.spec.containers[0].command == ["sleep", "3600"]
    claim = core.read_namespaced_persistent_volume_claim("state-query-0", namespace)
    assert claim.spec.resources.requests["storage"] == "1Gi"


def test_deleting_a_statefulset_garbage_collects_its_pods(
    kube_api: client.ApiClient, namespace: str
) -> None:
    apps, core = client.AppsV1Api(kube_api), client.CoreV1Api(kube_api)
    apps.create_namespaced_stateful_set(namespace, _statefulset("doomed"))
    _eventually(lambda: core.list_namespaced_pod(namespace, label_selector="app=doomed").items)

    apps.delete_namespaced_stateful_set(
        "doomed", namespace, body=client.V1DeleteOptions(propagation_policy="Background")
    )
    _eventually(
        lambda: not core.list_namespaced_pod(namespace, label_selector="app=doomed").items or None
    )
