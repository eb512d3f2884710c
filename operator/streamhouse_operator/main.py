"""kopf registrations only; the logic lives in handlers/.

Run with `streamhouse operator [--namespace NS]` (or `kopf run -m streamhouse_operator.main`).
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

import kopf

from streamhouse_operator.handlers.reconcile import reconcile
from streamhouse_operator.kube import Kube
from streamhouse_operator.models import streamquery as model

DEFAULT_IMAGE = os.environ.get("STREAMHOUSE_IMAGE", "streamhouse:0.1.0")


@functools.cache
def _kube() -> Kube:
    return Kube()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Events only for warnings and up; handler results never land in status (we patch it)."""
    settings.posting.level = logging.WARNING
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="streamhouse.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="streamhouse.io")


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the service account; elsewhere: $KUBECONFIG, read when the operator starts."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.resume(model.GROUP, model.VERSION, model.PLURAL)
@kopf.on.create(model.GROUP, model.VERSION, model.PLURAL)
@kopf.on.update(model.GROUP, model.VERSION, model.PLURAL)
def reconcile_query(
    *,
    name: str,
    namespace: str | None,
    uid: str,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    **_: Any,
) -> None:
    """Create, update or resume: validate the SQL, apply the children, write status."""
    result = reconcile(
        _kube(),
        name=name,
        namespace=namespace or "default",
        uid=uid,
        generation=int(meta.get("generation") or 1),
        spec=dict(spec),
        status=dict(status),
        image=DEFAULT_IMAGE,
    )
    patch.status.update(result.as_patch())
