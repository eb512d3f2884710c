"""The one place that talks to the Kubernetes API: server-side apply of a query's children,
reads, and status patches. "Already exists" is not an error: apply is create-or-update."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config, dynamic
from kubernetes.client import ApiException
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

from streamhouse_operator.models import streamquery as model

log = logging.getLogger(__name__)

FIELD_MANAGER = "streamhouse-operator"
EVENT_SOURCE = "streamhouse-operator"
# How long has_kind() trusts its answer: a miss makes the discovery client re-read the whole
# API discovery, which must not happen on every reconcile of every query.
KIND_CACHE_S = 30.0
SCALER_FIELD_MANAGER = "streamhouse-operator-rescale"
Manifest = dict[str, Any]


def default_client() -> client.ApiClient:
    """In a pod: the service account; elsewhere: the kubeconfig ($KUBECONFIG)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        # The path is read now: the client library's default is fixed when it is imported.
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # type: ignore[no-untyped-call]
    return client.ApiClient()


class Kube:
    def __init__(self, api: client.ApiClient | None = None) -> None:
        self.api = api or default_client()
        self.dynamic = dynamic.DynamicClient(self.api)  # type: ignore[no-untyped-call]
        # kopf runs handlers in threads; the discovery cache is not safe to refresh from two.
        self._discovery = threading.Lock()
        self._kinds: dict[tuple[str, str], tuple[bool, float]] = {}

    def _resource(self, api_version: str, kind: str) -> Any:
        with self._discovery:
            return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def apply(self, manifest: Manifest) -> Manifest:
        """Server-side apply: creates or updates, owning exactly the fields we set."""
        resource = self._resource(manifest["apiVersion"], manifest["kind"])
        metadata = manifest["metadata"]
        result = resource.server_side_apply(
            body=manifest,
            name=metadata["name"],
            namespace=metadata.get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )
        applied: Manifest = result.to_dict()
        return applied

    def scale(self, api_version: str, kind: str, name: str, namespace: str, to: int) -> None:
        """Set spec.replicas alone (a merge patch: the rest of the applied object stays)."""
        self._resource(api_version, kind).patch(
            name=name,
            namespace=namespace,
            body={"spec": {"replicas": to}},
            content_type="application/merge-patch+json",
            field_manager=SCALER_FIELD_MANAGER,
        )

    def get(self, api_version: str, kind: str, name: str, namespace: str) -> Manifest | None:
        try:
            found = self._resource(api_version, kind).get(name=name, namespace=namespace)
        except NotFoundError:
            return None
        result: Manifest = found.to_dict()
        return result

    def delete(self, api_version: str, kind: str, name: str, namespace: str) -> None:
        """Delete an object; one already gone is no error."""
        with contextlib.suppress(NotFoundError):
            self._resource(api_version, kind).delete(name=name, namespace=namespace)

    def list(self, api_version: str, kind: str, namespace: str, selector: str) -> list[Manifest]:
        """Objects of a kind in a namespace matching a label selector."""
        found = self._resource(api_version, kind).get(namespace=namespace, label_selector=selector)
        items: list[Manifest] = found.to_dict().get("items") or []
        return items

    def has_kind(self, api_version: str, kind: str) -> bool:
        """Whether the cluster serves this kind (e.g. the Prometheus operator's ServiceMonitor);
        the answer is kept for KIND_CACHE_S."""
        cached = self._kinds.get((api_version, kind))
        if cached is not None and time.monotonic() - cached[1] < KIND_CACHE_S:
            return cached[0]
        try:
            self._resource(api_version, kind)
            served = True
        except ResourceNotFoundError:
            served = False
        self._kinds[(api_version, kind)] = (served, time.monotonic())
        return served

    def patch_status(self, name: str, namespace: str, status: Manifest) -> None:
        """Write status now (intent before acting), not at the end of the handler."""
        api = client.CustomObjectsApi(self.api)
        try:
            api.patch_namespaced_custom_object_status(
                model.GROUP, model.VERSION, namespace, model.PLURAL, name, {"status": status}
            )
        except ApiException as error:
            if error.status != 404:  # deleted meanwhile: nothing left to report on
                raise

    def post_event(self, involved: Manifest, event_type: str, reason: str, message: str) -> None:
        """A core/v1 Event on `involved` (apiVersion, kind, name, namespace, uid), shown by
        `kubectl describe` and `kubectl get events`. Best effort: an event that cannot be
        posted is logged, never fails the reconcile."""
        now = datetime.now(UTC)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        namespace = involved["namespace"]
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{involved['name']}.",
                "namespace": namespace,
            },
            "involvedObject": involved,
            "type": event_type,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": EVENT_SOURCE},
            "reportingComponent": EVENT_SOURCE,
            "reportingInstance": EVENT_SOURCE,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            client.CoreV1Api(self.api).create_namespaced_event(namespace, body)  # type: ignore[arg-type]
        except ApiException as error:
            log.warning("could not post event %s on %s: %s", reason, involved["name"], error.status)
